// XSA (SPEC §2, Block): remove from each head's attention output its component along the
// unit value vector of its kv group at the same position:
// n = v_t / max(‖v_t‖, 1e-12) (F.normalize), out_h = y_h - (y_h·n) n, head h in kv group h / (H/Hkv).
#pragma once
#include <cstdint>

namespace pgolf::cpu {

// y, out: [rows, H, hd]; v: [rows, Hkv, hd]. out may not alias y.
template <typename T>
void xsa_forward(const T* y, const T* v, T* out, int64_t rows, int64_t H, int64_t Hkv, int64_t hd);

// dy += dout - (dout·n) n;  dv += (I - n n^T)/‖v‖ · Σ_h -[(y_h·n) dout_h + (dout_h·n) y_h].
template <typename T>
void xsa_backward(const T* dout, const T* y, const T* v, T* dy, T* dv, int64_t rows, int64_t H,
                  int64_t Hkv, int64_t hd);

}  // namespace pgolf::cpu
