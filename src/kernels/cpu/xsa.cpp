// XSA on CPU (SPEC §2, Block): out_h = y_h - (y_h·n) n, n = v/max(‖v‖, 1e-12) of kv group
// h / (H/Hkv) at the same row.
#include "kernels/cpu/xsa.h"

#include <algorithm>
#include <cmath>
#include <vector>
#include "kernels/cpu/parallel.h"

namespace pgolf::cpu {

namespace {

constexpr double kNormEps = 1e-12;  // F.normalize's eps
// Small tensors (the gradient checks) run on the calling thread: a fork costs more.

template <typename T>
T dot(const T* a, const T* b, int64_t n) {
  T s = 0;
  for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}

}  // namespace

template <typename T>
void xsa_forward(const T* y, const T* v, T* out, int64_t rows, int64_t H, int64_t Hkv, int64_t hd) {
  const int64_t group = H / Hkv;
#pragma omp parallel if (worth_threads(rows * H * hd))
  {
    std::vector<T> n(hd);
#pragma omp for
    for (int64_t i = 0; i < rows; i++)
      for (int64_t g = 0; g < Hkv; g++) {
        const T* vi = v + (i * Hkv + g) * hd;
        const T inv = T(1) / std::max(std::sqrt(dot(vi, vi, hd)), T(kNormEps));
        for (int64_t d = 0; d < hd; d++) n[d] = vi[d] * inv;
        for (int64_t h = g * group; h < (g + 1) * group; h++) {
          const T* yi = y + (i * H + h) * hd;
          T* o = out + (i * H + h) * hd;
          const T c = dot(yi, n.data(), hd);
          for (int64_t d = 0; d < hd; d++) o[d] = yi[d] - c * n[d];
        }
      }
  }
}

// dy_h += dout_h - (dout_h·n) n;  with dn = -Σ_h [(y_h·n) dout_h + (dout_h·n) y_h]:
// dv += (dn - (dn·n) n)/‖v‖ when ‖v‖ > eps, else dv += dn/eps (the clamp is constant there).
template <typename T>
void xsa_backward(const T* dout, const T* y, const T* v, T* dy, T* dv, int64_t rows, int64_t H,
                  int64_t Hkv, int64_t hd) {
  const int64_t group = H / Hkv;
#pragma omp parallel if (worth_threads(rows * H * hd))
  {
    std::vector<T> n(hd), dn(hd);
#pragma omp for
    for (int64_t i = 0; i < rows; i++)
      for (int64_t g = 0; g < Hkv; g++) {
        const T* vi = v + (i * Hkv + g) * hd;
        const T norm = std::sqrt(dot(vi, vi, hd));
        const bool clamped = !(norm > T(kNormEps));
        const T inv = T(1) / (clamped ? T(kNormEps) : norm);
        for (int64_t d = 0; d < hd; d++) {
          n[d] = vi[d] * inv;
          dn[d] = 0;
        }
        for (int64_t h = g * group; h < (g + 1) * group; h++) {
          const T* yi = y + (i * H + h) * hd;
          const T* go = dout + (i * H + h) * hd;
          T* gy = dy + (i * H + h) * hd;
          const T yn = dot(yi, n.data(), hd), gn = dot(go, n.data(), hd);
          for (int64_t d = 0; d < hd; d++) {
            gy[d] += go[d] - gn * n[d];
            dn[d] -= yn * go[d] + gn * yi[d];
          }
        }
        const T dnn = clamped ? T(0) : dot(dn.data(), n.data(), hd);
        T* gv = dv + (i * Hkv + g) * hd;
        for (int64_t d = 0; d < hd; d++) gv[d] += (dn[d] - dnn * n[d]) * inv;
      }
  }
}

template void xsa_forward<float>(const float*, const float*, float*, int64_t, int64_t, int64_t,
                                 int64_t);
template void xsa_forward<double>(const double*, const double*, double*, int64_t, int64_t,
                                  int64_t, int64_t);
template void xsa_backward<float>(const float*, const float*, const float*, float*, float*,
                                  int64_t, int64_t, int64_t, int64_t);
template void xsa_backward<double>(const double*, const double*, const double*, double*, double*,
                                   int64_t, int64_t, int64_t, int64_t);

}  // namespace pgolf::cpu
