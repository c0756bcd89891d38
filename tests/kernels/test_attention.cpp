// Causal GQA attention (SPEC §2, Block): the tiled online-softmax kernel against an explicit
// softmax over the full causal score matrix, and its backward against finite differences.
#include <gtest/gtest.h>

#include <omp.h>

#include <cmath>
#include <vector>

#include "kernels/cpu/attention.h"
#include "support/attention_shape.h"
#include "support/gradcheck.h"

namespace {

using pgolf::test::random_vector;

using Shape = pgolf::test::AttentionShape;

// Small shapes inside one tile, and shapes crossing the 64-wide tiles at odd lengths.
const Shape kShapes[] = {
    {2, 13, 4, 2, 8},  // GQA, groups of 2
    {1, 13, 3, 3, 6},  // H = Hkv
    {2, 7, 4, 1, 4},   // Hkv = 1
    {1, 150, 2, 1, 8},  // three query tiles, the last partial
    {1, 64, 2, 2, 2},  // exactly one tile
};
// Big enough for the kernels to go multithreaded (small calls stay on one thread).
const Shape kLarge{2, 200, 4, 2, 32};

// Runs fn with n OpenMP threads, then restores the previous count.
template <typename F>
void with_threads(int n, F fn) {
  const int saved = omp_get_max_threads();
  omp_set_num_threads(n);
  fn();
  omp_set_num_threads(saved);
}

// y[b,t,h] = Σ_{s<=t} softmax_s(q·k_s / sqrt(hd)) v_s and lse = log Σ_s exp(q·k_s / sqrt(hd)),
// with the full score row of every query materialised, in double.
void reference(const Shape& s, const std::vector<double>& q, const std::vector<double>& k,
               const std::vector<double>& v, std::vector<double>& y, std::vector<double>& lse) {
  y.assign(s.q_size(), 0);
  lse.assign(s.lse_size(), 0);
  const double scale = 1 / std::sqrt(double(s.hd));
  std::vector<double> scores(s.T);
  for (int64_t b = 0; b < s.B; b++)
    for (int64_t h = 0; h < s.H; h++) {
      const int64_t g = h / (s.H / s.Hkv);
      for (int64_t t = 0; t < s.T; t++) {
        const double* qt = &q[((b * s.T + t) * s.H + h) * s.hd];
        double mx = -1e300;
        for (int64_t u = 0; u <= t; u++) {
          const double* ku = &k[((b * s.T + u) * s.Hkv + g) * s.hd];
          double dot = 0;
          for (int64_t d = 0; d < s.hd; d++) dot += qt[d] * ku[d];
          scores[u] = dot * scale;
          mx = std::max(mx, scores[u]);
        }
        double sum = 0;
        for (int64_t u = 0; u <= t; u++) sum += std::exp(scores[u] - mx);
        double* yt = &y[((b * s.T + t) * s.H + h) * s.hd];
        for (int64_t u = 0; u <= t; u++) {
          const double p = std::exp(scores[u] - mx) / sum;
          const double* vu = &v[((b * s.T + u) * s.Hkv + g) * s.hd];
          for (int64_t d = 0; d < s.hd; d++) yt[d] += p * vu[d];
        }
        lse[(b * s.H + h) * s.T + t] = mx + std::log(sum);
      }
    }
}

template <typename T>
std::vector<T> cast(const std::vector<double>& x) {
  return std::vector<T>(x.begin(), x.end());
}

template <typename T>
void check_forward(double tol) {
  std::vector<Shape> shapes(std::begin(kShapes), std::end(kShapes));
  shapes.push_back(kLarge);
  for (const Shape& s : shapes) {
    SCOPED_TRACE(testing::Message() << "B=" << s.B << " T=" << s.T << " H=" << s.H
                                    << " Hkv=" << s.Hkv << " hd=" << s.hd);
    auto q = random_vector(s.q_size(), 1), k = random_vector(s.kv_size(), 2),
         v = random_vector(s.kv_size(), 3);
    std::vector<double> y_ref, lse_ref;
    reference(s, q, k, v, y_ref, lse_ref);
    auto qt = cast<T>(q), kt = cast<T>(k), vt = cast<T>(v);
    std::vector<T> y(s.q_size(), T(7)), lse(s.lse_size(), T(7));  // forward must overwrite
    pgolf::cpu::attention_forward<T>(qt.data(), kt.data(), vt.data(), y.data(), lse.data(), s.B,
                                     s.T, s.H, s.Hkv, s.hd);
    for (int64_t i = 0; i < s.q_size(); i++) ASSERT_NEAR(y[i], y_ref[i], tol) << "y at " << i;
    for (int64_t i = 0; i < s.lse_size(); i++)
      ASSERT_NEAR(lse[i], lse_ref[i], tol) << "lse at " << i;
  }
}

TEST(AttentionCpu, ForwardMatchesNaiveFloat) { check_forward<float>(2e-5); }
TEST(AttentionCpu, ForwardMatchesNaiveDouble) { check_forward<double>(1e-12); }

TEST(AttentionCpu, FirstTokenCopiesItsValue) {
  // Position 0 attends only to itself: y = v_0 of its kv group, lse = q·k_0 / sqrt(hd).
  const Shape s{1, 5, 4, 2, 8};
  auto q = random_vector(s.q_size(), 4), k = random_vector(s.kv_size(), 5),
       v = random_vector(s.kv_size(), 6);
  std::vector<double> y(s.q_size()), lse(s.lse_size());
  pgolf::cpu::attention_forward<double>(q.data(), k.data(), v.data(), y.data(), lse.data(), s.B,
                                        s.T, s.H, s.Hkv, s.hd);
  for (int64_t h = 0; h < s.H; h++) {
    const int64_t g = h / 2;
    double dot = 0;
    for (int64_t d = 0; d < s.hd; d++) {
      EXPECT_DOUBLE_EQ(y[h * s.hd + d], v[g * s.hd + d]);
      dot += q[h * s.hd + d] * k[g * s.hd + d];
    }
    EXPECT_NEAR(lse[h * s.T], dot / std::sqrt(8.0), 1e-14);
  }
}

TEST(AttentionCpu, GradientsMatchFiniteDifferences) {
  for (const Shape& s : kShapes) {
    SCOPED_TRACE(testing::Message() << "B=" << s.B << " T=" << s.T << " H=" << s.H
                                    << " Hkv=" << s.Hkv << " hd=" << s.hd);
    auto q = random_vector(s.q_size(), 11), k = random_vector(s.kv_size(), 12),
         v = random_vector(s.kv_size(), 13), w = random_vector(s.q_size(), 14);
    std::vector<double> y(s.q_size()), lse(s.lse_size());
    auto loss = [&] {
      pgolf::cpu::attention_forward<double>(q.data(), k.data(), v.data(), y.data(), lse.data(),
                                            s.B, s.T, s.H, s.Hkv, s.hd);
      return pgolf::test::dot(y, w);
    };
    loss();
    std::vector<double> dq(s.q_size(), 0), dk(s.kv_size(), 0), dv(s.kv_size(), 0);
    pgolf::cpu::attention_backward<double>(w.data(), q.data(), k.data(), v.data(), y.data(),
                                           lse.data(), dq.data(), dk.data(), dv.data(), s.B, s.T,
                                           s.H, s.Hkv, s.hd);
    pgolf::test::check_gradients({{"q", q.data(), dq.data(), s.q_size()},
                                  {"k", k.data(), dk.data(), s.kv_size()},
                                  {"v", v.data(), dv.data(), s.kv_size()}},
                                 loss);
  }
}

// Backward adds into pre-filled buffers, and is bitwise deterministic.
template <typename T>
void check_accumulates() {
  const Shape s = kLarge;
  auto q = cast<T>(random_vector(s.q_size(), 21)), k = cast<T>(random_vector(s.kv_size(), 22)),
       v = cast<T>(random_vector(s.kv_size(), 23)), dy = cast<T>(random_vector(s.q_size(), 24));
  std::vector<T> y(s.q_size()), lse(s.lse_size());
  pgolf::cpu::attention_forward<T>(q.data(), k.data(), v.data(), y.data(), lse.data(), s.B, s.T,
                                   s.H, s.Hkv, s.hd);
  auto backward = [&](std::vector<T>& dq, std::vector<T>& dk, std::vector<T>& dv) {
    pgolf::cpu::attention_backward<T>(dy.data(), q.data(), k.data(), v.data(), y.data(),
                                      lse.data(), dq.data(), dk.data(), dv.data(), s.B, s.T, s.H,
                                      s.Hkv, s.hd);
  };
  std::vector<T> dq(s.q_size(), 0), dk(s.kv_size(), 0), dv(s.kv_size(), 0);
  backward(dq, dk, dv);
  auto dq0 = cast<T>(random_vector(s.q_size(), 25)), dk0 = cast<T>(random_vector(s.kv_size(), 26)),
       dv0 = cast<T>(random_vector(s.kv_size(), 27));
  auto dq1 = dq0, dk1 = dk0, dv1 = dv0;
  backward(dq1, dk1, dv1);
  const double tol = sizeof(T) == 4 ? 1e-5 : 1e-13;
  for (int64_t i = 0; i < s.q_size(); i++) ASSERT_NEAR(dq1[i], dq0[i] + dq[i], tol) << i;
  for (int64_t i = 0; i < s.kv_size(); i++) {
    ASSERT_NEAR(dk1[i], dk0[i] + dk[i], tol) << i;
    ASSERT_NEAR(dv1[i], dv0[i] + dv[i], tol) << i;
  }
  std::vector<T> dq2(s.q_size(), 0), dk2(s.kv_size(), 0), dv2(s.kv_size(), 0);
  backward(dq2, dk2, dv2);
  EXPECT_EQ(dq2, dq);
  EXPECT_EQ(dk2, dk);
  EXPECT_EQ(dv2, dv);
}

TEST(AttentionCpu, BackwardAccumulatesFloat) { check_accumulates<float>(); }
TEST(AttentionCpu, BackwardAccumulatesDouble) { check_accumulates<double>(); }

// The work split over threads does not change a single bit of y, lse, dq, dk or dv.
TEST(AttentionCpu, ResultsIndependentOfThreadCount) {
  const Shape s = kLarge;
  const auto q = cast<float>(random_vector(s.q_size(), 31)),
             k = cast<float>(random_vector(s.kv_size(), 32)),
             v = cast<float>(random_vector(s.kv_size(), 33)),
             dy = cast<float>(random_vector(s.q_size(), 34));
  struct Result {
    std::vector<float> y, lse, dq, dk, dv;
  };
  auto run = [&] {
    Result r{std::vector<float>(s.q_size()), std::vector<float>(s.lse_size()),
             std::vector<float>(s.q_size()), std::vector<float>(s.kv_size()),
             std::vector<float>(s.kv_size())};
    pgolf::cpu::attention_forward<float>(q.data(), k.data(), v.data(), r.y.data(), r.lse.data(),
                                         s.B, s.T, s.H, s.Hkv, s.hd);
    pgolf::cpu::attention_backward<float>(dy.data(), q.data(), k.data(), v.data(), r.y.data(),
                                          r.lse.data(), r.dq.data(), r.dk.data(), r.dv.data(),
                                          s.B, s.T, s.H, s.Hkv, s.hd);
    return r;
  };
  Result one, three;
  with_threads(1, [&] { one = run(); });
  with_threads(3, [&] { three = run(); });
  EXPECT_EQ(one.y, three.y);
  EXPECT_EQ(one.lse, three.lse);
  EXPECT_EQ(one.dq, three.dq);
  EXPECT_EQ(one.dk, three.dk);
  EXPECT_EQ(one.dv, three.dv);
}

}  // namespace
