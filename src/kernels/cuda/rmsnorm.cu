// Weightless RMS norm on the GPU (SPEC §2, rms): one warp per row, fp32 sums in a fixed
// butterfly order (deterministic).
#include "kernels/cuda/rmsnorm.h"

#include "kernels/cpu/rmsnorm.h"
#include "kernels/cuda/common.cuh"

namespace pgolf::cuda {

namespace {

constexpr int kRowsPerBlock = kThreads / 32;

// rstd = 1/sqrt(mean(x²) + eps), y = scale x rstd. Every lane has read its elements of the
// row before the warp sum, so y may alias x.
__global__ void rmsnorm_forward_kernel(const bf16* x, bf16* y, float* rstd, int64_t rows,
                                       int64_t dim, float scale) {
  const int64_t row = int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / 32;
  if (row >= rows) return;
  const int lane = threadIdx.x % 32;
  const bf16* xr = x + row * dim;
  bf16* yr = y + row * dim;
  float ss = 0;
  for (int64_t c = lane; c < dim; c += 32) {
    const float v = to_float(xr[c]);
    ss += v * v;
  }
  const float rs = 1.0f / sqrtf(warp_sum(ss) / float(dim) + float(cpu::kRmsEps));
  if (lane == 0) rstd[row] = rs;
  for (int64_t c = lane; c < dim; c += 32) yr[c] = to_bf16(scale * to_float(xr[c]) * rs);
}

// dx += scale rs (dy - x rs m), m = mean(dy xhat) = rs sum(dy x) / dim.
__global__ void rmsnorm_backward_kernel(const bf16* dy, const bf16* x, const float* rstd,
                                        bf16* dx, int64_t rows, int64_t dim, float scale) {
  const int64_t row = int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / 32;
  if (row >= rows) return;
  const int lane = threadIdx.x % 32;
  const bf16 *xr = x + row * dim, *dyr = dy + row * dim;
  bf16* dxr = dx + row * dim;
  const float rs = rstd[row];
  float dot = 0;
  for (int64_t c = lane; c < dim; c += 32) dot += to_float(dyr[c]) * to_float(xr[c]);
  const float m = warp_sum(dot) * rs / float(dim);
  for (int64_t c = lane; c < dim; c += 32)
    dxr[c] = to_bf16(to_float(dxr[c]) +
                     scale * rs * (to_float(dyr[c]) - to_float(xr[c]) * rs * m));
}

unsigned row_blocks(int64_t rows) { return unsigned((rows + kRowsPerBlock - 1) / kRowsPerBlock); }

}  // namespace

void rmsnorm_forward(Context& ctx, const bf16* x, bf16* y, float* rstd, int64_t rows,
                     int64_t dim, float scale) {
  if (rows == 0) return;
  rmsnorm_forward_kernel<<<row_blocks(rows), kThreads, 0, ctx.stream()>>>(x, y, rstd, rows, dim,
                                                                          scale);
  check_launch("rmsnorm_forward_kernel");
}

void rmsnorm_backward(Context& ctx, const bf16* dy, const bf16* x, const float* rstd, bf16* dx,
                      int64_t rows, int64_t dim, float scale) {
  if (rows == 0) return;
  rmsnorm_backward_kernel<<<row_blocks(rows), kThreads, 0, ctx.stream()>>>(dy, x, rstd, dx, rows,
                                                                           dim, scale);
  check_launch("rmsnorm_backward_kernel");
}

}  // namespace pgolf::cuda
