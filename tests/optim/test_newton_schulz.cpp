// Newton–Schulz 5 (SPEC §3): against the literal double reference on wide, tall and square
// matrices, its near-orthogonal output, and bits independent of the calling context.
#include <gtest/gtest.h>
#include <omp.h>

#include <cstring>
#include <vector>

#include "optim/newton_schulz.h"
#include "optim/reference.h"
#include "support/gradcheck.h"

namespace {

using pgolf::test::Mat;
using pgolf::test::random_vector;

template <typename T>
std::vector<T> run_ns(const Mat& G, int64_t rows, int64_t cols, int steps) {
  std::vector<T> g(G.begin(), G.end()), x(G.size(), T(-7));
  std::vector<T> ws(size_t(pgolf::newton_schulz5_workspace(rows, cols)), T(99));
  pgolf::newton_schulz5(g.data(), x.data(), rows, cols, steps, ws.data());
  return x;
}

// max |x - ref| relative to max |ref|.
template <typename T>
double rel_error(const std::vector<T>& x, const Mat& ref) {
  double err = 0, scale = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    err = std::max(err, std::abs(double(x[i]) - ref[i]));
    scale = std::max(scale, std::abs(ref[i]));
  }
  return err / scale;
}

struct Case {
  int64_t rows, cols;
};
const Case kCases[] = {{24, 56}, {56, 24}, {40, 40}, {1, 9}, {9, 1}};

template <typename T>
void check_against_naive(double tol) {
  uint32_t seed = 1;
  for (const Case& c : kCases)
    for (int steps : {0, 1, 5}) {
      const Mat G = random_vector(c.rows * c.cols, seed++, 0.3);
      const Mat ref = pgolf::test::naive_newton_schulz5(G, c.rows, c.cols, steps);
      const double err = rel_error(run_ns<T>(G, c.rows, c.cols, steps), ref);
      EXPECT_LE(err, tol) << c.rows << "x" << c.cols << " steps " << steps;
    }
}

TEST(NewtonSchulz, MatchesNaiveFloat) { check_against_naive<float>(1e-5); }
TEST(NewtonSchulz, MatchesNaiveDouble) { check_against_naive<double>(1e-12); }

// The naive reference itself: a transposition or a coefficient out of place shows here.
TEST(NewtonSchulz, NaiveReferenceByHand) {
  // 1x2 matrix [3, 4]: X = k0 [0.6, 0.8] with k0 = 5 / (5 + 1e-7); A = XX^T = k0^2,
  // B = b k0^2 + c k0^4, and one step gives X (a + B).
  const Mat x = pgolf::test::naive_newton_schulz5({3, 4}, 1, 2, 1);
  const double k0 = 5 / (5 + 1e-7);
  const double k = k0 * (3.4445 - 4.7750 * k0 * k0 + 2.0315 * k0 * k0 * k0 * k0);
  EXPECT_NEAR(x[0], 0.6 * k, 1e-15);
  EXPECT_NEAR(x[1], 0.8 * k, 1e-15);
  EXPECT_NEAR(x[0], 0.6 * 0.701, 1e-6);  // a + b + c = 0.701
  // The singular values helper: diag(3, 4) in a 2x3 matrix.
  const auto sv = pgolf::test::singular_values({3, 0, 0, 0, 4, 0}, 2, 3);
  EXPECT_NEAR(sv[0], 3, 1e-12);
  EXPECT_NEAR(sv[1], 4, 1e-12);
}

// Five steps push every singular value of a not-too-ill-conditioned matrix into the band
// NS5 oscillates in (about 0.7 to 1.2), not to exactly 1; a single step does not.
TEST(NewtonSchulz, OutputIsNearlyOrthogonal) {
  for (const Case& c : {Case{32, 64}, Case{64, 32}, Case{48, 96}}) {
    const Mat G = random_vector(c.rows * c.cols, 42, 1.0);
    const auto x = run_ns<float>(G, c.rows, c.cols, 5);
    const auto sv = pgolf::test::singular_values(Mat(x.begin(), x.end()), c.rows, c.cols);
    EXPECT_GE(sv.front(), 0.68) << c.rows << "x" << c.cols;
    EXPECT_LE(sv.back(), 1.2) << c.rows << "x" << c.cols;
    const auto x1 = run_ns<float>(G, c.rows, c.cols, 1);
    const auto sv1 = pgolf::test::singular_values(Mat(x1.begin(), x1.end()), c.rows, c.cols);
    EXPECT_LT(sv1.front(), 0.68) << "one step already orthogonalises, the check is vacuous";
  }
}

// The same bits at top level with several OpenMP threads (where OpenBLAS would go
// multi-threaded and round differently) and inside an active parallel region.
TEST(NewtonSchulz, BitsIndependentOfCallingContext) {
  const int saved = omp_get_max_threads();
  const int64_t rows = 512, cols = 256;
  const Mat G = random_vector(rows * cols, 9, 0.1);
  omp_set_num_threads(2);
  const auto top = run_ns<float>(G, rows, cols, 5);
  std::vector<float> inner;
#pragma omp parallel num_threads(2)
  {
#pragma omp single
    inner = run_ns<float>(G, rows, cols, 5);
  }
  omp_set_num_threads(1);
  const auto single = run_ns<float>(G, rows, cols, 5);
  omp_set_num_threads(saved);
  EXPECT_EQ(0, std::memcmp(top.data(), inner.data(), top.size() * sizeof(float)));
  EXPECT_EQ(0, std::memcmp(single.data(), inner.data(), top.size() * sizeof(float)));
}

TEST(NewtonSchulz, OutputMayAliasInput) {
  const Mat G = random_vector(12 * 20, 5, 1.0);
  const auto expected = run_ns<double>(G, 20, 12, 5);
  std::vector<double> x(G.begin(), G.end());
  std::vector<double> ws(size_t(pgolf::newton_schulz5_workspace(20, 12)));
  pgolf::newton_schulz5(x.data(), x.data(), 20, 12, 5, ws.data());
  EXPECT_EQ(x, expected);
}

}  // namespace
