// XSA on the GPU (SPEC §2, Block), the twin of kernels/cpu/xsa.h: remove from each head's
// attention output its component along the unit value vector of its kv group at the same
// position: n = v_t / max(‖v_t‖, 1e-12) (F.normalize), out_h = y_h - (y_h·n) n, head h in kv
// group h / (H/Hkv). y, v, out and the gradients in bf16; norms, dots and sums in fp32.
#pragma once
#include <cstdint>

#include "core/cuda/runtime.h"

namespace pgolf::cuda {

// y, out: [rows, H, hd]; v: [rows, Hkv, hd]; hd <= 1024. out may alias y (each lane reads its
// elements of a head before the warp writes them).
void xsa_forward(Context& ctx, const bf16* y, const bf16* v, bf16* out, int64_t rows, int64_t H,
                 int64_t Hkv, int64_t hd);

// dy += dout - (dout·n) n;  dv += (I - n n^T)/‖v‖ · Σ_h -[(y_h·n) dout_h + (dout_h·n) y_h]
// (dv += dn/1e-12 where the norm is clamped), as cpu::xsa_backward; each element of dy and dv
// rounded to bf16 once, after its fp32 sum is added.
void xsa_backward(Context& ctx, const bf16* dout, const bf16* y, const bf16* v, bf16* dy, bf16* dv,
                  int64_t rows, int64_t H, int64_t Hkv, int64_t hd);

}  // namespace pgolf::cuda
