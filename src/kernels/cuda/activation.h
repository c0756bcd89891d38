// The MLP nonlinearity on the GPU (SPEC §2, Block), the twin of kernels/cpu/activation.h:
// out = leaky_relu(h, slope)², slope 0.5 (0 gives relu²). bf16 in and out, fp32 math.
#pragma once
#include <cstdint>

#include "core/cuda/runtime.h"

namespace pgolf::cuda {

void leaky_relu_sq_forward(Context& ctx, const bf16* h, bf16* out, int64_t n, float slope);

// dh += dout 2 f(h) f'(h), f'(h) = 1 for h > 0 else slope; rounded to bf16 once.
void leaky_relu_sq_backward(Context& ctx, const bf16* dout, const bf16* h, bf16* dh, int64_t n,
                            float slope);

}  // namespace pgolf::cuda
