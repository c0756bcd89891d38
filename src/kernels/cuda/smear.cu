// SmearGate on the GPU (SPEC §2, Embedding 4; see smear.h). The backward's term for row r =
// (b, t) multiplies by g (1-g) per element (the CPU does it once per column after its sum):
// the same value up to fp32 rounding.
#include "kernels/cuda/smear.h"

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/reduce.cuh"

namespace pgolf::cuda {

namespace {

struct SmearForward {
  const bf16* h;
  const float* gate;
  bf16* out;
  int64_t T, dim;
  __device__ void operator()(int64_t i) const {
    const int64_t c = i % dim, t = (i / dim) % T;
    const float g = stable_sigmoid(gate[c]);
    const float prev = t > 0 ? g * to_float(h[i - dim]) : 0.0f;
    out[i] = to_bf16((1.0f - g) * to_float(h[i]) + prev);
  }
};

struct SmearBackward {
  const bf16 *dout, *h;
  const float* gate;
  bf16* dh;
  int64_t T, dim;
  __device__ Terms<1> operator()(int64_t r, int64_t c) const {
    const int64_t i = r * dim + c, t = r % T;
    const float g = stable_sigmoid(gate[c]), d = to_float(dout[i]), x = to_float(h[i]);
    const float prev = t > 0 ? to_float(h[i - dim]) : 0.0f;
    if (dh) {
      const float next = t + 1 < T ? to_float(dout[i + dim]) : 0.0f;
      dh[i] = to_bf16(to_float(dh[i]) + (1.0f - g) * d + g * next);
    }
    return {{d * (prev - x) * (g * (1.0f - g))}};
  }
};

}  // namespace

void smear_forward(Context& ctx, const bf16* h, const float* gate, bf16* out, int64_t B, int64_t T,
                   int64_t dim) {
  for_each(ctx, B * T * dim, SmearForward{h, gate, out, T, dim}, "smear_forward");
}

void smear_backward(Context& ctx, const bf16* dout, const bf16* h, const float* gate, bf16* dh,
                    float* dgate, int64_t B, int64_t T, int64_t dim) {
  PGOLF_CHECK(!dh || dh != dout, "smear_backward needs dh apart from dout (it reads dout_{t+1})");
  if (!dh && !dgate) return;
  column_sums<1>(ctx, SmearBackward{dout, h, gate, dh, T, dim}, dgate, B * T, dim, 1,
                 "smear_backward");
}

}  // namespace pgolf::cuda
