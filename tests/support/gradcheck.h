// Finite-difference gradient checking for kernels and models in double precision.
//
// Usage: fill inputs, run the forward and the analytic backward with an upstream
// gradient `w` (so the scalar loss is sum(out * w)), then call check_gradients with
// every differentiable input and its analytic gradient, and a closure that reruns
// the forward and returns the scalar loss. The error of a tensor is
// max|analytic - numeric| / max(max|numeric|, tiny), the same measure as the
// PyTorch parity test.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace pgolf::test {

struct GradInput {
  std::string name;
  double* value;          // the input, perturbed in place and restored
  const double* grad;     // the analytic gradient of the loss w.r.t. value
  int64_t n;
};

// Worst relative error seen by any check_gradients call in this process; the
// kernel test binary reports it at exit so the closing note can quote one figure.
inline double& worst_gradcheck_error() {
  static double worst = 0;
  return worst;
}

inline double check_gradients(const std::vector<GradInput>& inputs,
                              const std::function<double()>& loss, double h = 1e-5,
                              int64_t max_probes = 4096) {
  double worst = 0;
  for (const auto& in : inputs) {
    // Probe every element, or an even stride of at most max_probes for big tensors.
    int64_t stride = std::max<int64_t>(1, in.n / max_probes);
    double max_err = 0, max_num = 0;
    for (int64_t i = 0; i < in.n; i += stride) {
      double saved = in.value[i];
      in.value[i] = saved + h;
      double lp = loss();
      in.value[i] = saved - h;
      double lm = loss();
      in.value[i] = saved;
      double numeric = (lp - lm) / (2 * h);
      max_err = std::max(max_err, std::abs(numeric - in.grad[i]));
      max_num = std::max(max_num, std::abs(numeric));
    }
    double rel = max_err / std::max(max_num, 1e-12);
    EXPECT_GT(max_num, 0.0) << in.name << ": the numeric gradient is zero everywhere, the check "
                            << "cannot fail";
    EXPECT_LE(rel, 1e-6) << in.name << ": relative gradient error " << rel;
    if (std::getenv("PGOLF_GRADCHECK_VERBOSE")) std::printf("  %s rel %.3g\n", in.name.c_str(), rel);
    worst = std::max(worst, rel);
  }
  worst_gradcheck_error() = std::max(worst_gradcheck_error(), worst);
  return worst;
}

// Deterministic random vectors for test inputs.
inline std::vector<double> random_vector(int64_t n, uint32_t seed, double scale = 1.0) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> dist(0.0, scale);
  std::vector<double> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

}  // namespace pgolf::test
