// Late-QAT int6 fake quantisation against hand-computed rows.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/fake_quant.h"

namespace {

TEST(FakeQuant, RowScaleClampAndHalfToEven) {
  // Row 0: amax 3.875 → scale 0.125 (exact); 0.3125/0.125 = 2.5 rounds to 2 (half to even),
  // 0.4375 → 3.5 → 4, -3.875 → -31. Row 1: amax 0.5 < 1 → scale 1/31 (the clamp_min); 0.5*31 = 15.5 → 16.
  // Row 2: all zero stays zero.
  std::vector<double> w = {0.3125, 0.4375, -3.875, 3.875, 0.5, -0.01, 0.0, 0.2, 0, 0, 0, 0};
  std::vector<double> out(w.size());
  pgolf::cpu::fake_quant_int6_rows(w.data(), out.data(), 3, 4);
  const double s0 = 0.125, s1 = 1.0 / 31;
  std::vector<double> want = {2 * s0, 4 * s0, -31 * s0, 31 * s0,
                              16 * s1, 0 * s1, 0, 6 * s1, 0, 0, 0, 0};
  for (size_t i = 0; i < w.size(); ++i) EXPECT_NEAR(out[i], want[i], 1e-15) << i;
}

TEST(FakeQuant, FloatMatchesDoubleGrid) {
  std::vector<float> w(64 * 48);
  for (size_t i = 0; i < w.size(); ++i) w[i] = float(std::sin(double(i) * 0.37) * 2.0);
  std::vector<float> out(w.size());
  pgolf::cpu::fake_quant_int6_rows(w.data(), out.data(), 64, 48);
  for (int64_t r = 0; r < 64; ++r) {
    float amax = 0;
    for (int64_t c = 0; c < 48; ++c) amax = std::max(amax, std::abs(w[size_t(r * 48 + c)]));
    const float scale = std::max(amax / 31.0f, 1.0f / 31.0f);
    for (int64_t c = 0; c < 48; ++c) {
      const float q = out[size_t(r * 48 + c)] / scale;
      EXPECT_NEAR(q, std::nearbyint(q), 1e-3) << "not on the int6 grid";
      EXPECT_GE(q, -32.001f);
      EXPECT_LE(q, 31.001f);
      EXPECT_LE(std::abs(out[size_t(r * 48 + c)] - w[size_t(r * 48 + c)]), scale * 0.5f + 1e-6f);
    }
  }
}

}  // namespace
