// IEEE binary16 (fp16) and bfloat16 conversions shared by checkpoints (io/safetensors) and
// the quantised artifact (quant/). Narrowing rounds to nearest, ties to even, as
// torch's `.to(torch.float16)` does; widening is exact.
#pragma once
#include <bit>
#include <cmath>
#include <cstdint>

namespace pgolf {

// IEEE binary16: sign, 5 exponent bits (bias 15), 10 mantissa bits; every value is exact in float.
inline float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24
    const float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    return sign ? -magnitude : magnitude;
  }
  if (exponent == 0x1f)  // inf, or nan with its payload kept
    return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));
  return std::bit_cast<float>(sign | ((exponent + 127 - 15) << 23) | (mantissa << 13));
}

// float → binary16, round to nearest even; overflow goes to inf, tiny values to subnormals
// or signed zero, nan stays nan (quiet).
inline uint16_t float_to_half(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u)  // inf or nan
    return sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u | ((abs >> 13) & 0x3ffu) : 0u);
  if (abs >= 0x477ff000u) return sign | 0x7c00u;  // rounds to >= 65520: inf
  if (abs < 0x38800000u) {  // below 2^-14: subnormal half (or zero)
    // value = abs_float; half subnormal unit is 2^-24. Rounding via float addition of
    // 0.5 (= 2^-1) shifts the mantissa so that the FPU's round-to-nearest-even applies.
    const float magnitude = std::bit_cast<float>(abs);
    const float shifted = magnitude + 0.5f;  // ulp(0.5) = 2^-24
    return sign | static_cast<uint16_t>(std::bit_cast<uint32_t>(shifted) - 0x3f000000u);
  }
  // Normal: rebias the exponent and round the 13 dropped mantissa bits to nearest even.
  const uint32_t odd = (abs >> 13) & 1u;
  const uint32_t rounded = abs + 0xfffu + odd;
  return sign | static_cast<uint16_t>((rounded - 0x38000000u) >> 13);
}

// bfloat16 is the top half of a float32, so widening is exact for every value.
inline float bf16_to_float(uint16_t b) {
  return std::bit_cast<float>(static_cast<uint32_t>(b) << 16);
}

// The value a float takes after a round trip through fp16.
inline float round_to_half(float f) { return half_to_float(float_to_half(f)); }

}  // namespace pgolf
