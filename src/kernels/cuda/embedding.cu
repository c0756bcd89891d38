// Embedding gather / scatter-add and the BigramHash index on the GPU (SPEC §2, Embedding 1–2).
#include "kernels/cuda/embedding.h"

#include "kernels/cuda/common.cuh"

namespace pgolf::cuda {

namespace {

__global__ void embedding_forward_kernel(const int32_t* ids, const float* table, bf16* out,
                                         int64_t n, int64_t dim) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n * dim;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t row = i / dim, c = i % dim;
    out[i] = to_bf16(table[int64_t(ids[row]) * dim + c]);
  }
}

__global__ void embedding_backward_kernel(const int32_t* ids, const bf16* dout, float* dtable,
                                          int64_t n, int64_t dim) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n * dim;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t row = i / dim, c = i % dim;
    atomicAdd(dtable + int64_t(ids[row]) * dim + c, to_float(dout[i]));
  }
}

// Products wrap as uint32 (defined), reinterpreted as int32 as torch's int32 tensors wrap.
__global__ void bigram_hash_kernel(const int32_t* tokens, int32_t* idx, int64_t B, int64_t T,
                                   int32_t mod) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < B * T;
       i += int64_t(gridDim.x) * blockDim.x) {
    if (i % T == 0) {
      idx[i] = mod;
      continue;
    }
    const uint32_t h = (36313u * uint32_t(tokens[i])) ^ (27191u * uint32_t(tokens[i - 1]));
    const int32_t r = int32_t(h) % mod;
    idx[i] = r < 0 ? r + mod : r;
  }
}

}  // namespace

void embedding_forward(Context& ctx, const int32_t* ids, const float* table, bf16* out,
                       int64_t n, int64_t dim) {
  if (n * dim == 0) return;
  embedding_forward_kernel<<<grid_for(n * dim), kThreads, 0, ctx.stream()>>>(ids, table, out, n,
                                                                             dim);
  check_launch("embedding_forward_kernel");
}

void embedding_backward(Context& ctx, const int32_t* ids, const bf16* dout, float* dtable,
                        int64_t n, int64_t dim) {
  if (n * dim == 0) return;
  embedding_backward_kernel<<<grid_for(n * dim), kThreads, 0, ctx.stream()>>>(ids, dout, dtable,
                                                                              n, dim);
  check_launch("embedding_backward_kernel");
}

void bigram_hash(Context& ctx, const int32_t* tokens, int32_t* idx, int64_t B, int64_t T,
                 int64_t bigram_vocab) {
  PGOLF_CHECK(bigram_vocab >= 2, "bigram_hash needs bigram_vocab_size >= 2 (it hashes mod Bv-1)");
  if (B * T == 0) return;
  bigram_hash_kernel<<<grid_for(B * T), kThreads, 0, ctx.stream()>>>(tokens, idx, B, T,
                                                                     int32_t(bigram_vocab - 1));
  check_launch("bigram_hash_kernel");
}

}  // namespace pgolf::cuda
