// leaky_relu(h, slope)² and its derivative (SPEC §2, Block: the MLP).
#include "kernels/cpu/activation.h"
#include "kernels/cpu/parallel.h"

namespace pgolf::cpu {

// out = f(h)², f(h) = h for h > 0 else slope*h.
template <typename T>
void leaky_relu_sq_forward(const T* h, T* out, int64_t n, T slope) {
#pragma omp parallel for schedule(static) if (worth_threads(n))
  for (int64_t i = 0; i < n; ++i) {
    T f = h[i] > T(0) ? h[i] : slope * h[i];
    out[i] = f * f;
  }
}

// d(f²)/dh = 2 f(h) f'(h): 2h for h > 0, else 2 slope² h.
template <typename T>
void leaky_relu_sq_backward(const T* dout, const T* h, T* dh, int64_t n, T slope) {
#pragma omp parallel for schedule(static) if (worth_threads(n))
  for (int64_t i = 0; i < n; ++i) {
    T df = h[i] > T(0) ? T(2) * h[i] : T(2) * slope * slope * h[i];
    dh[i] += dout[i] * df;
  }
}

#define PGOLF_INSTANTIATE(T)                                        \
  template void leaky_relu_sq_forward<T>(const T*, T*, int64_t, T); \
  template void leaky_relu_sq_backward<T>(const T*, const T*, T*, int64_t, T);
PGOLF_INSTANTIATE(float)
PGOLF_INSTANTIATE(double)
#undef PGOLF_INSTANTIATE

}  // namespace pgolf::cpu
