// The AdamW update on the GPU (SPEC §3), element for element the update of
// optim/adamw.h (torch's fused AdamW order), on fp32 parameters, gradients and moments:
//   p *= 1 - lr wd (when wd != 0); m = b1 m + (1-b1) g; v = b2 v + (1-b2) g²;
//   p -= (lr / bc1) m / (sqrt(v) / sqrt(bc2) + eps), bc_i = 1 - b_i^step.
// The step's scalars are computed on the host in double and rounded to float once, as
// AdamW<float>::step does, so both backends use the same factors; the kernel reads them from
// device memory, so one captured CUDA graph replays every step with new values
// (train/cuda/device_optimizer_set.h).
#pragma once
#include <cstdint>

#include "core/cuda/runtime.h"

namespace pgolf::cuda {

struct AdamWStep {
  float step_size;  // lr / bc1
  float bc2_sqrt;   // sqrt(bc2)
  float eps, beta1, beta2, one_minus_beta1, one_minus_beta2;
  float keep;       // 1 - lr wd
  bool decay;       // wd != 0
};

// The scalars of update number `step` (1 for the first) at this lr and weight decay.
AdamWStep adamw_step(int64_t step, double lr, double weight_decay, double beta1 = 0.9,
                     double beta2 = 0.95, double eps = 1e-8);

// One update of n elements: p, m, v in place from g, with the scalars *s (device memory).
void adamw_update(Context& ctx, float* p, const float* g, float* m, float* v, int64_t n,
                  const AdamWStep* s);

}  // namespace pgolf::cuda
