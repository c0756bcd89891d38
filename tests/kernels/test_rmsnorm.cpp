// Weightless RMS norm (SPEC §2): y = scale x / sqrt(mean(x²) + eps), eps = 1.1920929e-07.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/cpu/rmsnorm.h"
#include "support/gradcheck.h"

namespace {

using pgolf::test::random_vector;

// Rows of random values, plus one row small enough (|x| ~ 1e-4) that eps changes rstd by
// about 1.2e-7 / 1e-8: a wrong eps fails the comparison.
std::vector<double> rms_input(int64_t rows, int64_t dim, uint32_t seed) {
  auto x = random_vector(rows * dim, seed);
  for (int64_t c = 0; c < dim; ++c) x[c] *= 1e-4;
  return x;
}

template <typename T>
void check_rmsnorm_forward(double tol) {
  const int64_t rows = 7, dim = 10;
  const double scale = 0.7;
  auto x = rms_input(rows, dim, 1);
  std::vector<T> xt(x.begin(), x.end()), y(rows * dim), rstd(rows);
  pgolf::cpu::rmsnorm_forward(xt.data(), y.data(), rstd.data(), rows, dim, T(scale));
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (int64_t c = 0; c < dim; ++c) ss += double(xt[r * dim + c]) * xt[r * dim + c];
    const double rs = 1.0 / std::sqrt(ss / dim + 1.1920929e-07);
    EXPECT_NEAR(rstd[r], rs, tol * rs) << r;
    for (int64_t c = 0; c < dim; ++c)
      EXPECT_NEAR(y[r * dim + c], scale * xt[r * dim + c] * rs, tol) << r << "," << c;
  }
  // In place (y aliasing x) gives the same result.
  pgolf::cpu::rmsnorm_forward(xt.data(), xt.data(), rstd.data(), rows, dim, T(scale));
  for (int64_t i = 0; i < rows * dim; ++i) EXPECT_EQ(xt[i], y[i]) << i;
}

TEST(RmsNorm, ForwardFloat) { check_rmsnorm_forward<float>(1e-6); }
TEST(RmsNorm, ForwardDouble) { check_rmsnorm_forward<double>(1e-14); }

TEST(RmsNorm, ZeroRowGivesZero) {
  std::vector<double> x(10, 0.0), y(10, 1.0), rstd(1);
  pgolf::cpu::rmsnorm_forward(x.data(), y.data(), rstd.data(), 1, 10, 1.0);
  EXPECT_DOUBLE_EQ(rstd[0], 1.0 / std::sqrt(1.1920929e-07));
  for (double v : y) EXPECT_EQ(v, 0.0);
}

// rows * dim values of x ~ N(0, x_scale²), checked with finite-difference step h.
void check_rmsnorm_grad(double x_scale, double h) {
  const int64_t rows = 7, dim = 10;
  const double scale = 0.7;
  auto x = random_vector(rows * dim, 2, x_scale), w = random_vector(rows * dim, 3);
  std::vector<double> y(rows * dim), rstd(rows), dx(rows * dim, 0.0);
  pgolf::cpu::rmsnorm_forward(x.data(), y.data(), rstd.data(), rows, dim, scale);
  pgolf::cpu::rmsnorm_backward(w.data(), x.data(), rstd.data(), dx.data(), rows, dim, scale);
  pgolf::test::check_gradients(
      {{"x", x.data(), dx.data(), rows * dim}},
      [&] {
        pgolf::cpu::rmsnorm_forward(x.data(), y.data(), rstd.data(), rows, dim, scale);
        return pgolf::test::dot(y, w);
      },
      h);
}

TEST(RmsNorm, GradCheck) { check_rmsnorm_grad(1.0, 1e-5); }
// |x| ~ 1e-4, where eps is most of mean(x²) + eps: the gradient must include it. The step
// shrinks with x so the central difference stays accurate.
TEST(RmsNorm, GradCheckNearEps) { check_rmsnorm_grad(1e-4, 1e-8); }

TEST(RmsNorm, BackwardAccumulates) {
  const int64_t rows = 7, dim = 10;
  auto x = random_vector(rows * dim, 4), dy = random_vector(rows * dim, 5);
  std::vector<double> y(rows * dim), rstd(rows), dx(rows * dim, 0.0);
  pgolf::cpu::rmsnorm_forward(x.data(), y.data(), rstd.data(), rows, dim, 1.3);
  pgolf::cpu::rmsnorm_backward(dy.data(), x.data(), rstd.data(), dx.data(), rows, dim, 1.3);
  auto acc = random_vector(rows * dim, 6);
  const auto pre = acc;
  pgolf::cpu::rmsnorm_backward(dy.data(), x.data(), rstd.data(), acc.data(), rows, dim, 1.3);
  for (int64_t i = 0; i < rows * dim; ++i) EXPECT_NEAR(acc[i], pre[i] + dx[i], 1e-12) << i;
}

}  // namespace
