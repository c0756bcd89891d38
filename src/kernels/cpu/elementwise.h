// The small element-wise ops of the residual stream (SPEC §2, Block and Layers):
// residual mix, per-channel scaled residuals (attn_scale, mlp_scale, skip_weights,
// scalar scales), two-way mixes (value residual), per-head gains and gates, bias.
// Parameter gradients are reduced over rows deterministically (fixed order, the same bits
// for any thread count). Any gradient pointer of a backward here may be null (skipped).
#pragma once
#include <cstdint>

namespace pgolf::cpu {

// out = mix[0,:] * x + mix[1,:] * x0 over rows of d; mix is [2, d].
template <typename T>
void resid_mix_forward(const T* x, const T* x0, const T* mix, T* out, int64_t rows, int64_t d);
// dx += mix0 dout; dx0 += mix1 dout; dmix[0] += sum_r dout x; dmix[1] += sum_r dout x0.
template <typename T>
void resid_mix_backward(const T* dout, const T* x, const T* x0, const T* mix, T* dx, T* dx0,
                        T* dmix, int64_t rows, int64_t d);

// out = x + scale ⊙ delta, scale has `scale_dim` entries: d (per channel) or 1 (a scalar).
// out may alias x.
template <typename T>
void scaled_add_forward(const T* x, const T* delta, const T* scale, T* out, int64_t rows,
                        int64_t d, int64_t scale_dim);
// dx += dout (when dx is non-null; it may be the same buffer as dout only if skipped);
// ddelta += scale ⊙ dout; dscale += sum over rows (and channels for a scalar) of dout ⊙ delta.
template <typename T>
void scaled_add_backward(const T* dout, const T* delta, const T* scale, T* dx, T* ddelta,
                         T* dscale, int64_t rows, int64_t d, int64_t scale_dim);

// out = lam[0] a + lam[1] b over n elements (value residual: u = λ0 u0 + λ1 u).
template <typename T>
void mix2_forward(const T* a, const T* b, const T* lam, T* out, int64_t n);
// da += lam0 dout; db += lam1 dout; dlam[0] += dout·a; dlam[1] += dout·b.
template <typename T>
void mix2_backward(const T* dout, const T* a, const T* b, const T* lam, T* da, T* db, T* dlam,
                   int64_t n);

// Per-head gain: out[r,h,:] = x[r,h,:] * gain[h] over rows of H heads of hd (q_gain).
template <typename T>
void head_scale_forward(const T* x, const T* gain, T* out, int64_t rows, int64_t H, int64_t hd);
// dx += gain[h] dout; dgain[h] += sum dout x.
template <typename T>
void head_scale_backward(const T* dout, const T* x, const T* gain, T* dx, T* dgain, int64_t rows,
                         int64_t H, int64_t hd);

// Gated attention: out[r,h,:] = y[r,h,:] * sigmoid(logit[r,h]).
template <typename T>
void head_gate_forward(const T* y, const T* logit, T* out, int64_t rows, int64_t H, int64_t hd);
// dy += s dout; dlogit[r,h] += (dout·y)[r,h] s (1-s).
template <typename T>
void head_gate_backward(const T* dout, const T* y, const T* logit, T* dy, T* dlogit, int64_t rows,
                        int64_t H, int64_t hd);

// out[r,:] += bias[:];  dbias += sum_r dout[r,:].
template <typename T>
void bias_add_forward(T* out, const T* bias, int64_t rows, int64_t cols);
template <typename T>
void bias_add_backward(const T* dout, T* dbias, int64_t rows, int64_t cols);

// y += alpha x; and the dot product accumulated in double.
template <typename T>
void axpy(int64_t n, T alpha, const T* x, T* y);
template <typename T>
double dot(int64_t n, const T* x, const T* y);

}  // namespace pgolf::cpu
