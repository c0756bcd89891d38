// SmearGate on the GPU (SPEC §2, Embedding 4), the twin of kernels/cpu/smear.h:
// g = sigmoid(gate); out_t = (1-g) h_t + g h_{t-1}, h_{-1} = 0, over B sequences of T rows of
// `dim`. h, out and their gradients are bf16 activations; gate (a parameter, [dim]) and dgate
// fp32; fp32 math, each bf16 result rounded once.
#pragma once
#include <cstdint>

#include "core/cuda/runtime.h"

namespace pgolf::cuda {

// out must not alias h (row t reads row t-1).
void smear_forward(Context& ctx, const bf16* h, const float* gate, bf16* out, int64_t B, int64_t T,
                   int64_t dim);

// dh += dout_t (1-g) + dout_{t+1} g;  dgate += sum_{b,t} dout_t (h_{t-1} - h_t) g (1-g), a
// column sum over the B T rows in a fixed order (kernels/cuda/reduce.cuh: fp32 partials, a
// double total). Either gradient may be null (skipped); dh must not alias dout.
void smear_backward(Context& ctx, const bf16* dout, const bf16* h, const float* gate, bf16* dh,
                    float* dgate, int64_t B, int64_t T, int64_t dim);

}  // namespace pgolf::cuda
