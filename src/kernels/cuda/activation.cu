// leaky_relu(h, slope)² and its derivative on the GPU (SPEC §2, Block: the MLP).
#include "kernels/cuda/activation.h"

#include "kernels/cuda/common.cuh"

namespace pgolf::cuda {

namespace {

// out = f(h)², f(h) = h for h > 0 else slope h.
__global__ void leaky_relu_sq_forward_kernel(const bf16* h, bf16* out, int64_t n, float slope) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const float x = to_float(h[i]), f = x > 0.0f ? x : slope * x;
    out[i] = to_bf16(f * f);
  }
}

// d(f²)/dh = 2h for h > 0, else 2 slope² h.
__global__ void leaky_relu_sq_backward_kernel(const bf16* dout, const bf16* h, bf16* dh,
                                              int64_t n, float slope) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const float x = to_float(h[i]), df = x > 0.0f ? 2.0f * x : 2.0f * slope * slope * x;
    dh[i] = to_bf16(to_float(dh[i]) + to_float(dout[i]) * df);
  }
}

}  // namespace

void leaky_relu_sq_forward(Context& ctx, const bf16* h, bf16* out, int64_t n, float slope) {
  if (n == 0) return;
  leaky_relu_sq_forward_kernel<<<grid_for(n), kThreads, 0, ctx.stream()>>>(h, out, n, slope);
  check_launch("leaky_relu_sq_forward_kernel");
}

void leaky_relu_sq_backward(Context& ctx, const bf16* dout, const bf16* h, bf16* dh, int64_t n,
                            float slope) {
  if (n == 0) return;
  leaky_relu_sq_backward_kernel<<<grid_for(n), kThreads, 0, ctx.stream()>>>(dout, h, dh, n,
                                                                            slope);
  check_launch("leaky_relu_sq_backward_kernel");
}

}  // namespace pgolf::cuda
