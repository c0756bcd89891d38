// Element-wise ops of the residual stream on the GPU (SPEC §2, Block) and the casts.
#include "kernels/cuda/elementwise.h"

#include <algorithm>

#include "kernels/cuda/common.cuh"

namespace pgolf::cuda {

namespace {

// The backward's column sums: the rows are cut into `chunks` (a function of rows only) and
// each (32-column tile, chunk) block sums its part with 8 row lanes, combined in lane order;
// a second kernel adds the chunks' partial sums in chunk order.
constexpr int kTileCols = 32, kRowLanes = 8;

int64_t row_chunks(int64_t rows) { return std::clamp<int64_t>((rows + 63) / 64, 1, 1024); }

__global__ void resid_mix_forward_kernel(const bf16* x, const bf16* x0, const float* mix,
                                         bf16* out, int64_t rows, int64_t d) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < rows * d;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t c = i % d;
    out[i] = to_bf16(mix[c] * to_float(x[i]) + mix[d + c] * to_float(x0[i]));
  }
}

// dx, dx0 element-wise; partial[(k chunks + chunk) d + c] = this chunk's sum of dout (x, x0)
// for k = 0, 1 (when partial is non-null).
__global__ void resid_mix_backward_kernel(const bf16* dout, const bf16* x, const bf16* x0,
                                          const float* mix, bf16* dx, bf16* dx0, float* partial,
                                          int64_t rows, int64_t d, int64_t rows_per_chunk) {
  __shared__ float sums[2][kRowLanes][kTileCols];
  const int64_t c = int64_t(blockIdx.x) * kTileCols + threadIdx.x, chunk = blockIdx.y;
  const int64_t r0 = chunk * rows_per_chunk;
  const int64_t r1 = r0 + rows_per_chunk < rows ? r0 + rows_per_chunk : rows;
  float a0 = 0, a1 = 0;
  if (c < d) {
    const float m0 = mix[c], m1 = mix[d + c];
    for (int64_t r = r0 + threadIdx.y; r < r1; r += kRowLanes) {
      const int64_t i = r * d + c;
      const float g = to_float(dout[i]);
      a0 += g * to_float(x[i]);
      a1 += g * to_float(x0[i]);
      if (dx) dx[i] = to_bf16(to_float(dx[i]) + m0 * g);
      if (dx0) dx0[i] = to_bf16(to_float(dx0[i]) + m1 * g);
    }
  }
  if (!partial) return;  // uniform over the block: no thread is left at the barrier
  sums[0][threadIdx.y][threadIdx.x] = a0;
  sums[1][threadIdx.y][threadIdx.x] = a1;
  __syncthreads();
  if (threadIdx.y < 2 && c < d) {
    float s = 0;
    for (int lane = 0; lane < kRowLanes; ++lane) s += sums[threadIdx.y][lane][threadIdx.x];
    partial[(threadIdx.y * int64_t(gridDim.y) + chunk) * d + c] = s;
  }
}

// dmix[k d + c] += sum over chunks (in order) of partial[(k chunks + chunk) d + c].
__global__ void add_chunk_sums_kernel(const float* partial, float* dmix, int64_t chunks,
                                      int64_t d) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < 2 * d;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t k = i / d, c = i % d;
    float s = 0;
    for (int64_t chunk = 0; chunk < chunks; ++chunk) s += partial[(k * chunks + chunk) * d + c];
    dmix[i] += s;
  }
}

__global__ void cast_to_bf16_kernel(const float* x, bf16* y, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    y[i] = to_bf16(x[i]);
}

__global__ void cast_to_float_kernel(const bf16* x, float* y, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    y[i] = to_float(x[i]);
}

}  // namespace

void resid_mix_forward(Context& ctx, const bf16* x, const bf16* x0, const float* mix, bf16* out,
                       int64_t rows, int64_t d) {
  if (rows * d == 0) return;
  resid_mix_forward_kernel<<<grid_for(rows * d), kThreads, 0, ctx.stream()>>>(x, x0, mix, out,
                                                                              rows, d);
  check_launch("resid_mix_forward_kernel");
}

void resid_mix_backward(Context& ctx, const bf16* dout, const bf16* x, const bf16* x0,
                        const float* mix, bf16* dx, bf16* dx0, float* dmix, int64_t rows,
                        int64_t d) {
  PGOLF_CHECK(!dx || dx != dx0, "resid_mix_backward needs separate dx and dx0 buffers");
  if (rows * d == 0) return;
  const int64_t chunks = row_chunks(rows), rows_per_chunk = (rows + chunks - 1) / chunks;
  float* partial = dmix ? ctx.scratch(2 * chunks * d) : nullptr;
  const dim3 grid(unsigned((d + kTileCols - 1) / kTileCols), unsigned(chunks));
  resid_mix_backward_kernel<<<grid, dim3(kTileCols, kRowLanes), 0, ctx.stream()>>>(
      dout, x, x0, mix, dx, dx0, partial, rows, d, rows_per_chunk);
  check_launch("resid_mix_backward_kernel");
  if (!dmix) return;
  add_chunk_sums_kernel<<<grid_for(2 * d), kThreads, 0, ctx.stream()>>>(partial, dmix, chunks, d);
  check_launch("add_chunk_sums_kernel");
}

void cast_to_bf16(Context& ctx, const float* x, bf16* y, int64_t n) {
  if (n == 0) return;
  cast_to_bf16_kernel<<<grid_for(n), kThreads, 0, ctx.stream()>>>(x, y, n);
  check_launch("cast_to_bf16_kernel");
}

void cast_to_float(Context& ctx, const bf16* x, float* y, int64_t n) {
  if (n == 0) return;
  cast_to_float_kernel<<<grid_for(n), kThreads, 0, ctx.stream()>>>(x, y, n);
  check_launch("cast_to_float_kernel");
}

}  // namespace pgolf::cuda
