// Weightless RMS norm (SPEC §2, rms): y = scale * x / sqrt(mean(x²) + eps), eps = kRmsEps.
#include "kernels/cpu/rmsnorm.h"
#include "kernels/cpu/parallel.h"

#include <cmath>

namespace pgolf::cpu {

// rstd = 1/sqrt(mean(x²) + eps) per row, mean accumulated in double; y = scale x rstd.
template <typename T>
void rmsnorm_forward(const T* x, T* y, T* rstd, int64_t rows, int64_t dim, T scale) {
#pragma omp parallel for schedule(static) if (worth_threads(rows * dim))
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * dim;
    T* yr = y + r * dim;
    double ss = 0;
    for (int64_t c = 0; c < dim; ++c) ss += double(xr[c]) * xr[c];
    T rs = T(1.0 / std::sqrt(ss / double(dim) + kRmsEps));
    rstd[r] = rs;
    for (int64_t c = 0; c < dim; ++c) yr[c] = scale * xr[c] * rs;
  }
}

// dx += scale rstd (dy - xhat mean(dy xhat)), xhat = x rstd (eps folded into rstd).
template <typename T>
void rmsnorm_backward(const T* dy, const T* x, const T* rstd, T* dx, int64_t rows, int64_t dim,
                      T scale) {
#pragma omp parallel for schedule(static) if (worth_threads(rows * dim))
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * dim;
    const T* dyr = dy + r * dim;
    T* dxr = dx + r * dim;
    const T rs = rstd[r];
    double dot = 0;
    for (int64_t c = 0; c < dim; ++c) dot += double(dyr[c]) * xr[c];
    const T m = T(dot * rs / double(dim));  // mean(dy * xhat)
    for (int64_t c = 0; c < dim; ++c) dxr[c] += scale * rs * (dyr[c] - xr[c] * rs * m);
  }
}

#define PGOLF_INSTANTIATE(T)                                               \
  template void rmsnorm_forward<T>(const T*, T*, T*, int64_t, int64_t, T); \
  template void rmsnorm_backward<T>(const T*, const T*, const T*, T*, int64_t, int64_t, T);
PGOLF_INSTANTIATE(float)
PGOLF_INSTANTIATE(double)
#undef PGOLF_INSTANTIATE

}  // namespace pgolf::cpu
