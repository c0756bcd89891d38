// leaky_relu(h, slope)² (SPEC §2, the MLP nonlinearity) and the stable sigmoid.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/cpu/activation.h"
#include "support/gradcheck.h"

namespace {

using pgolf::test::random_vector;

template <typename T>
void check_activation_forward(double slope, double tol) {
  const int64_t n = 71;
  auto h = random_vector(n, 1);
  std::vector<T> ht(h.begin(), h.end()), out(n);
  pgolf::cpu::leaky_relu_sq_forward(ht.data(), out.data(), n, T(slope));
  for (int64_t i = 0; i < n; ++i) {
    const double f = ht[i] > 0 ? double(ht[i]) : slope * ht[i];
    EXPECT_NEAR(out[i], f * f, tol) << i;
  }
}

TEST(Activation, ForwardFloat) {
  check_activation_forward<float>(0.5, 1e-6);
  check_activation_forward<float>(0.0, 1e-6);
}
TEST(Activation, ForwardDouble) {
  check_activation_forward<double>(0.5, 1e-15);
  check_activation_forward<double>(0.0, 1e-15);
}

void check_activation_grad(double slope) {
  const int64_t n = 71;
  auto h = random_vector(n, 2), w = random_vector(n, 3);
  std::vector<double> out(n), dh(n, 0.0);
  pgolf::cpu::leaky_relu_sq_backward(w.data(), h.data(), dh.data(), n, slope);
  pgolf::test::check_gradients({{"h", h.data(), dh.data(), n}}, [&] {
    pgolf::cpu::leaky_relu_sq_forward(h.data(), out.data(), n, slope);
    return pgolf::test::dot(out, w);
  });
}

TEST(Activation, GradCheckLeaky) { check_activation_grad(0.5); }
TEST(Activation, GradCheckRelu) { check_activation_grad(0.0); }

TEST(Activation, BackwardAccumulates) {
  const int64_t n = 71;
  auto h = random_vector(n, 4), dout = random_vector(n, 5);
  std::vector<double> dh(n, 0.0);
  pgolf::cpu::leaky_relu_sq_backward(dout.data(), h.data(), dh.data(), n, 0.5);
  auto acc = random_vector(n, 6);
  const auto pre = acc;
  pgolf::cpu::leaky_relu_sq_backward(dout.data(), h.data(), acc.data(), n, 0.5);
  for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(acc[i], pre[i] + dh[i], 1e-14) << i;
}

TEST(Activation, StableSigmoid) {
  for (double x : {-30.0, -2.5, 0.0, 1.0, 30.0})
    EXPECT_NEAR(pgolf::cpu::stable_sigmoid(x), 1.0 / (1.0 + std::exp(-x)), 1e-15) << x;
  // Far tails: no overflow, no NaN, correct limits.
  EXPECT_EQ(pgolf::cpu::stable_sigmoid(-1000.0f), 0.0f);
  EXPECT_EQ(pgolf::cpu::stable_sigmoid(1000.0f), 1.0f);
  EXPECT_NEAR(pgolf::cpu::stable_sigmoid(-100.0), std::exp(-100.0), 1e-50);
}

}  // namespace
