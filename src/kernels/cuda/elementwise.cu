// Element-wise ops of the residual stream on the GPU (SPEC §2, Block and Layers) and the
// casts. Each op is a functor run by for_each (one thread per element) or, for a backward with
// a parameter gradient, by column_sums / flat_sums (kernels/cuda/reduce.cuh), whose terms also
// write the element's activation gradients.
#include "kernels/cuda/elementwise.h"

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/reduce.cuh"

namespace pgolf::cuda {

namespace {

// g = old + a, rounded to bf16 once: how every activation gradient here accumulates.
__device__ __forceinline__ void add_to(bf16* g, int64_t i, float a) {
  g[i] = to_bf16(to_float(g[i]) + a);
}

struct ResidMixForward {
  const bf16 *x, *x0;
  const float* mix;
  bf16* out;
  int64_t d;
  __device__ void operator()(int64_t i) const {
    const int64_t c = i % d;
    out[i] = to_bf16(mix[c] * to_float(x[i]) + mix[d + c] * to_float(x0[i]));
  }
};

struct ResidMixBackward {
  const bf16 *dout, *x, *x0;
  const float* mix;
  bf16 *dx, *dx0;
  int64_t d;
  __device__ Terms<2> operator()(int64_t r, int64_t c) const {
    const int64_t i = r * d + c;
    const float g = to_float(dout[i]);
    if (dx) add_to(dx, i, mix[c] * g);
    if (dx0) add_to(dx0, i, mix[d + c] * g);
    return {{g * to_float(x[i]), g * to_float(x0[i])}};
  }
};

// `per` is the scale's stride over channels: 1 per channel, 0 for a scalar.
struct ScaledAddForward {
  const bf16 *x, *delta;
  const float* scale;
  bf16* out;
  int64_t d, per;
  __device__ void operator()(int64_t i) const {
    out[i] = to_bf16(to_float(x[i]) + scale[(i % d) * per] * to_float(delta[i]));
  }
};

struct ScaledAddBackward {
  const bf16 *dout, *delta;
  const float* scale;
  bf16 *dx, *ddelta;
  int64_t d, per;
  __device__ Terms<1> operator()(int64_t r, int64_t c) const {
    const int64_t i = r * d + c;
    const float g = to_float(dout[i]);
    if (dx) add_to(dx, i, g);
    if (ddelta) add_to(ddelta, i, scale[c * per] * g);
    return {{g * to_float(delta[i])}};
  }
};

struct Mix2Forward {
  const bf16 *a, *b;
  const float* lam;
  bf16* out;
  __device__ void operator()(int64_t i) const {
    out[i] = to_bf16(lam[0] * to_float(a[i]) + lam[1] * to_float(b[i]));
  }
};

struct Mix2Backward {
  const bf16 *dout, *a, *b;
  const float* lam;
  bf16 *da, *db;
  __device__ Terms<2> operator()(int64_t i) const {
    const float g = to_float(dout[i]);
    if (da) add_to(da, i, lam[0] * g);
    if (db) add_to(db, i, lam[1] * g);
    return {{g * to_float(a[i]), g * to_float(b[i])}};
  }
};

struct HeadScaleForward {
  const bf16* x;
  const float* gain;
  bf16* out;
  int64_t d, hd;
  __device__ void operator()(int64_t i) const {
    out[i] = to_bf16(gain[(i % d) / hd] * to_float(x[i]));
  }
};

struct HeadScaleBackward {
  const bf16 *dout, *x;
  const float* gain;
  bf16* dx;
  int64_t d, hd;
  __device__ Terms<1> operator()(int64_t r, int64_t c) const {
    const int64_t i = r * d + c;
    const float g = to_float(dout[i]);
    if (dx) add_to(dx, i, gain[c / hd] * g);
    return {{g * to_float(x[i])}};
  }
};

struct HeadGateForward {
  const bf16 *y, *logit;
  bf16* out;
  int64_t hd;
  __device__ void operator()(int64_t i) const {
    out[i] = to_bf16(stable_sigmoid(to_float(logit[i / hd])) * to_float(y[i]));
  }
};

constexpr int kWarpsPerBlock = kThreads / 32;

// One warp per (row, head): the lanes stride over hd, the dot is warp_sum's butterfly.
__global__ void head_gate_backward_kernel(const bf16* dout, const bf16* y, const bf16* logit,
                                          bf16* dy, bf16* dlogit, int64_t rows_heads, int64_t hd) {
  const int64_t rh = int64_t(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  if (rh >= rows_heads) return;  // a whole warp leaves together
  const int lane = threadIdx.x % 32;
  const float s = stable_sigmoid(to_float(logit[rh]));
  const int64_t o = rh * hd;
  float dot = 0;
  for (int64_t j = lane; j < hd; j += 32) {
    const float g = to_float(dout[o + j]);
    dot += g * to_float(y[o + j]);
    if (dy) add_to(dy, o + j, s * g);
  }
  dot = warp_sum(dot);
  if (dlogit && lane == 0) add_to(dlogit, rh, dot * s * (1.0f - s));
}

struct BiasAddForward {
  bf16* out;
  const float* bias;
  int64_t cols;
  __device__ void operator()(int64_t i) const { add_to(out, i, bias[i % cols]); }
};

struct BiasAddBackward {
  const bf16* dout;
  int64_t cols;
  __device__ Terms<1> operator()(int64_t r, int64_t c) const {
    return {{to_float(dout[r * cols + c])}};
  }
};

struct AddInto {
  const bf16* src;
  bf16* dst;
  __device__ void operator()(int64_t i) const { add_to(dst, i, to_float(src[i])); }
};

struct Fill {
  float* p;
  float value;
  __device__ void operator()(int64_t i) const { p[i] = value; }
};

struct CastToBf16 {
  const float* x;
  bf16* y;
  __device__ void operator()(int64_t i) const { y[i] = to_bf16(x[i]); }
};

struct CastToFloat {
  const bf16* x;
  float* y;
  __device__ void operator()(int64_t i) const { y[i] = to_float(x[i]); }
};

void check_scale_dim(int64_t scale_dim, int64_t d) {
  PGOLF_CHECK(scale_dim == d || scale_dim == 1, "scaled_add needs a scale of ", d,
              " channels or a scalar, got ", scale_dim);
}

}  // namespace

void resid_mix_forward(Context& ctx, const bf16* x, const bf16* x0, const float* mix, bf16* out,
                       int64_t rows, int64_t d) {
  for_each(ctx, rows * d, ResidMixForward{x, x0, mix, out, d}, "resid_mix_forward");
}

void resid_mix_backward(Context& ctx, const bf16* dout, const bf16* x, const bf16* x0,
                        const float* mix, bf16* dx, bf16* dx0, float* dmix, int64_t rows,
                        int64_t d) {
  PGOLF_CHECK(!dx || dx != dx0, "resid_mix_backward needs separate dx and dx0 buffers");
  column_sums<2>(ctx, ResidMixBackward{dout, x, x0, mix, dx, dx0, d}, dmix, rows, d, 1,
                 "resid_mix_backward");
}

void scaled_add_forward(Context& ctx, const bf16* x, const bf16* delta, const float* scale,
                        bf16* out, int64_t rows, int64_t d, int64_t scale_dim) {
  check_scale_dim(scale_dim, d);
  for_each(ctx, rows * d, ScaledAddForward{x, delta, scale, out, d, scale_dim == 1 ? 0 : 1},
           "scaled_add_forward");
}

void scaled_add_backward(Context& ctx, const bf16* dout, const bf16* delta, const float* scale,
                         bf16* dx, bf16* ddelta, float* dscale, int64_t rows, int64_t d,
                         int64_t scale_dim) {
  check_scale_dim(scale_dim, d);
  PGOLF_CHECK(!ddelta || ddelta != dx, "scaled_add_backward needs separate dx and ddelta");
  column_sums<1>(ctx, ScaledAddBackward{dout, delta, scale, dx, ddelta, d, scale_dim == 1 ? 0 : 1},
                 dscale, rows, d, scale_dim == 1 ? d : 1, "scaled_add_backward");
}

void mix2_forward(Context& ctx, const bf16* a, const bf16* b, const float* lam, bf16* out,
                  int64_t n) {
  for_each(ctx, n, Mix2Forward{a, b, lam, out}, "mix2_forward");
}

void mix2_backward(Context& ctx, const bf16* dout, const bf16* a, const bf16* b, const float* lam,
                   bf16* da, bf16* db, float* dlam, int64_t n) {
  PGOLF_CHECK(!da || da != db, "mix2_backward needs separate da and db buffers");
  flat_sums<2>(ctx, Mix2Backward{dout, a, b, lam, da, db}, dlam, n, "mix2_backward");
}

void head_scale_forward(Context& ctx, const bf16* x, const float* gain, bf16* out, int64_t rows,
                        int64_t H, int64_t hd) {
  for_each(ctx, rows * H * hd, HeadScaleForward{x, gain, out, H * hd, hd}, "head_scale_forward");
}

void head_scale_backward(Context& ctx, const bf16* dout, const bf16* x, const float* gain, bf16* dx,
                         float* dgain, int64_t rows, int64_t H, int64_t hd) {
  column_sums<1>(ctx, HeadScaleBackward{dout, x, gain, dx, H * hd, hd}, dgain, rows, H * hd, hd,
                 "head_scale_backward");
}

void head_gate_forward(Context& ctx, const bf16* y, const bf16* logit, bf16* out, int64_t rows,
                       int64_t H, int64_t hd) {
  for_each(ctx, rows * H * hd, HeadGateForward{y, logit, out, hd}, "head_gate_forward");
}

void head_gate_backward(Context& ctx, const bf16* dout, const bf16* y, const bf16* logit, bf16* dy,
                        bf16* dlogit, int64_t rows, int64_t H, int64_t hd) {
  const int64_t rows_heads = rows * H;
  if (rows_heads * hd == 0) return;
  const unsigned blocks = unsigned((rows_heads + kWarpsPerBlock - 1) / kWarpsPerBlock);
  head_gate_backward_kernel<<<blocks, kThreads, 0, ctx.stream()>>>(dout, y, logit, dy, dlogit,
                                                                   rows_heads, hd);
  check_launch("head_gate_backward_kernel");
}

void bias_add_forward(Context& ctx, bf16* out, const float* bias, int64_t rows, int64_t cols) {
  for_each(ctx, rows * cols, BiasAddForward{out, bias, cols}, "bias_add_forward");
}

void bias_add_backward(Context& ctx, const bf16* dout, float* dbias, int64_t rows, int64_t cols) {
  if (!dbias) return;
  column_sums<1>(ctx, BiasAddBackward{dout, cols}, dbias, rows, cols, 1, "bias_add_backward");
}

void add_into(Context& ctx, const bf16* src, bf16* dst, int64_t n) {
  PGOLF_CHECK(src != dst, "add_into needs separate src and dst buffers");
  for_each(ctx, n, AddInto{src, dst}, "add_into");
}

void fill(Context& ctx, float* p, float value, int64_t n) {
  for_each(ctx, n, Fill{p, value}, "fill");
}

void cast_to_bf16(Context& ctx, const float* x, bf16* y, int64_t n) {
  for_each(ctx, n, CastToBf16{x, y}, "cast_to_bf16");
}

void cast_to_float(Context& ctx, const bf16* x, float* y, int64_t n) {
  for_each(ctx, n, CastToFloat{x, y}, "cast_to_float");
}

}  // namespace pgolf::cuda
