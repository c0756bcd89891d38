// SmearGate (SPEC §2, Embedding 4): out_t = (1-g) h_t + g h_{t-1}, h_{-1} = 0, g = sigmoid(gate).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/cpu/smear.h"
#include "support/gradcheck.h"

namespace {

using pgolf::test::random_vector;

// dim 21 spans two of the backward's channel blocks.
constexpr int64_t kB = 2, kT = 5, kDim = 21;

template <typename T>
void check_smear_forward(double tol) {
  auto h = random_vector(kB * kT * kDim, 1), gate = random_vector(kDim, 2, 2.0);
  std::vector<T> ht(h.begin(), h.end()), gt(gate.begin(), gate.end()), out(h.size());
  pgolf::cpu::smear_forward(ht.data(), gt.data(), out.data(), kB, kT, kDim);
  for (int64_t b = 0; b < kB; ++b)
    for (int64_t t = 0; t < kT; ++t)
      for (int64_t c = 0; c < kDim; ++c) {
        const double g = 1.0 / (1.0 + std::exp(-double(gt[c])));
        const int64_t i = (b * kT + t) * kDim + c;
        const double prev = t > 0 ? double(ht[i - kDim]) : 0.0;
        EXPECT_NEAR(out[i], (1 - g) * ht[i] + g * prev, tol) << b << "," << t << "," << c;
      }
}

TEST(Smear, ForwardFloat) { check_smear_forward<float>(1e-6); }
TEST(Smear, ForwardDouble) { check_smear_forward<double>(1e-14); }

TEST(Smear, GradCheck) {
  const int64_t n = kB * kT * kDim;
  auto h = random_vector(n, 3), gate = random_vector(kDim, 4), w = random_vector(n, 5);
  std::vector<double> out(n), dh(n, 0.0), dgate(kDim, 0.0);
  pgolf::cpu::smear_backward(w.data(), h.data(), gate.data(), dh.data(), dgate.data(), kB, kT,
                             kDim);
  pgolf::test::check_gradients(
      {{"h", h.data(), dh.data(), n}, {"gate", gate.data(), dgate.data(), kDim}}, [&] {
        pgolf::cpu::smear_forward(h.data(), gate.data(), out.data(), kB, kT, kDim);
        return pgolf::test::dot(out, w);
      });
}

TEST(Smear, BackwardAccumulates) {
  const int64_t n = kB * kT * kDim;
  auto h = random_vector(n, 6), gate = random_vector(kDim, 7), dout = random_vector(n, 8);
  std::vector<double> dh(n, 0.0), dgate(kDim, 0.0);
  pgolf::cpu::smear_backward(dout.data(), h.data(), gate.data(), dh.data(), dgate.data(), kB, kT,
                             kDim);
  auto dh2 = random_vector(n, 9), dgate2 = random_vector(kDim, 10);
  const auto dh_pre = dh2, dgate_pre = dgate2;
  pgolf::cpu::smear_backward(dout.data(), h.data(), gate.data(), dh2.data(), dgate2.data(), kB, kT,
                             kDim);
  for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(dh2[i], dh_pre[i] + dh[i], 1e-12) << i;
  for (int64_t c = 0; c < kDim; ++c) EXPECT_NEAR(dgate2[c], dgate_pre[c] + dgate[c], 1e-12) << c;
}

}  // namespace
