// Vectorisable float exp and tanh for the softmax-shaped loops (attention, cross-entropy).
// libm's expf/tanhf do not vectorise and were 15-20% of those kernels. The double versions
// are libm's, so the double instantiations used by gradient checks stay exact.
#pragma once
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>

namespace pgolf::cpu {

// Cephes' expf: x = n ln2 + r, |r| <= ln2/2, e^x = 2^n p(r), a few ulp; 0 below -87 (where
// 2^n would leave the normal range). Inputs above 88 overflow as expf does not guard here:
// callers pass x <= ~0 (a shifted softmax argument).
inline float fast_exp(float x) {
  const float xc = std::max(x, -87.0f);
  const float n = std::nearbyint(xc * 1.44269504088896341f);  // vectorises, floor does not
  const float r = xc - n * 0.693359375f + n * 2.12194440e-4f;  // ln2 split in two parts
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const float scale = std::bit_cast<float>((static_cast<int32_t>(n) + 127) << 23);
  return x < -87.0f ? 0.0f : p * scale;
}
inline double fast_exp(double x) { return std::exp(x); }

// tanh(x) = sign(x) (1 - e^{-2|x|}) / (1 + e^{-2|x|}); absolute error ~1e-7 in float.
inline float fast_tanh(float x) {
  const float t = fast_exp(-2.0f * std::abs(x));
  return std::copysign((1.0f - t) / (1.0f + t), x);
}
inline double fast_tanh(double x) { return std::tanh(x); }

}  // namespace pgolf::cpu
