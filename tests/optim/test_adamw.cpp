// AdamW (SPEC §3, torch's fused order): several steps against a scalar closed-form loop,
// with and without weight decay; step 1 by hand; a bitwise resume from the saved state.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/error.h"
#include "optim/adamw.h"
#include "support/gradcheck.h"

namespace {

using pgolf::ParamRef;
using pgolf::test::random_vector;

// The formula of adamw.h for one element, in double.
struct ScalarAdamW {
  double p, m = 0, v = 0;
  int step = 0;
  void update(double g, double lr, double wd, double b1 = 0.9, double b2 = 0.95,
              double eps = 1e-8) {
    ++step;
    p *= 1 - lr * wd;
    m = b1 * m + (1 - b1) * g;
    v = b2 * v + (1 - b2) * g * g;
    const double bc1 = 1 - std::pow(b1, step), bc2 = 1 - std::pow(b2, step);
    p -= lr / bc1 * m / (std::sqrt(v) / std::sqrt(bc2) + eps);
  }
};

// Two parameters (a 3x5 matrix and a 1x4 vector) through five steps with varying lr.
template <typename T>
void check_steps(double wd, double tol) {
  const int64_t n0 = 15, n1 = 4;
  auto v0 = random_vector(n0, 1), v1 = random_vector(n1, 2);
  std::vector<T> p0(v0.begin(), v0.end()), p1(v1.begin(), v1.end()), g0(n0), g1(n1);
  std::vector<ScalarAdamW> ref;
  for (double x : v0) ref.push_back({x});
  for (double x : v1) ref.push_back({x});
  pgolf::AdamW<T> opt({{p0.data(), g0.data(), 3, 5}, {p1.data(), g1.data(), 1, 4}});
  for (int s = 0; s < 5; ++s) {
    const double lr = 0.01 * (1 + s);
    auto gr = random_vector(n0 + n1, 10 + s, 0.1);
    std::copy(gr.begin(), gr.begin() + n0, g0.begin());
    std::copy(gr.begin() + n0, gr.end(), g1.begin());
    opt.step(lr, wd);
    for (int64_t i = 0; i < n0 + n1; ++i) ref[i].update(double(T(gr[i])), lr, wd);
  }
  EXPECT_EQ(opt.step_count(), 5);
  for (int64_t i = 0; i < n0 + n1; ++i) {
    const double got = i < n0 ? double(p0[i]) : double(p1[i - n0]);
    EXPECT_NEAR(got, ref[i].p, tol) << i;
    const int64_t k = i < n0 ? opt.offset(0) + i : opt.offset(1) + i - n0;
    EXPECT_NEAR(double(opt.state()[k]), ref[i].m, tol) << "m " << i;
    EXPECT_NEAR(double(opt.state()[opt.state().size() / 2 + k]), ref[i].v, tol) << "v " << i;
  }
}

TEST(AdamW, StepsMatchClosedFormDouble) { check_steps<double>(0.1, 1e-14); }
TEST(AdamW, StepsMatchClosedFormDoubleNoDecay) { check_steps<double>(0.0, 1e-14); }
TEST(AdamW, StepsMatchClosedFormFloat) { check_steps<float>(0.1, 1e-6); }

// Step 1: bias correction makes m_hat = g and v_hat = g^2, so the step is lr * g/(|g|+eps).
// p0 = 1, g = 0.5, lr = 0.01, wd = 0.1:
//   p = 1 * (1 - 0.001) - 0.01 * 0.5 / (0.5 + 1e-8) = 0.989 + 2e-10 (to 1e-17).
// Step 2 with g = -0.25: m = 0.9*0.05 - 0.025 = 0.02, v = 0.95*0.0125 + 0.05*0.0625 = 0.015;
//   bc1 = 0.19, bc2 = 0.0975; p = p1 * 0.999 - (0.01/0.19) * 0.02 / (sqrt(0.015/0.0975) + 1e-8).
TEST(AdamW, BiasCorrectionByHand) {
  std::vector<double> p = {1.0}, g = {0.5};
  pgolf::AdamW<double> opt({{p.data(), g.data(), 1, 1}});
  opt.step(0.01, 0.1);
  EXPECT_NEAR(p[0], 0.9890000002, 1e-16);
  EXPECT_NEAR(opt.state()[0], 0.05, 1e-16);
  EXPECT_NEAR(opt.state()[opt.state().size() / 2], 0.0125, 1e-16);
  const double p1 = p[0];
  g[0] = -0.25;
  opt.step(0.01, 0.1);
  const double expected = p1 * 0.999 - (0.01 / 0.19) * 0.02 / (std::sqrt(0.015 / 0.0975) + 1e-8);
  EXPECT_NEAR(p[0], expected, 1e-15);
  EXPECT_NEAR(p[0], 0.98532731, 1e-8);  // the number itself
}

// Save m, v and the step count after three steps, continue two; a fresh optimizer
// restored from them continues bitwise identically. The step count matters: without it
// the bias correction of the resumed run would differ.
TEST(AdamW, ResumeFromStateIsBitwise) {
  auto init = random_vector(37, 3);
  std::vector<float> a(init.begin(), init.end()), g(37);
  pgolf::AdamW<float> opt({{a.data(), g.data(), 1, 37}});
  auto set_grad = [&](int s) {
    auto r = random_vector(37, 300 + s, 0.1);
    std::copy(r.begin(), r.end(), g.begin());
  };
  for (int s = 0; s < 3; ++s) set_grad(s), opt.step(0.01, 0.04);
  const std::vector<float> saved(opt.state().begin(), opt.state().end());
  const int64_t saved_step = opt.step_count();
  std::vector<float> b = a;
  for (int s = 3; s < 5; ++s) set_grad(s), opt.step(0.01, 0.04);

  pgolf::AdamW<float> resumed({{b.data(), g.data(), 1, 37}});
  std::copy(saved.begin(), saved.end(), resumed.state().begin());
  resumed.set_step_count(saved_step);
  for (int s = 3; s < 5; ++s) set_grad(s), resumed.step(0.01, 0.04);
  EXPECT_EQ(a, b);
  EXPECT_EQ(resumed.step_count(), 5);

  // Restoring without the step count does not reproduce the run.
  std::vector<float> c(init.begin(), init.end());
  pgolf::AdamW<float> wrong({{c.data(), g.data(), 1, 37}});
  for (int s = 0; s < 3; ++s) set_grad(s), wrong.step(0.01, 0.04);
  wrong.set_step_count(0);
  for (int s = 3; s < 5; ++s) set_grad(s), wrong.step(0.01, 0.04);
  EXPECT_NE(a, c);
}

TEST(AdamW, RejectsTheSameParameterTwice) {
  std::vector<float> v(4), g(4);
  EXPECT_THROW(pgolf::AdamW<float>({{v.data(), g.data(), 1, 4}, {v.data() + 3, g.data(), 1, 1}}),
               pgolf::Error);
  // An empty parameter shares its address with the next one (ParamLayout gives it no
  // room); that is no overlap.
  EXPECT_NO_THROW(pgolf::AdamW<float>({{v.data(), g.data(), 1, 4}, {v.data(), g.data(), 1, 0}}));
}

}  // namespace
