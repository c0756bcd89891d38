// The AdamW update on the GPU (SPEC §3; see adamw.h). nvcc contracts multiply-adds into
// FMAs, so results may differ from the CPU's in the last bits.
#include "kernels/cuda/adamw.h"

#include <cmath>

#include "kernels/cuda/common.cuh"

namespace pgolf::cuda {

namespace {

__global__ void adamw_kernel(float* p, const float* g, float* m, float* v, int64_t n,
                             const AdamWStep* step) {
  const AdamWStep s = *step;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const float gi = g[i];
    float w = p[i];
    if (s.decay) w *= s.keep;
    const float mi = s.beta1 * m[i] + s.one_minus_beta1 * gi;
    const float vi = s.beta2 * v[i] + s.one_minus_beta2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = w - s.step_size * mi / (sqrtf(vi) / s.bc2_sqrt + s.eps);
  }
}

}  // namespace

AdamWStep adamw_step(int64_t step, double lr, double weight_decay, double beta1, double beta2,
                     double eps) {
  PGOLF_CHECK(step >= 1, "an AdamW step count starts at 1, got ", step);
  PGOLF_CHECK(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1,
              "AdamW needs betas in [0, 1), got ", beta1, " and ", beta2);
  const double bc1 = 1.0 - std::pow(beta1, double(step));
  const double bc2 = 1.0 - std::pow(beta2, double(step));
  return {float(lr / bc1),         float(std::sqrt(bc2)),  float(eps),
          float(beta1),            float(beta2),           float(1.0 - beta1),
          float(1.0 - beta2),      float(1.0 - lr * weight_decay), weight_decay != 0};
}

void adamw_update(Context& ctx, float* p, const float* g, float* m, float* v, int64_t n,
                  const AdamWStep* s) {
  if (n == 0) return;
  adamw_kernel<<<grid_for(n), kThreads, 0, ctx.stream()>>>(p, g, m, v, n, s);
  check_launch("adamw_kernel");
}

}  // namespace pgolf::cuda
