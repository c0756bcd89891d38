// SmearGate (SPEC §2, Embedding 4): g = sigmoid(gate); out_t = (1-g) h_t + g h_{t-1}, h_{-1} = 0.
#include "kernels/cpu/smear.h"
#include "kernels/cpu/parallel.h"

#include <algorithm>
#include <vector>

#include "kernels/cpu/activation.h"

namespace pgolf::cpu {

// Channels per unit of work in the backward: a thread owns whole channel blocks, so the
// dgate reduction runs over (b, t) in a fixed order whatever the thread count.
constexpr int64_t kSmearColBlock = 16;

template <typename T>
void smear_forward(const T* h, const T* gate, T* out, int64_t B, int64_t T_, int64_t dim) {
  std::vector<T> g(dim);
  for (int64_t c = 0; c < dim; ++c) g[c] = stable_sigmoid(gate[c]);
#pragma omp parallel for collapse(2) schedule(static) if (worth_threads(B * T_ * dim))
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T_; ++t) {
      const T* ht = h + (b * T_ + t) * dim;
      T* o = out + (b * T_ + t) * dim;
      for (int64_t c = 0; c < dim; ++c)
        o[c] = (T(1) - g[c]) * ht[c] + (t > 0 ? g[c] * ht[c - dim] : T(0));
    }
}

// dh_t += (1-g) dout_t + g dout_{t+1};  dgate += g (1-g) sum_{b,t} dout_t (h_{t-1} - h_t).
template <typename T>
void smear_backward(const T* dout, const T* h, const T* gate, T* dh, T* dgate, int64_t B,
                    int64_t T_, int64_t dim) {
  const int64_t nblocks = (dim + kSmearColBlock - 1) / kSmearColBlock;
#pragma omp parallel for schedule(static) if (worth_threads(B * T_ * dim))
  for (int64_t blk = 0; blk < nblocks; ++blk) {
    const int64_t c0 = blk * kSmearColBlock, c1 = std::min(dim, c0 + kSmearColBlock);
    double acc[kSmearColBlock] = {};
    T g[kSmearColBlock];
    for (int64_t c = c0; c < c1; ++c) g[c - c0] = stable_sigmoid(gate[c]);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T_; ++t) {
        const int64_t row = (b * T_ + t) * dim;
        for (int64_t c = c0; c < c1; ++c) {
          const T gc = g[c - c0];
          const T prev = t > 0 ? h[row + c - dim] : T(0);
          const T next = t + 1 < T_ ? dout[row + c + dim] : T(0);
          if (dh) dh[row + c] += (T(1) - gc) * dout[row + c] + gc * next;
          acc[c - c0] += double(dout[row + c]) * (prev - h[row + c]);
        }
      }
    if (dgate)
      for (int64_t c = c0; c < c1; ++c) {
        const double gc = g[c - c0];
        dgate[c] += T(acc[c - c0] * gc * (1 - gc));
      }
  }
}

#define PGOLF_INSTANTIATE(T)                                                         \
  template void smear_forward<T>(const T*, const T*, T*, int64_t, int64_t, int64_t); \
  template void smear_backward<T>(const T*, const T*, const T*, T*, T*, int64_t, int64_t, int64_t);
PGOLF_INSTANTIATE(float)
PGOLF_INSTANTIATE(double)
#undef PGOLF_INSTANTIATE

}  // namespace pgolf::cpu
