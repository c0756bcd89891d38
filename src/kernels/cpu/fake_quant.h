// Late-QAT fake quantisation (SPEC §3, SEEDS.md §0 "Late QAT"): each row of a matrix is
// rounded to the int6 grid the reference's CastedLinear uses during training:
// scale = max(rowmax|w| / 31, 1/31), w_q = clamp(round(w / scale), -32, 31) * scale, with
// round-half-to-even as torch.round. The gradient is straight-through: callers run the
// forward and backward at w_q and apply the update to the full-precision w.
#pragma once
#include <cstdint>

namespace pgolf::cpu {

template <typename T>
void fake_quant_int6_rows(const T* w, T* out, int64_t rows, int64_t cols);

}  // namespace pgolf::cpu
