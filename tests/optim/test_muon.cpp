// Muon (SPEC §3): two consecutive steps against the written-out double formula on a tall
// and a wide matrix (so momentum, nesterov, scale and decay all count), bits independent
// of the thread count, and a bitwise resume from the saved momentum buffer.
#include <gtest/gtest.h>
#include <omp.h>

#include <cstring>
#include <vector>

#include "core/error.h"
#include "optim/muon.h"
#include "optim/reference.h"
#include "support/gradcheck.h"

namespace {

using pgolf::ParamRef;
using pgolf::test::Mat;
using pgolf::test::random_vector;

template <typename T>
struct Matrices {
  std::vector<int64_t> rows, cols;
  std::vector<std::vector<T>> value, grad;
  Matrices(std::vector<std::pair<int64_t, int64_t>> shapes, uint32_t seed) {
    for (auto [r, c] : shapes) {
      rows.push_back(r), cols.push_back(c);
      Mat v = random_vector(r * c, seed++, 0.05);
      value.emplace_back(v.begin(), v.end());
      grad.emplace_back(size_t(r * c), T(0));
    }
  }
  std::vector<ParamRef<T>> refs() {
    std::vector<ParamRef<T>> out;
    for (size_t i = 0; i < rows.size(); ++i)
      out.push_back({value[i].data(), grad[i].data(), rows[i], cols[i]});
    return out;
  }
  void set_grads(uint32_t seed) {
    for (auto& g : grad) {
      Mat r = random_vector(int64_t(g.size()), seed++, 0.01);
      std::copy(r.begin(), r.end(), g.begin());
    }
  }
};

struct Hyper {
  double lr, momentum, wd;
};
const Hyper kSteps[] = {{0.02, 0.92, 0.04}, {0.015, 0.95, 0.04}};

// Relative error of the parameter change (p - p0) against the reference's change.
template <typename T>
void check_two_steps(double wd_scale, double tol) {
  Matrices<T> mats({{48, 16}, {16, 40}}, 3);  // tall (scale sqrt 3) and wide
  std::vector<Mat> p_ref, buf_ref, p0;
  for (auto& v : mats.value) {
    p_ref.emplace_back(v.begin(), v.end());
    p0.emplace_back(v.begin(), v.end());
    buf_ref.emplace_back(v.size(), 0.0);
  }
  pgolf::Muon<T> muon(mats.refs());
  uint32_t seed = 100;
  for (const Hyper& h : kSteps) {
    mats.set_grads(seed);
    seed += 10;
    muon.step(h.lr, h.momentum, h.wd * wd_scale, 5);
    for (size_t i = 0; i < mats.rows.size(); ++i) {
      Mat g(mats.grad[i].begin(), mats.grad[i].end());
      pgolf::test::naive_muon_step(p_ref[i], buf_ref[i], g, mats.rows[i], mats.cols[i], h.lr,
                                   h.momentum, h.wd * wd_scale, 5);
    }
  }
  for (size_t i = 0; i < mats.rows.size(); ++i) {
    double err = 0, scale = 0, buf_err = 0, buf_scale = 0;
    const T* buf = muon.state().data() + muon.offset(i);
    for (size_t j = 0; j < p_ref[i].size(); ++j) {
      err = std::max(err, std::abs(double(mats.value[i][j]) - p_ref[i][j]));
      scale = std::max(scale, std::abs(p_ref[i][j] - p0[i][j]));
      buf_err = std::max(buf_err, std::abs(double(buf[j]) - buf_ref[i][j]));
      buf_scale = std::max(buf_scale, std::abs(buf_ref[i][j]));
    }
    EXPECT_LE(err / scale, tol) << "matrix " << i;
    EXPECT_LE(buf_err / buf_scale, tol) << "momentum of matrix " << i;
  }
}

TEST(Muon, TwoStepsMatchFormulaDouble) { check_two_steps<double>(1.0, 1e-12); }
TEST(Muon, TwoStepsMatchFormulaDoubleNoDecay) { check_two_steps<double>(0.0, 1e-12); }
TEST(Muon, TwoStepsMatchFormulaFloat) { check_two_steps<float>(1.0, 1e-5); }

// The scale and the order of decay and update, by hand on a 2x1 matrix with zero
// Newton–Schulz steps (u = g' / ‖g'‖): g = [3, 4], mu = 0.5: buf = g, g' = 1.5 g,
// u = [0.6, 0.8] (up to eps), scale sqrt(2); p = p0 (1 - lr wd) - lr sqrt(2) u.
TEST(Muon, ByHand) {
  std::vector<double> p = {1.0, -2.0}, g = {3.0, 4.0};
  pgolf::Muon<double> muon({{p.data(), g.data(), 2, 1}});
  muon.step(0.1, 0.5, 0.2, 0);
  const double k = 7.5 / (7.5 + 1e-7);
  EXPECT_NEAR(p[0], 1.0 * 0.98 - 0.1 * std::sqrt(2.0) * 0.6 * k, 1e-15);
  EXPECT_NEAR(p[1], -2.0 * 0.98 - 0.1 * std::sqrt(2.0) * 0.8 * k, 1e-15);
  EXPECT_EQ(muon.state()[0], 3.0);
  EXPECT_EQ(muon.state()[1], 4.0);
}

// Parameters and momentum after two steps with `threads` OpenMP threads.
std::vector<float> two_steps_with_threads(const std::vector<std::pair<int64_t, int64_t>>& shapes,
                                          int threads) {
  const int saved = omp_get_max_threads();
  omp_set_num_threads(threads);
  Matrices<float> mats(shapes, 7);
  pgolf::Muon<float> muon(mats.refs());
  for (uint32_t s = 0; s < 2; ++s) {
    mats.set_grads(50 + 10 * s);
    muon.step(0.02, 0.95, 0.04, 5);
  }
  omp_set_num_threads(saved);
  std::vector<float> all(muon.state().begin(), muon.state().end());
  for (auto& v : mats.value) all.insert(all.end(), v.begin(), v.end());
  return all;
}

// A record549-like mix of shapes, scaled down, and a single matrix (no parallel region,
// so only Newton–Schulz's own guard keeps OpenBLAS single-threaded): 1, 2 and 3 threads
// must give the same bits.
TEST(Muon, BitsIndependentOfThreadCount) {
  const std::vector<std::vector<std::pair<int64_t, int64_t>>> cases = {
      {{256, 256}, {128, 256}, {128, 256}, {256, 256}, {768, 256}, {256, 768}, {64, 64}},
      {{512, 256}}};
  for (const auto& shapes : cases) {
    const auto one = two_steps_with_threads(shapes, 1);
    for (int threads : {2, 3}) {
      const auto other = two_steps_with_threads(shapes, threads);
      ASSERT_EQ(one.size(), other.size());
      EXPECT_EQ(0, std::memcmp(one.data(), other.data(), one.size() * sizeof(float)))
          << shapes.size() << " matrices: results differ with " << threads << " threads";
    }
  }
}

// Save the momentum after two steps, continue two more; a fresh optimizer restored from
// the saved buffer and weights must continue bitwise identically.
TEST(Muon, ResumeFromStateIsBitwise) {
  Matrices<float> a({{32, 64}, {64, 32}}, 11);
  pgolf::Muon<float> muon(a.refs());
  for (uint32_t s = 0; s < 2; ++s) a.set_grads(200 + s * 10), muon.step(0.02, 0.9, 0.04, 5);
  const std::vector<float> saved(muon.state().begin(), muon.state().end());
  Matrices<float> b = a;  // weights at the checkpoint
  for (uint32_t s = 2; s < 4; ++s) a.set_grads(200 + s * 10), muon.step(0.02, 0.9, 0.04, 5);

  pgolf::Muon<float> resumed(b.refs());
  ASSERT_EQ(resumed.state().size(), saved.size());
  std::copy(saved.begin(), saved.end(), resumed.state().begin());
  for (uint32_t s = 2; s < 4; ++s) b.set_grads(200 + s * 10), resumed.step(0.02, 0.9, 0.04, 5);
  EXPECT_EQ(a.value, b.value);
  EXPECT_TRUE(std::equal(saved.begin(), saved.end(), muon.state().begin()) == false)
      << "momentum did not change, the resume check is vacuous";
  EXPECT_TRUE(std::equal(muon.state().begin(), muon.state().end(), resumed.state().begin()));
}

TEST(Muon, RejectsEmptyMatrices) {
  std::vector<float> v(4), g(4);
  EXPECT_THROW(pgolf::Muon<float>({{v.data(), g.data(), 0, 4}}), pgolf::Error);
  EXPECT_THROW(pgolf::Muon<float>({{v.data(), nullptr, 2, 2}}), pgolf::Error);
  // The same matrix twice, or two views that overlap.
  EXPECT_THROW(pgolf::Muon<float>({{v.data(), g.data(), 2, 2}, {v.data(), g.data(), 2, 2}}),
               pgolf::Error);
  EXPECT_THROW(pgolf::Muon<float>({{v.data() + 2, g.data(), 1, 2}, {v.data(), g.data(), 1, 3}}),
               pgolf::Error);
  EXPECT_NO_THROW(pgolf::Muon<float>({{v.data() + 2, g.data(), 1, 2}, {v.data(), g.data(), 1, 2}}));
}

}  // namespace
