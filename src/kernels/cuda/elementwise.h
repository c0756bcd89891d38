// Element-wise ops of the residual stream on the GPU (SPEC §2, Block), the twins of
// kernels/cpu/elementwise.h, and the fp32 <-> bf16 casts between master weights and
// matmul operands. Activations and their gradients are bf16; parameters and parameter
// gradients fp32; all arithmetic fp32, each result rounded once. Parameter gradients are
// column sums over rows in a fixed order (the same bits on every run).
#pragma once
#include <cstdint>

#include "core/cuda/runtime.h"

namespace pgolf::cuda {

// out = mix[0,:] x + mix[1,:] x0 over rows of d; mix is [2, d].
void resid_mix_forward(Context& ctx, const bf16* x, const bf16* x0, const float* mix, bf16* out,
                       int64_t rows, int64_t d);

// dx += mix0 dout; dx0 += mix1 dout; dmix[0] += sum_r dout x; dmix[1] += sum_r dout x0.
// Any of dx, dx0, dmix may be null (skipped); dx and dx0 must not be the same buffer.
void resid_mix_backward(Context& ctx, const bf16* dout, const bf16* x, const bf16* x0,
                        const float* mix, bf16* dx, bf16* dx0, float* dmix, int64_t rows,
                        int64_t d);

// y = bf16(x), round to nearest even (fp32 master weights to GEMM operands).
void cast_to_bf16(Context& ctx, const float* x, bf16* y, int64_t n);
// y = float(x), exact.
void cast_to_float(Context& ctx, const bf16* x, float* y, int64_t n);

}  // namespace pgolf::cuda
