// Weightless RMS norm on the GPU (SPEC §2, rms), the twin of kernels/cpu/rmsnorm.h:
// y = scale x rstd, rstd = 1/sqrt(mean(x²) + eps), eps = cpu::kRmsEps (float32 machine
// epsilon). x, y, dy, dx in bf16; the mean, rstd and every product in fp32 (SPEC mixed
// precision: norms in fp32).
#pragma once
#include <cstdint>

#include "core/cuda/runtime.h"

namespace pgolf::cuda {

// y[r,:] = bf16(scale x[r,:] rstd[r]); rstd[r] (fp32) is kept for the backward. y may alias x.
void rmsnorm_forward(Context& ctx, const bf16* x, bf16* y, float* rstd, int64_t rows,
                     int64_t dim, float scale);

// dx += scale rstd (dy - xhat mean(dy xhat)), xhat = x rstd; the sum in fp32, rounded to
// bf16 once.
void rmsnorm_backward(Context& ctx, const bf16* dy, const bf16* x, const float* rstd, bf16* dx,
                      int64_t rows, int64_t dim, float scale);

}  // namespace pgolf::cuda
