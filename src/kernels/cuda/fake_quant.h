// Late-QAT fake quantisation on the GPU (SPEC §3), the twin of kernels/cpu/fake_quant.h on
// fp32 master weights: per row, scale = max(rowmax|w| / 31, 1/31) and
// w_q = clamp(round_half_even(w / scale), -32, 31) scale. Every step is one correctly rounded
// fp32 operation (IEEE division, no fused multiply-add to contract), as on the CPU: the result
// is bitwise the CPU's for the same fp32 input.
#pragma once
#include <cstdint>

#include "core/cuda/runtime.h"

namespace pgolf::cuda {

// out[rows, cols] = fake_quant(w[rows, cols]), one block per row. out may alias w.
void fake_quant_int6_rows(Context& ctx, const float* w, float* out, int64_t rows, int64_t cols);

}  // namespace pgolf::cuda
