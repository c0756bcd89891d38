// Partial RoPE (SPEC §2, Block): tables and rotation against the formula evaluated directly,
// the long-sequence base rescale, pass-through dims, and the backward.
#include <gtest/gtest.h>

#include <omp.h>

#include <cmath>
#include <vector>

#include "core/error.h"
#include "kernels/cpu/rope.h"
#include "support/gradcheck.h"

namespace {

using pgolf::test::random_vector;

// angle(t, j) = t / base'^(2j/r), base' = base·(T/T_train)^(r/(r-2)) when T > T_train.
double angle(int64_t t, int64_t j, int64_t r, double base, int64_t seq_len, int64_t train_len) {
  if (seq_len > train_len) base *= std::pow(double(seq_len) / train_len, double(r) / (r - 2));
  return double(t) / std::pow(base, 2.0 * j / r);
}

// out = [x1 cos + x2 sin, -x1 sin + x2 cos, x_pass] per head, computed from the angle formula.
std::vector<double> reference(const std::vector<double>& x, int64_t B, int64_t T, int64_t heads,
                              int64_t hd, int64_t r, double base, int64_t train_len) {
  std::vector<double> out(x);
  const int64_t half = r / 2;
  for (int64_t b = 0; b < B; b++)
    for (int64_t t = 0; t < T; t++)
      for (int64_t h = 0; h < heads; h++) {
        const int64_t off = ((b * T + t) * heads + h) * hd;
        for (int64_t j = 0; j < half; j++) {
          const double a = angle(t, j, r, base, T, train_len);
          const double x1 = x[off + j], x2 = x[off + j + half];
          out[off + j] = x1 * std::cos(a) + x2 * std::sin(a);
          out[off + j + half] = -x1 * std::sin(a) + x2 * std::cos(a);
        }
      }
  return out;
}

struct Case {
  int64_t B, T, heads, hd, rdims, train_len;
};

const Case kCases[] = {
    {2, 13, 3, 8, 0, 1024},  // all dims rotate (rdims = 0 means hd)
    {2, 13, 3, 12, 8, 1024},  // partial: 4 pass-through dims
    {1, 24, 2, 10, 6, 16},  // T > train length: rescaled base, partial
    {1, 9, 2, 8, 8, 4},     // rescaled base, full
};
// Big enough for the kernels to go multithreaded (small calls stay on one thread).
const Case kLarge{2, 300, 4, 64, 32, 256};

// The cos/sin tables of case c (rdims resolved), as the kernels take them.
template <typename T>
struct Tables {
  std::vector<T> cos, sin;
};
template <typename T>
Tables<T> tables_for(const Case& c, double base = 10000) {
  const int64_t r = c.rdims ? c.rdims : c.hd;
  Tables<T> tb{std::vector<T>(c.T * r / 2), std::vector<T>(c.T * r / 2)};
  pgolf::cpu::rope_tables<T>(c.T, r, base, c.train_len, tb.cos.data(), tb.sin.data());
  return tb;
}

// dx += rope_backward(dout) for case c.
void backward(const Case& c, const Tables<double>& tb, const std::vector<double>& dout,
              std::vector<double>& dx) {
  pgolf::cpu::rope_backward<double>(dout.data(), dx.data(), tb.cos.data(), tb.sin.data(), c.B,
                                    c.T, c.heads, c.hd, c.rdims);
}

template <typename T>
void check_forward(double tol) {
  const double base = 10000;
  std::vector<Case> cases(std::begin(kCases), std::end(kCases));
  cases.push_back(kLarge);
  for (const Case& c : cases) {
    SCOPED_TRACE(testing::Message() << "T=" << c.T << " hd=" << c.hd << " rdims=" << c.rdims
                                    << " train_len=" << c.train_len);
    const int64_t r = c.rdims ? c.rdims : c.hd, n = c.B * c.T * c.heads * c.hd;
    const auto tb = tables_for<T>(c, base);
    for (int64_t t = 0; t < c.T; t++)
      for (int64_t j = 0; j < r / 2; j++) {
        const double a = angle(t, j, r, base, c.T, c.train_len);
        ASSERT_NEAR(tb.cos[t * r / 2 + j], std::cos(a), tol) << "t=" << t << " j=" << j;
        ASSERT_NEAR(tb.sin[t * r / 2 + j], std::sin(a), tol) << "t=" << t << " j=" << j;
      }
    const auto x = random_vector(n, 1);
    const auto expected = reference(x, c.B, c.T, c.heads, c.hd, r, base, c.train_len);
    std::vector<T> xt(x.begin(), x.end()), out(n, T(7));
    pgolf::cpu::rope_forward<T>(xt.data(), out.data(), tb.cos.data(), tb.sin.data(), c.B, c.T,
                                c.heads, c.hd, c.rdims);
    for (int64_t i = 0; i < n; i++) ASSERT_NEAR(out[i], expected[i], tol) << "out at " << i;
    pgolf::cpu::rope_forward<T>(xt.data(), xt.data(), tb.cos.data(), tb.sin.data(), c.B, c.T,
                                c.heads, c.hd, c.rdims);  // in place
    EXPECT_EQ(xt, out);
  }
}

// Angles up to ~24 rad in float: cos/sin of a float angle are good to a few 1e-6.
TEST(RopeCpu, ForwardMatchesFormulaFloat) { check_forward<float>(2e-5); }
TEST(RopeCpu, ForwardMatchesFormulaDouble) { check_forward<double>(1e-12); }

TEST(RopeCpu, LongSequenceRescalesBase) {
  // T = 2 T_train, r = 8: base' = base · 2^(4/3); position 1 has angle 1/base'^(2j/r).
  const int64_t T = 8, r = 8;
  std::vector<double> cos(T * r / 2), sin(T * r / 2), cos_short(T * r / 2), sin_short(T * r / 2);
  pgolf::cpu::rope_tables<double>(T, r, 10000, 4, cos.data(), sin.data());
  pgolf::cpu::rope_tables<double>(T, r, 10000, T, cos_short.data(), sin_short.data());
  const double base2 = 10000 * std::pow(2.0, 4.0 / 3.0);
  for (int64_t j = 0; j < r / 2; j++) {
    const double a = 1 / std::pow(base2, 2.0 * j / r);
    EXPECT_NEAR(cos[r / 2 + j], std::cos(a), 1e-15);
    EXPECT_NEAR(sin[r / 2 + j], std::sin(a), 1e-15);
    EXPECT_NEAR(sin_short[r / 2 + j], std::sin(1 / std::pow(10000.0, 2.0 * j / r)), 1e-15);
  }
  EXPECT_GT(std::abs(sin[(T - 1) * r / 2 + 1] - sin_short[(T - 1) * r / 2 + 1]), 1e-3);
}

TEST(RopeCpu, TablesRejectZeroDims) {
  std::vector<double> cos(16), sin(16);
  EXPECT_THROW(pgolf::cpu::rope_tables<double>(4, 0, 10000, 1024, cos.data(), sin.data()),
               pgolf::Error);
}

TEST(RopeCpu, GradientsMatchFiniteDifferences) {
  for (const Case& c : kCases) {
    SCOPED_TRACE(testing::Message() << "hd=" << c.hd << " rdims=" << c.rdims);
    const int64_t n = c.B * c.T * c.heads * c.hd;
    const auto tb = tables_for<double>(c);
    auto x = random_vector(n, 2), w = random_vector(n, 3);
    std::vector<double> out(n);
    auto loss = [&] {
      pgolf::cpu::rope_forward<double>(x.data(), out.data(), tb.cos.data(), tb.sin.data(), c.B,
                                       c.T, c.heads, c.hd, c.rdims);
      return pgolf::test::dot(out, w);
    };
    std::vector<double> dx(n, 0);
    backward(c, tb, w, dx);
    pgolf::test::check_gradients({{"x", x.data(), dx.data(), n}}, loss);
  }
}

TEST(RopeCpu, BackwardAccumulates) {
  const Case c = kLarge;
  const int64_t n = c.B * c.T * c.heads * c.hd;
  const auto tb = tables_for<double>(c);
  const auto dout = random_vector(n, 4);
  std::vector<double> dx(n, 0);
  backward(c, tb, dout, dx);
  auto dx_pre = random_vector(n, 5), dx_acc = dx_pre;
  backward(c, tb, dout, dx_acc);
  for (int64_t i = 0; i < n; i++) ASSERT_NEAR(dx_acc[i], dx_pre[i] + dx[i], 1e-14) << i;
}

// The multithreaded backward gives the same bits as one thread.
TEST(RopeCpu, BackwardIndependentOfThreadCount) {
  const Case c = kLarge;
  const int64_t n = c.B * c.T * c.heads * c.hd;
  const auto tb = tables_for<double>(c);
  const auto dout = random_vector(n, 6);
  auto run = [&](int threads) {
    std::vector<double> dx(n, 0);
    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    backward(c, tb, dout, dx);
    omp_set_num_threads(saved);
    return dx;
  };
  EXPECT_EQ(run(1), run(3));
}

}  // namespace
