// XSA (SPEC §2, Block): out_h = y_h - (y_h·n) n with n the unit value vector of the head's kv
// group, against a direct evaluation, and its backward against finite differences.
#include <gtest/gtest.h>

#include <omp.h>

#include <cmath>
#include <vector>

#include "kernels/cpu/xsa.h"
#include "support/gradcheck.h"

namespace {

using pgolf::test::random_vector;

struct Shape {
  int64_t rows, H, Hkv, hd;
};

const Shape kShapes[] = {
    {13, 4, 2, 8},  // GQA groups of 2
    {7, 3, 3, 6},   // H = Hkv
    {5, 4, 1, 10},  // Hkv = 1
};
// Big enough for the kernels to go multithreaded (small calls stay on one thread).
const Shape kLarge{600, 4, 2, 32};

std::vector<double> reference(const Shape& s, const std::vector<double>& y,
                              const std::vector<double>& v) {
  std::vector<double> out(y.size());
  for (int64_t i = 0; i < s.rows; i++)
    for (int64_t h = 0; h < s.H; h++) {
      const double* vg = &v[(i * s.Hkv + h / (s.H / s.Hkv)) * s.hd];
      const double* yh = &y[(i * s.H + h) * s.hd];
      double vv = 0, yv = 0;
      for (int64_t d = 0; d < s.hd; d++) {
        vv += vg[d] * vg[d];
        yv += yh[d] * vg[d];
      }
      // (y·n) n = (y·v) v / ‖v‖²
      for (int64_t d = 0; d < s.hd; d++) out[(i * s.H + h) * s.hd + d] = yh[d] - yv / vv * vg[d];
    }
  return out;
}

template <typename T>
void check_forward(double tol) {
  std::vector<Shape> shapes(std::begin(kShapes), std::end(kShapes));
  shapes.push_back(kLarge);
  for (const Shape& s : shapes) {
    SCOPED_TRACE(testing::Message() << "H=" << s.H << " Hkv=" << s.Hkv << " hd=" << s.hd);
    const auto y = random_vector(s.rows * s.H * s.hd, 1), v = random_vector(s.rows * s.Hkv * s.hd, 2);
    const auto expected = reference(s, y, v);
    std::vector<T> yt(y.begin(), y.end()), vt(v.begin(), v.end()), out(y.size(), T(7));
    pgolf::cpu::xsa_forward<T>(yt.data(), vt.data(), out.data(), s.rows, s.H, s.Hkv, s.hd);
    for (size_t i = 0; i < y.size(); i++) ASSERT_NEAR(out[i], expected[i], tol) << i;
  }
}

TEST(XsaCpu, ForwardMatchesNaiveFloat) { check_forward<float>(1e-5); }
TEST(XsaCpu, ForwardMatchesNaiveDouble) { check_forward<double>(1e-13); }

TEST(XsaCpu, ZeroValueLeavesOutputUnchanged) {
  // ‖v‖ = 0: n = v/1e-12 = 0, so nothing is removed (no NaN).
  const Shape s{1, 2, 1, 4};
  const auto y = random_vector(8, 3);
  std::vector<double> v(4, 0.0), out(8);
  pgolf::cpu::xsa_forward<double>(y.data(), v.data(), out.data(), s.rows, s.H, s.Hkv, s.hd);
  EXPECT_EQ(out, y);
}

TEST(XsaCpu, GradientsMatchFiniteDifferences) {
  for (const Shape& s : kShapes) {
    SCOPED_TRACE(testing::Message() << "H=" << s.H << " Hkv=" << s.Hkv << " hd=" << s.hd);
    const int64_t ny = s.rows * s.H * s.hd, nv = s.rows * s.Hkv * s.hd;
    auto y = random_vector(ny, 4), v = random_vector(nv, 5), w = random_vector(ny, 6);
    std::vector<double> out(ny);
    auto loss = [&] {
      pgolf::cpu::xsa_forward<double>(y.data(), v.data(), out.data(), s.rows, s.H, s.Hkv, s.hd);
      return pgolf::test::dot(out, w);
    };
    std::vector<double> dy(ny, 0), dv(nv, 0);
    pgolf::cpu::xsa_backward<double>(w.data(), y.data(), v.data(), dy.data(), dv.data(), s.rows,
                                     s.H, s.Hkv, s.hd);
    pgolf::test::check_gradients({{"y", y.data(), dy.data(), ny}, {"v", v.data(), dv.data(), nv}},
                                 loss);
  }
}

TEST(XsaCpu, BackwardAccumulates) {
  const Shape s = kLarge;
  const int64_t ny = s.rows * s.H * s.hd, nv = s.rows * s.Hkv * s.hd;
  const auto y = random_vector(ny, 7), v = random_vector(nv, 8), dout = random_vector(ny, 9);
  std::vector<double> dy(ny, 0), dv(nv, 0);
  pgolf::cpu::xsa_backward<double>(dout.data(), y.data(), v.data(), dy.data(), dv.data(), s.rows,
                                   s.H, s.Hkv, s.hd);
  auto dy_pre = random_vector(ny, 10), dv_pre = random_vector(nv, 11);
  auto dy_acc = dy_pre, dv_acc = dv_pre;
  pgolf::cpu::xsa_backward<double>(dout.data(), y.data(), v.data(), dy_acc.data(), dv_acc.data(),
                                   s.rows, s.H, s.Hkv, s.hd);
  for (int64_t i = 0; i < ny; i++) ASSERT_NEAR(dy_acc[i], dy_pre[i] + dy[i], 1e-13) << i;
  for (int64_t i = 0; i < nv; i++) ASSERT_NEAR(dv_acc[i], dv_pre[i] + dv[i], 1e-13) << i;
}

// The multithreaded backward gives the same bits as one thread.
TEST(XsaCpu, BackwardIndependentOfThreadCount) {
  const Shape s = kLarge;
  const int64_t ny = s.rows * s.H * s.hd, nv = s.rows * s.Hkv * s.hd;
  const auto y = random_vector(ny, 12), v = random_vector(nv, 13), dout = random_vector(ny, 14);
  auto run = [&](int threads) {
    std::vector<double> dy(ny, 0), dv(nv, 0);
    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    pgolf::cpu::xsa_backward<double>(dout.data(), y.data(), v.data(), dy.data(), dv.data(),
                                     s.rows, s.H, s.Hkv, s.hd);
    omp_set_num_threads(saved);
    dy.insert(dy.end(), dv.begin(), dv.end());
    return dy;
  };
  EXPECT_EQ(run(1), run(3));
}

}  // namespace
