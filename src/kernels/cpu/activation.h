// The MLP nonlinearity (SPEC §2): out = leaky_relu(h, slope)²; slope 0 gives relu².
// Also the overflow-free logistic sigmoid shared by the gates (SmearGate, gated attention).
#pragma once
#include <cmath>
#include <cstdint>

namespace pgolf::cpu {

template <typename T>
void leaky_relu_sq_forward(const T* h, T* out, int64_t n, T slope);

// dh += dout * 2 f(h) f'(h), f'(h) = 1 for h > 0 else slope.
template <typename T>
void leaky_relu_sq_backward(const T* dout, const T* h, T* dh, int64_t n, T slope);

// sigmoid(x) = 1/(1+e^-x), evaluated as e^x/(1+e^x) for x < 0 so exp never overflows.
template <typename T>
inline T stable_sigmoid(T x) {
  if (x >= T(0)) return T(1) / (T(1) + std::exp(-x));
  T e = std::exp(x);
  return e / (T(1) + e);
}

}  // namespace pgolf::cpu
