// EMA and SWA of the weights (SPEC §3): the arithmetic, element by element.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/error.h"
#include "optim/averaging.h"

namespace {

TEST(Averaging, EmaUpdate) {
  std::vector<double> ema = {1.0, -2.0, 0.5}, p = {3.0, 0.0, 0.5};
  pgolf::ema_update(std::span<double>(ema), std::span<const double>(p), 0.997);
  EXPECT_DOUBLE_EQ(ema[0], 0.997 * 1.0 + 0.003 * 3.0);
  EXPECT_DOUBLE_EQ(ema[1], 0.997 * -2.0);
  EXPECT_DOUBLE_EQ(ema[2], 0.5);  // a fixed point stays put
  // Repeated updates toward a constant converge geometrically: 1 - 0.997^n of the way.
  std::vector<float> e = {0.0f}, q = {1.0f};
  for (int i = 0; i < 1000; ++i) pgolf::ema_update(std::span<float>(e), q, 0.997);
  EXPECT_NEAR(e[0], 1.0 - std::pow(0.997, 1000), 1e-4);
}

TEST(Averaging, SwaSumAndAverage) {
  std::vector<float> sum(3, 0.0f);
  const std::vector<std::vector<float>> snaps = {{1, 2, 3}, {3, 2, 1}, {2, 5, -1}};
  pgolf::swa_accumulate(std::span<float>(sum), snaps[0]);
  EXPECT_EQ(sum, snaps[0]);  // the first snapshot is the reference's clone
  pgolf::swa_accumulate(std::span<float>(sum), snaps[1]);
  pgolf::swa_accumulate(std::span<float>(sum), snaps[2]);
  std::vector<float> avg(3);
  pgolf::swa_average(std::span<const float>(sum), 3, std::span<float>(avg));
  EXPECT_EQ(avg, (std::vector<float>{2.0f, 3.0f, 1.0f}));
}

TEST(Averaging, RejectsMismatchedSizes) {
  std::vector<float> a(3), b(4);
  EXPECT_THROW(pgolf::ema_update(std::span<float>(a), b, 0.9), pgolf::Error);
  EXPECT_THROW(pgolf::swa_accumulate(std::span<float>(a), b), pgolf::Error);
  EXPECT_THROW(pgolf::swa_average(std::span<const float>(a), 0, std::span<float>(a)),
               pgolf::Error);
}

}  // namespace
