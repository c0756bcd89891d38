// Deterministic sums of per-element terms on the GPU (nvcc only), without atomics: the same
// bits on every run, whatever the GPU. They reduce the parameter gradients of the element-wise
// kernels (column sums over rows, SPEC §2) and the optimizer's gradient norm (a flat sum).
//
// Two passes, both in a fixed order:
//  1. The rows are cut into `chunks` (a function of rows only). One block per (32-column tile,
//     chunk): 8 row lanes accumulate term(r, c) in fp32 over their rows in row order, and the
//     lanes are added in lane order into partial[(k chunks + chunk) d + c].
//  2. One block per output: the partials of the output's columns over all chunks are summed in
//     double (each thread a fixed strided subset, then block_sum's fixed butterfly), divided
//     by `divisor` (1 for a plain sum; the count for a mean) and added, rounded once, to the
//     output.
// Neither pass waits for the host or allocates once the Context's scratch is big enough, so
// both can be captured in a CUDA graph (core/cuda/graph.h).
#pragma once
#include <algorithm>
#include <cstdint>

#include "kernels/cuda/common.cuh"

namespace pgolf::cuda {

// The K fp32 terms one element contributes (e.g. dout x and dout x0 for the residual mix).
template <int K>
struct Terms {
  float v[K];
};

namespace reduce_detail {

constexpr int kTileCols = 32, kRowLanes = 8;

inline int64_t row_chunks(int64_t rows) { return std::clamp<int64_t>((rows + 63) / 64, 1, 1024); }

// Pass 1; with partial null only the terms' side effects (gradient writes) remain.
template <int K, typename Term>
__global__ void column_partials_kernel(Term term, float* partial, int64_t rows, int64_t d,
                                       int64_t rows_per_chunk) {
  static_assert(K >= 1 && K <= kRowLanes, "one row lane combines each of the K sums");
  __shared__ float sums[K][kRowLanes][kTileCols];
  const int64_t c = int64_t(blockIdx.x) * kTileCols + threadIdx.x, chunk = blockIdx.y;
  const int64_t r0 = chunk * rows_per_chunk;
  const int64_t r1 = r0 + rows_per_chunk < rows ? r0 + rows_per_chunk : rows;
  Terms<K> acc{};
  if (c < d)
    for (int64_t r = r0 + threadIdx.y; r < r1; r += kRowLanes) {
      const Terms<K> t = term(r, c);
#pragma unroll
      for (int k = 0; k < K; ++k) acc.v[k] += t.v[k];
    }
  if (!partial) return;  // uniform over the block: no thread is left at the barrier
#pragma unroll
  for (int k = 0; k < K; ++k) sums[k][threadIdx.y][threadIdx.x] = acc.v[k];
  __syncthreads();
  if (threadIdx.y < K && c < d) {
    float s = 0;
    for (int lane = 0; lane < kRowLanes; ++lane) s += sums[threadIdx.y][lane][threadIdx.x];
    partial[(threadIdx.y * int64_t(gridDim.y) + chunk) * d + c] = s;
  }
}

// Pass 2: out[k outs + j] += (the sum of partial over chunks and columns [j group,
// (j+1) group)) / divisor.
template <typename Out>
__global__ void add_column_sums_kernel(const float* partial, Out* out, int64_t chunks, int64_t d,
                                       int64_t group, double divisor) {
  __shared__ double shared[32];
  const int64_t outs = d / group, k = blockIdx.x / outs, j = blockIdx.x % outs;
  const float* p = partial + k * chunks * d + j * group;
  double s = 0;
  for (int64_t e = threadIdx.x; e < group * chunks; e += blockDim.x)
    s += p[(e / group) * d + e % group];
  s = block_sum(s, shared);
  if (threadIdx.x == 0) out[blockIdx.x] += Out(s / divisor);
}

// A flat term(i) over n elements seen as a [ceil(n/32), 32] matrix, zero past the end.
template <int K, typename Term>
struct FlatTerm {
  Term term;
  int64_t n;
  __device__ Terms<K> operator()(int64_t r, int64_t c) const {
    const int64_t i = r * kTileCols + c;
    return i < n ? term(i) : Terms<K>{};
  }
};

}  // namespace reduce_detail

// out[k outs + j] += (sum over rows r and the columns c of group j ([j group, (j+1) group),
// outs = d / group) of term(r, c).v[k]) / divisor, for k < K. term is a functor with a
// __device__ `Terms<K> operator()(int64_t r, int64_t c) const`, called exactly once per
// element, so it may also write that element's own gradients. With out null only those writes
// happen. `name` labels launch errors.
template <int K, typename Term, typename Out>
void column_sums(Context& ctx, Term term, Out* out, int64_t rows, int64_t d, int64_t group,
                 const char* name, double divisor = 1.0) {
  using namespace reduce_detail;
  PGOLF_CHECK(group >= 1 && d % group == 0, name, ": column groups of ", group, " do not divide ",
              d, " columns");
  if (rows * d == 0) return;
  const int64_t chunks = row_chunks(rows), rows_per_chunk = (rows + chunks - 1) / chunks;
  float* partial = out ? ctx.scratch(K * chunks * d) : nullptr;
  const dim3 grid(unsigned((d + kTileCols - 1) / kTileCols), unsigned(chunks));
  column_partials_kernel<K><<<grid, dim3(kTileCols, kRowLanes), 0, ctx.stream()>>>(
      term, partial, rows, d, rows_per_chunk);
  check_launch(name);
  if (!out) return;
  add_column_sums_kernel<<<unsigned(K * (d / group)), kThreads, 0, ctx.stream()>>>(
      partial, out, chunks, d, group, divisor);
  check_launch(name);
}

// out[k] += (sum over i < n of term(i).v[k]) / divisor (term: a __device__
// `Terms<K> operator()(int64_t i) const`, called once per element), through column_sums of a
// [ceil(n/32), 32] view.
template <int K, typename Term, typename Out>
void flat_sums(Context& ctx, Term term, Out* out, int64_t n, const char* name,
               double divisor = 1.0) {
  using reduce_detail::kTileCols;
  column_sums<K>(ctx, reduce_detail::FlatTerm<K, Term>{term, n}, out,
                 (n + kTileCols - 1) / kTileCols, int64_t(kTileCols), int64_t(kTileCols), name,
                 divisor);
}

}  // namespace pgolf::cuda
