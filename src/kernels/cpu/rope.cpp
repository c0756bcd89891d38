// Partial rotary position embedding on CPU (SPEC §2, Block).
#include "kernels/cpu/rope.h"

#include <cmath>

#include "core/error.h"
#include "kernels/cpu/parallel.h"

namespace pgolf::cpu {

// inv_freq_j = 1/base'^(2j/r), cos/sin[t, j] = cos/sin(t·inv_freq_j), all in T as the
// reference computes them in float32; base' = base·(seq_len/train_seq_len)^(r/(r-2)) when
// seq_len > train_seq_len (computed in double, as the reference does in Python).
template <typename T>
void rope_tables(int64_t seq_len, int64_t rdims, double base, int64_t train_seq_len, T* cos,
                 T* sin) {
  PGOLF_CHECK(rdims > 0 && rdims % 2 == 0, "rope_tables needs a positive even number of rotary "
              "dims, got ", rdims, " (resolve rope_dims = 0 to the head dim first)");
  if (seq_len > train_seq_len) {
    PGOLF_CHECK(rdims > 2, "the RoPE base rescale for long sequences needs rope_dims > 2");
    base *= std::pow(double(seq_len) / double(train_seq_len), double(rdims) / double(rdims - 2));
  }
  const int64_t half = rdims / 2;
  for (int64_t j = 0; j < half; j++) {
    const T inv_freq = T(1) / std::pow(T(base), T(2 * j) / T(rdims));
    for (int64_t t = 0; t < seq_len; t++) {
      const T angle = T(t) * inv_freq;
      cos[t * half + j] = std::cos(angle);
      sin[t * half + j] = std::sin(angle);
    }
  }
}

namespace {

// Rotates each head of src by `sign` times the RoPE angle into dst: with s' = sign * sin,
// dst1 = src1 cos + src2 s', dst2 = -src1 s' + src2 cos; dims past r pass through. With
// `accumulate` dst += the result (dst must not alias src); otherwise dst = the result and
// dst may alias src (the pass-through copy is then skipped). sign is +1 or -1, so s' is exact.
template <typename T, bool accumulate>
void rotate(const T* src, T* dst, const T* cos, const T* sin, T sign, int64_t B,
            int64_t seq_len, int64_t heads, int64_t hd, int64_t rdims) {
  const int64_t r = rdims == 0 ? hd : rdims, half = r / 2;
#pragma omp parallel for collapse(2) if (worth_threads(B * seq_len * heads * hd))
  for (int64_t b = 0; b < B; b++)
    for (int64_t t = 0; t < seq_len; t++) {
      const T *c = cos + t * half, *s = sin + t * half;
      for (int64_t h = 0; h < heads; h++) {
        const int64_t off = ((b * seq_len + t) * heads + h) * hd;
        const T* xi = src + off;
        T* o = dst + off;
        for (int64_t j = 0; j < half; j++) {
          const T x1 = xi[j], x2 = xi[j + half], sj = sign * s[j];
          const T y1 = x1 * c[j] + x2 * sj, y2 = -x1 * sj + x2 * c[j];
          if constexpr (accumulate) {
            o[j] += y1;
            o[j + half] += y2;
          } else {
            o[j] = y1;
            o[j + half] = y2;
          }
        }
        if constexpr (accumulate) {
          for (int64_t d = r; d < hd; d++) o[d] += xi[d];
        } else if (o != xi) {
          for (int64_t d = r; d < hd; d++) o[d] = xi[d];
        }
      }
    }
}

}  // namespace

// out = [x1 cos + x2 sin, -x1 sin + x2 cos, x_pass] per head, x1 = x[:r/2], x2 = x[r/2:r].
template <typename T>
void rope_forward(const T* x, T* out, const T* cos, const T* sin, int64_t B, int64_t seq_len,
                  int64_t heads, int64_t hd, int64_t rdims) {
  rotate<T, false>(x, out, cos, sin, T(1), B, seq_len, heads, hd, rdims);
}

// dx += R^T dout: dx1 += dout1 cos - dout2 sin, dx2 += dout1 sin + dout2 cos; dx_pass += dout_pass.
// R^T is the rotation by the negated angle.
template <typename T>
void rope_backward(const T* dout, T* dx, const T* cos, const T* sin, int64_t B, int64_t seq_len,
                   int64_t heads, int64_t hd, int64_t rdims) {
  rotate<T, true>(dout, dx, cos, sin, T(-1), B, seq_len, heads, hd, rdims);
}

template void rope_tables<float>(int64_t, int64_t, double, int64_t, float*, float*);
template void rope_tables<double>(int64_t, int64_t, double, int64_t, double*, double*);
template void rope_forward<float>(const float*, float*, const float*, const float*, int64_t,
                                  int64_t, int64_t, int64_t, int64_t);
template void rope_forward<double>(const double*, double*, const double*, const double*, int64_t,
                                   int64_t, int64_t, int64_t, int64_t);
template void rope_backward<float>(const float*, float*, const float*, const float*, int64_t,
                                   int64_t, int64_t, int64_t, int64_t);
template void rope_backward<double>(const double*, double*, const double*, const double*,
                                    int64_t, int64_t, int64_t, int64_t, int64_t);

}  // namespace pgolf::cpu
