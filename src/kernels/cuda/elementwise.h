// Element-wise ops of the residual stream on the GPU (SPEC §2, Block and Layers), the twins of
// kernels/cpu/elementwise.h, and the fp32 <-> bf16 casts between master weights and
// matmul operands. Activations and their gradients are bf16; parameters and parameter
// gradients fp32; all arithmetic fp32, each result rounded once. Parameter gradients are
// sums over rows in a fixed order without atomics (kernels/cuda/reduce.cuh: fp32 partials,
// a double total; the same bits on every run). Any gradient pointer may be null (skipped).
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

// out = x + scale ⊙ delta over rows of d; scale (a parameter) has scale_dim entries: d (per
// channel) or 1 (a scalar). out may alias x.
void scaled_add_forward(Context& ctx, const bf16* x, const bf16* delta, const float* scale,
                        bf16* out, int64_t rows, int64_t d, int64_t scale_dim);
// dx += dout (dx may be dout's buffer only when null); ddelta += scale ⊙ dout;
// dscale += sum over rows (and over channels for a scalar scale) of dout ⊙ delta.
void scaled_add_backward(Context& ctx, const bf16* dout, const bf16* delta, const float* scale,
                         bf16* dx, bf16* ddelta, float* dscale, int64_t rows, int64_t d,
                         int64_t scale_dim);

// out = lam[0] a + lam[1] b over n elements (value residual); lam is a parameter [2].
void mix2_forward(Context& ctx, const bf16* a, const bf16* b, const float* lam, bf16* out,
                  int64_t n);
// da += lam0 dout; db += lam1 dout; dlam[0] += dout·a; dlam[1] += dout·b (the dot products
// as a flat sum: fp32 partials, double total). da and db must not be the same buffer.
void mix2_backward(Context& ctx, const bf16* dout, const bf16* a, const bf16* b, const float* lam,
                   bf16* da, bf16* db, float* dlam, int64_t n);

// Per-head gain (q_gain): out[r,h,:] = gain[h] x[r,h,:] over rows of H heads of hd.
void head_scale_forward(Context& ctx, const bf16* x, const float* gain, bf16* out, int64_t rows,
                        int64_t H, int64_t hd);
// dx += gain[h] dout; dgain[h] += sum over rows and the head's channels of dout x.
void head_scale_backward(Context& ctx, const bf16* dout, const bf16* x, const float* gain, bf16* dx,
                         float* dgain, int64_t rows, int64_t H, int64_t hd);

// Gated attention: out[r,h,:] = sigmoid(logit[r,h]) y[r,h,:]; logit is an activation
// [rows, H].
void head_gate_forward(Context& ctx, const bf16* y, const bf16* logit, bf16* out, int64_t rows,
                       int64_t H, int64_t hd);
// dy += s dout; dlogit[r,h] += (dout·y)[r,h] s (1-s), s = sigmoid(logit[r,h]); one warp per
// (r, h), the dot in a fixed butterfly order.
void head_gate_backward(Context& ctx, const bf16* dout, const bf16* y, const bf16* logit, bf16* dy,
                        bf16* dlogit, int64_t rows, int64_t H, int64_t hd);

// out[r,:] += bias (a parameter) over rows of cols.
void bias_add_forward(Context& ctx, bf16* out, const float* bias, int64_t rows, int64_t cols);
// dbias += sum_r dout[r,:].
void bias_add_backward(Context& ctx, const bf16* dout, float* dbias, int64_t rows, int64_t cols);

// dst += src over n elements, each sum rounded to bf16 once (an activation gradient reaching a
// tensor by a second path: the CPU's axpy with coefficient 1). dst may not alias src.
void add_into(Context& ctx, const bf16* src, bf16* dst, int64_t n);

// p[i] = value over n floats: a device-side fill, which a CUDA graph can replay (a copy from a
// host array could not be captured), e.g. the loss gradient of every token.
void fill(Context& ctx, float* p, float value, int64_t n);

// y = bf16(x), round to nearest even (fp32 master weights to GEMM operands).
void cast_to_bf16(Context& ctx, const float* x, bf16* y, int64_t n);
// y = float(x), exact.
void cast_to_float(Context& ctx, const bf16* x, float* y, int64_t n);

}  // namespace pgolf::cuda
