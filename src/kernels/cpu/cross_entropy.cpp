// Logit softcap + cross-entropy (SPEC §2, Head): l = c tanh(z/c) (c <= 0: l = z),
// loss = logsumexp(l) - l[target].
#include "kernels/cpu/cross_entropy.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace pgolf::cpu {

// Fills l[j] = c tanh(z[j]/c) (or z[j]) in double and returns logsumexp(l), shifted by
// max(l) so no exp overflows.
template <typename T>
static double capped_logsumexp(const T* z, int64_t V, T cap, double* l) {
  double mx = -INFINITY;
  for (int64_t j = 0; j < V; ++j) {
    l[j] = cap > T(0) ? double(cap) * std::tanh(double(z[j]) / double(cap)) : double(z[j]);
    mx = std::max(mx, l[j]);
  }
  double sum = 0;
  for (int64_t j = 0; j < V; ++j) sum += std::exp(l[j] - mx);
  return mx + std::log(sum);
}

template <typename T>
void softcap_ce_forward(const T* z, const int32_t* targets, T* losses, int64_t rows, int64_t V,
                        T cap) {
#pragma omp parallel
  {
    std::vector<double> l(V);
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      double lse = capped_logsumexp(z + r * V, V, cap, l.data());
      losses[r] = T(lse - l[targets[r]]);
    }
  }
}

// dz_j += dloss (softmax(l)_j - [j = target]) dl_j/dz_j, dl/dz = 1 - tanh²(z/c) = 1 - (l/c)².
template <typename T>
void softcap_ce_backward(const T* z, const int32_t* targets, const T* dloss, T* dz, int64_t rows,
                         int64_t V, T cap) {
#pragma omp parallel
  {
    std::vector<double> l(V);
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const double lse = capped_logsumexp(z + r * V, V, cap, l.data());
      const double g = dloss[r];
      T* dzr = dz + r * V;
      for (int64_t j = 0; j < V; ++j) {
        double d = std::exp(l[j] - lse) - (j == targets[r] ? 1.0 : 0.0);
        if (cap > T(0)) {
          double th = l[j] / double(cap);
          d *= 1.0 - th * th;
        }
        dzr[j] += T(g * d);
      }
    }
  }
}

#define PGOLF_INSTANTIATE(T)                                                              \
  template void softcap_ce_forward<T>(const T*, const int32_t*, T*, int64_t, int64_t, T); \
  template void softcap_ce_backward<T>(const T*, const int32_t*, const T*, T*, int64_t, int64_t, T);
PGOLF_INSTANTIATE(float)
PGOLF_INSTANTIATE(double)
#undef PGOLF_INSTANTIATE

}  // namespace pgolf::cpu
