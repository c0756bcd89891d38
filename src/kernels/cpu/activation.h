// The MLP nonlinearity (SPEC §2): out = leaky_relu(h, slope)²; slope 0 gives relu².
#pragma once
#include <cstdint>

namespace pgolf::cpu {

template <typename T>
void leaky_relu_sq_forward(const T* h, T* out, int64_t n, T slope);

// dh += dout * 2 f(h) f'(h), f'(h) = 1 for h > 0 else slope.
template <typename T>
void leaky_relu_sq_backward(const T* dout, const T* h, T* dh, int64_t n, T slope);

}  // namespace pgolf::cpu
