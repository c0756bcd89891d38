// Global gradient-norm clipping (SPEC §3): the norm, torch's coef = max/(norm + 1e-6)
// applied only when below 1, and a norm independent of the thread count.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <vector>

#include "core/error.h"
#include "optim/grad_clip.h"
#include "support/gradcheck.h"

namespace {

using pgolf::test::random_vector;

TEST(GradClip, NormValue) {
  std::vector<float> g = {3, 0, 4};
  EXPECT_DOUBLE_EQ(pgolf::global_grad_norm(std::span<const float>(g)), 5.0);
  // Long enough for several chunks and a ragged tail, against a plain double sum.
  auto r = random_vector(200003, 1);
  double ss = 0;
  for (double x : r) ss += x * x;
  EXPECT_NEAR(pgolf::global_grad_norm(std::span<const double>(r)), std::sqrt(ss),
              1e-12 * std::sqrt(ss));
  EXPECT_EQ(pgolf::global_grad_norm(std::span<const float>()), 0.0);
}

TEST(GradClip, LeavesGradientsAloneBelowMax) {
  std::vector<double> g = {3, 4};
  EXPECT_DOUBLE_EQ(pgolf::clip_grad_norm(std::span<double>(g), 10.0), 5.0);
  EXPECT_EQ(g, (std::vector<double>{3, 4}));
}

TEST(GradClip, ScalesByTorchCoefficient) {
  std::vector<double> g = {3, 4};
  EXPECT_DOUBLE_EQ(pgolf::clip_grad_norm(std::span<double>(g), 1.0), 5.0);
  const double coef = 1.0 / (5.0 + 1e-6);
  EXPECT_DOUBLE_EQ(g[0], 3 * coef);
  EXPECT_DOUBLE_EQ(g[1], 4 * coef);
  // The +1e-6: a norm exactly at the max is still scaled, by 5 / 5.000001.
  std::vector<double> h = {3, 4};
  pgolf::clip_grad_norm(std::span<double>(h), 5.0);
  EXPECT_DOUBLE_EQ(h[0], 3 * 5.0 / (5.0 + 1e-6));
  EXPECT_LT(h[0], 3.0);
  // float gradients get the coefficient rounded to float.
  std::vector<float> f = {3, 4};
  pgolf::clip_grad_norm(std::span<float>(f), 0.5);
  EXPECT_EQ(f[0], 3.0f * float(0.5 / (5.0 + 1e-6)));
}

TEST(GradClip, RejectsNonPositiveMax) {
  std::vector<float> g = {1};
  EXPECT_THROW(pgolf::clip_grad_norm(std::span<float>(g), 0.0), pgolf::Error);
}

TEST(GradClip, NormBitsIndependentOfThreadCount) {
  auto r = random_vector(300001, 2);
  std::vector<float> g(r.begin(), r.end());
  const int saved = omp_get_max_threads();
  std::vector<double> norms;
  for (int t : {1, 2, 3}) {
    omp_set_num_threads(t);
    norms.push_back(pgolf::global_grad_norm(std::span<const float>(g)));
  }
  omp_set_num_threads(saved);
  EXPECT_EQ(norms[0], norms[1]);
  EXPECT_EQ(norms[0], norms[2]);
}

}  // namespace
