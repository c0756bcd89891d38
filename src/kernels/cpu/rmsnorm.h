// Weightless RMS norm (SPEC §2): y = scale * x / sqrt(mean(x²) + eps) over rows of
// `dim`, eps = 1.1920929e-07 (float32 machine epsilon) in every instantiation.
#pragma once
#include <cstdint>

namespace pgolf::cpu {

inline constexpr double kRmsEps = 1.1920929e-07;

// y[r,:] = scale * x[r,:] * rstd[r], rstd[r] = 1/sqrt(mean(x[r,:]²) + eps). y may alias x.
template <typename T>
void rmsnorm_forward(const T* x, T* y, T* rstd, int64_t rows, int64_t dim, T scale);

// dx += scale * rstd * (dy - xhat * mean(dy * xhat)), xhat = x * rstd.
template <typename T>
void rmsnorm_backward(const T* dy, const T* x, const T* rstd, T* dx, int64_t rows, int64_t dim,
                      T scale);

}  // namespace pgolf::cpu
