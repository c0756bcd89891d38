// Element-wise ops of the residual stream (SPEC §2, Block and Layers). Every parameter
// gradient is a reduction over rows done in a fixed order, independent of thread count.
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/parallel.h"

#include <algorithm>
#include <vector>

#include "kernels/cpu/activation.h"

namespace pgolf::cpu {

namespace {

// Columns per unit of work in column_sums; elements per chunk in dot.
constexpr int64_t kColBlock = 16;
constexpr int64_t kDotChunk = 1 << 14;

// sums[c] = sum over r = 0..rows-1 (in order, in double) of term(r*d + c, c). Threads own
// whole column blocks, so term may also write the element's own gradient (r, c).
template <typename F>
std::vector<double> column_sums(int64_t rows, int64_t d, F term) {
  std::vector<double> sums(d, 0.0);
  const int64_t nblocks = (d + kColBlock - 1) / kColBlock;
#pragma omp parallel for schedule(static) if (worth_threads(rows * d))
  for (int64_t blk = 0; blk < nblocks; ++blk) {
    const int64_t c0 = blk * kColBlock, c1 = std::min(d, c0 + kColBlock);
    double acc[kColBlock] = {};
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = c0; c < c1; ++c) acc[c - c0] += term(r * d + c, c);
    std::copy(acc, acc + (c1 - c0), sums.begin() + c0);
  }
  return sums;
}

// The sum of sums[i*group .. (i+1)*group) for each i, added into out[i] (skipped when null).
template <typename T>
void add_group_sums(const std::vector<double>& sums, int64_t group, T* out) {
  if (!out) return;
  for (int64_t i = 0; i * group < int64_t(sums.size()); ++i) {
    double s = 0;
    for (int64_t j = 0; j < group; ++j) s += sums[i * group + j];
    out[i] += T(s);
  }
}

}  // namespace

// out = mix0 x + mix1 x0, per channel.
template <typename T>
void resid_mix_forward(const T* x, const T* x0, const T* mix, T* out, int64_t rows, int64_t d) {
#pragma omp parallel for schedule(static) if (worth_threads(rows * d))
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < d; ++c) {
      const int64_t i = r * d + c;
      out[i] = mix[c] * x[i] + mix[d + c] * x0[i];
    }
}

// dx += mix0 dout; dx0 += mix1 dout; dmix[k,c] += sum_r dout (x, x0)[r,c].
template <typename T>
void resid_mix_backward(const T* dout, const T* x, const T* x0, const T* mix, T* dx, T* dx0,
                        T* dmix, int64_t rows, int64_t d) {
  auto s0 = column_sums(rows, d, [&](int64_t i, int64_t c) {
    if (dx) dx[i] += mix[c] * dout[i];
    return double(dout[i]) * x[i];
  });
  auto s1 = column_sums(rows, d, [&](int64_t i, int64_t c) {
    if (dx0) dx0[i] += mix[d + c] * dout[i];
    return double(dout[i]) * x0[i];
  });
  if (dmix) {
    add_group_sums(s0, 1, dmix);
    add_group_sums(s1, 1, dmix + d);
  }
}

// out = x + scale ⊙ delta; scale per channel (scale_dim = d) or one scalar (scale_dim = 1).
template <typename T>
void scaled_add_forward(const T* x, const T* delta, const T* scale, T* out, int64_t rows, int64_t d,
                        int64_t scale_dim) {
  const int64_t per = scale_dim == 1 ? 0 : 1;  // scale index stride over channels
#pragma omp parallel for schedule(static) if (worth_threads(rows * d))
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < d; ++c) {
      const int64_t i = r * d + c;
      out[i] = x[i] + scale[c * per] * delta[i];
    }
}

// dx += dout; ddelta += scale dout; dscale += sum dout delta (over rows, and channels too
// for a scalar scale).
template <typename T>
void scaled_add_backward(const T* dout, const T* delta, const T* scale, T* dx, T* ddelta, T* dscale,
                         int64_t rows, int64_t d, int64_t scale_dim) {
  if (dx) axpy(rows * d, T(1), dout, dx);
  const int64_t per = scale_dim == 1 ? 0 : 1;
  auto s = column_sums(rows, d, [&](int64_t i, int64_t c) {
    if (ddelta) ddelta[i] += scale[c * per] * dout[i];
    return double(dout[i]) * delta[i];
  });
  add_group_sums(s, scale_dim == 1 ? d : 1, dscale);
}

// out = lam0 a + lam1 b.
template <typename T>
void mix2_forward(const T* a, const T* b, const T* lam, T* out, int64_t n) {
#pragma omp parallel for schedule(static) if (worth_threads(n))
  for (int64_t i = 0; i < n; ++i) out[i] = lam[0] * a[i] + lam[1] * b[i];
}

// da += lam0 dout; db += lam1 dout; dlam += (dout·a, dout·b).
template <typename T>
void mix2_backward(const T* dout, const T* a, const T* b, const T* lam, T* da, T* db, T* dlam,
                   int64_t n) {
  if (dlam) {
    dlam[0] += T(dot(n, dout, a));
    dlam[1] += T(dot(n, dout, b));
  }
  if (da) axpy(n, lam[0], dout, da);
  if (db) axpy(n, lam[1], dout, db);
}

// out[r,h,:] = gain[h] x[r,h,:].
template <typename T>
void head_scale_forward(const T* x, const T* gain, T* out, int64_t rows, int64_t H, int64_t hd) {
  const int64_t d = H * hd;
#pragma omp parallel for schedule(static) if (worth_threads(rows * d))
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < d; ++c) out[r * d + c] = gain[c / hd] * x[r * d + c];
}

// dx += gain[h] dout; dgain[h] += sum over rows and the head's hd channels of dout x.
template <typename T>
void head_scale_backward(const T* dout, const T* x, const T* gain, T* dx, T* dgain, int64_t rows,
                         int64_t H, int64_t hd) {
  auto s = column_sums(rows, H * hd, [&](int64_t i, int64_t c) {
    if (dx) dx[i] += gain[c / hd] * dout[i];
    return double(dout[i]) * x[i];
  });
  add_group_sums(s, hd, dgain);
}

// out[r,h,:] = sigmoid(logit[r,h]) y[r,h,:].
template <typename T>
void head_gate_forward(const T* y, const T* logit, T* out, int64_t rows, int64_t H, int64_t hd) {
#pragma omp parallel for schedule(static) if (worth_threads(rows * H * hd))
  for (int64_t rh = 0; rh < rows * H; ++rh) {
    const T s = stable_sigmoid(logit[rh]);
    for (int64_t j = 0; j < hd; ++j) out[rh * hd + j] = s * y[rh * hd + j];
  }
}

// dy += s dout; dlogit[r,h] += (dout·y)[r,h] s (1-s), s = sigmoid(logit[r,h]).
template <typename T>
void head_gate_backward(const T* dout, const T* y, const T* logit, T* dy, T* dlogit, int64_t rows,
                        int64_t H, int64_t hd) {
#pragma omp parallel for schedule(static) if (worth_threads(rows * H * hd))
  for (int64_t rh = 0; rh < rows * H; ++rh) {
    const T s = stable_sigmoid(logit[rh]);
    const int64_t o = rh * hd;
    double g = 0;
    for (int64_t j = 0; j < hd; ++j) {
      g += double(dout[o + j]) * y[o + j];
      if (dy) dy[o + j] += s * dout[o + j];
    }
    if (dlogit) dlogit[rh] += T(g * s * (1 - s));
  }
}

// out[r,:] += bias.
template <typename T>
void bias_add_forward(T* out, const T* bias, int64_t rows, int64_t cols) {
#pragma omp parallel for schedule(static) if (worth_threads(rows * cols))
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) out[r * cols + c] += bias[c];
}

// dbias += sum_r dout[r,:].
template <typename T>
void bias_add_backward(const T* dout, T* dbias, int64_t rows, int64_t cols) {
  auto s = column_sums(rows, cols, [&](int64_t i, int64_t) { return double(dout[i]); });
  add_group_sums(s, 1, dbias);
}

// y += alpha x.
template <typename T>
void axpy(int64_t n, T alpha, const T* x, T* y) {
#pragma omp parallel for schedule(static) if (worth_threads(n))
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

// x·y in double: per-chunk partials over fixed chunks, summed in chunk order.
template <typename T>
double dot(int64_t n, const T* x, const T* y) {
  const int64_t nchunks = (n + kDotChunk - 1) / kDotChunk;
  std::vector<double> part(nchunks, 0.0);
#pragma omp parallel for schedule(static) if (worth_threads(n))
  for (int64_t k = 0; k < nchunks; ++k) {
    const int64_t i1 = std::min(n, (k + 1) * kDotChunk);
    double s = 0;
    for (int64_t i = k * kDotChunk; i < i1; ++i) s += double(x[i]) * y[i];
    part[k] = s;
  }
  double s = 0;
  for (double p : part) s += p;
  return s;
}

#define PGOLF_INSTANTIATE(T)                                                                       \
  template void resid_mix_forward<T>(const T*, const T*, const T*, T*, int64_t, int64_t);          \
  template void resid_mix_backward<T>(const T*, const T*, const T*, const T*, T*, T*, T*, int64_t, \
                                      int64_t);                                                    \
  template void scaled_add_forward<T>(const T*, const T*, const T*, T*, int64_t, int64_t,          \
                                      int64_t);                                                    \
  template void scaled_add_backward<T>(const T*, const T*, const T*, T*, T*, T*, int64_t, int64_t, \
                                       int64_t);                                                   \
  template void mix2_forward<T>(const T*, const T*, const T*, T*, int64_t);                        \
  template void mix2_backward<T>(const T*, const T*, const T*, const T*, T*, T*, T*, int64_t);     \
  template void head_scale_forward<T>(const T*, const T*, T*, int64_t, int64_t, int64_t);          \
  template void head_scale_backward<T>(const T*, const T*, const T*, T*, T*, int64_t, int64_t,     \
                                       int64_t);                                                   \
  template void head_gate_forward<T>(const T*, const T*, T*, int64_t, int64_t, int64_t);           \
  template void head_gate_backward<T>(const T*, const T*, const T*, T*, T*, int64_t, int64_t,      \
                                      int64_t);                                                    \
  template void bias_add_forward<T>(T*, const T*, int64_t, int64_t);                               \
  template void bias_add_backward<T>(const T*, T*, int64_t, int64_t);                              \
  template void axpy<T>(int64_t, T, const T*, T*);                                                 \
  template double dot<T>(int64_t, const T*, const T*);
PGOLF_INSTANTIATE(float)
PGOLF_INSTANTIATE(double)
#undef PGOLF_INSTANTIATE

}  // namespace pgolf::cpu
