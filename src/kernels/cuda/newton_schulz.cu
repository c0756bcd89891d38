// Batched Newton–Schulz 5 in bf16 on the GPU (SPEC §3; see newton_schulz.h).
//
// No transpose is materialised: with rows > cols the reference iterates on Y = X^T; here the
// iterate stays X [rows, cols] and the products are rewritten, A = Y Y^T = X^T X and
// Y' = aY + BY <=> X' = aX + X B^T, which cuBLASLt's transpose flags express directly.
// B = bA + cAA is one GEMM with beta = b and C = A, rounded to bf16 once (the reference's
// eager PyTorch rounds each of its ops); X' likewise with beta = a, C = X.
#include "kernels/cuda/newton_schulz.h"

#include <algorithm>
#include <utility>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/gemm.h"

namespace pgolf::cuda {

namespace {

constexpr float kA = 3.4445f, kB = -4.7750f, kC = 2.0315f;
constexpr float kEps = 1e-7f;

// norm[i] = ‖bf16(G[i])‖_F, one block per matrix, fp32 sums in a fixed order. The reference
// rounds the norm itself to bf16; it is kept in fp32 here.
__global__ void frobenius_kernel(const float* G, float* norm, int64_t numel) {
  __shared__ float shared[32];
  const float* g = G + int64_t(blockIdx.x) * numel;
  float ss = 0;
  for (int64_t j = threadIdx.x; j < numel; j += blockDim.x) {
    const float v = to_float(to_bf16(g[j]));
    ss += v * v;
  }
  ss = block_sum(ss, shared);
  if (threadIdx.x == 0) norm[blockIdx.x] = sqrtf(ss);
}

// W[i] = bf16(bf16(G[i]) / (norm[i] + eps)).
__global__ void normalise_kernel(const float* G, const float* norm, bf16* W, int64_t count,
                                 int64_t numel) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count * numel;
       i += int64_t(gridDim.x) * blockDim.x)
    W[i] = to_bf16(to_float(to_bf16(G[i])) / (norm[i / numel] + kEps));
}

}  // namespace

int64_t newton_schulz5_workspace(int64_t count, int64_t rows, int64_t cols) {
  const int64_t m = std::min(rows, cols);
  return count * (2 * rows * cols + 2 * m * m);
}

void newton_schulz5(Context& ctx, const float* G, bf16* X, int64_t count, int64_t rows,
                    int64_t cols, int steps, bf16* workspace) {
  PGOLF_CHECK(rows > 0 && cols > 0 && count > 0, "Newton-Schulz needs non-empty matrices, got ",
              count, " of ", rows, "x", cols);
  PGOLF_CHECK(steps >= 0, "Newton-Schulz needs a non-negative step count, got ", steps);
  const bool transposed = rows > cols;
  const int64_t m = std::min(rows, cols), numel = rows * cols;
  bf16* W = workspace;               // the iterate, [count, rows, cols]
  bf16* Wn = W + count * numel;      // the next iterate
  bf16* A = Wn + count * numel;      // [count, m, m]
  bf16* B = A + count * m * m;       // [count, m, m]

  float* norm = ctx.scratch(count);
  frobenius_kernel<<<unsigned(count), kThreads, 0, ctx.stream()>>>(G, norm, numel);
  check_launch("newton_schulz frobenius_kernel");
  normalise_kernel<<<grid_for(count * numel), kThreads, 0, ctx.stream()>>>(G, norm, W, count,
                                                                           numel);
  check_launch("newton_schulz normalise_kernel");

  const int c = int(count);
  const GemmBatch square{c, m * m, m * m, m * m};
  for (int s = 0; s < steps; ++s) {
    if (transposed) {  // X is [rows, cols] = [n, m]
      gemm<bf16>(ctx, true, false, m, m, rows, 1.0f, W, cols, W, cols, 0.0f, nullptr, A, m,
                 {c, numel, numel, m * m});                                       // A = X^T X
      gemm<bf16>(ctx, false, false, m, m, m, kC, A, m, A, m, kB, A, B, m, square); // B = bA + cAA
      gemm<bf16>(ctx, false, true, rows, cols, cols, 1.0f, W, cols, B, m, kA, W, Wn, cols,
                 {c, numel, m * m, numel});                                       // X = aX + XB^T
    } else {  // X is [rows, cols] = [m, n]
      gemm<bf16>(ctx, false, true, m, m, cols, 1.0f, W, cols, W, cols, 0.0f, nullptr, A, m,
                 {c, numel, numel, m * m});                                       // A = X X^T
      gemm<bf16>(ctx, false, false, m, m, m, kC, A, m, A, m, kB, A, B, m, square); // B = bA + cAA
      gemm<bf16>(ctx, false, false, rows, cols, m, 1.0f, B, m, W, cols, kA, W, Wn, cols,
                 {c, m * m, numel, numel});                                       // X = aX + BX
    }
    std::swap(W, Wn);
  }
  PGOLF_CUDA_CHECK(cudaMemcpyAsync(X, W, size_t(count * numel) * sizeof(bf16),
                                   cudaMemcpyDeviceToDevice, ctx.stream()));
}

}  // namespace pgolf::cuda
