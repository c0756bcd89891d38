// Newton–Schulz 5 (SPEC §3) through gemm<T>, always on one BLAS thread.
#include "optim/newton_schulz.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "core/error.h"
#include "kernels/cpu/linear.h"

namespace pgolf {

namespace {

constexpr double kA = 3.4445, kB = -4.7750, kC = 2.0315;
constexpr double kEps = 1e-7;

// sqrt(sum x^2) in double, in eight fixed lanes so the loop vectorises and the order
// of additions (hence the bits) is fixed.
template <typename T>
double frobenius_norm(const T* x, int64_t n) {
  double lane[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) lane[l] += double(x[i + l]) * double(x[i + l]);
  for (; i < n; ++i) lane[i % 8] += double(x[i]) * double(x[i]);
  double s = 0;
  for (double v : lane) s += v;
  return std::sqrt(s);
}

template <typename T>
void newton_schulz5_body(const T* G, T* X, int64_t rows, int64_t cols, int steps, T* ws) {
  const bool transposed = rows > cols;
  const int64_t m = std::min(rows, cols), n = std::max(rows, cols);
  T* W = ws;           // the iterate, m x n
  T* Wn = W + m * n;   // the next iterate
  T* A = Wn + m * n;   // m x m
  T* B = A + m * m;    // m x m

  const T denom = T(frobenius_norm(G, rows * cols) + kEps);
  if (transposed) {
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) W[j * rows + i] = G[i * cols + j] / denom;
  } else {
    for (int64_t i = 0; i < m * n; ++i) W[i] = G[i] / denom;
  }

  const T a = T(kA), b = T(kB), c = T(kC);
  for (int s = 0; s < steps; ++s) {
    cpu::gemm<T>(false, true, m, m, n, T(1), W, n, W, n, T(0), A, m);  // A = W W^T
    for (int64_t i = 0; i < m * m; ++i) B[i] = b * A[i];
    cpu::gemm<T>(false, false, m, m, m, c, A, m, A, m, T(1), B, m);     // B = bA + cAA
    for (int64_t i = 0; i < m * n; ++i) Wn[i] = a * W[i];
    cpu::gemm<T>(false, false, m, n, m, T(1), B, m, W, n, T(1), Wn, n); // W = aW + BW
    std::swap(W, Wn);
  }

  if (transposed) {
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) X[i * cols + j] = W[j * rows + i];
  } else {
    std::copy(W, W + m * n, X);
  }
}

}  // namespace

int64_t newton_schulz5_workspace(int64_t rows, int64_t cols) {
  const int64_t m = std::min(rows, cols), n = std::max(rows, cols);
  return 2 * m * n + 2 * m * m;
}

template <typename T>
void newton_schulz5(const T* G, T* X, int64_t rows, int64_t cols, int steps, T* workspace) {
  PGOLF_CHECK(rows > 0 && cols > 0, "Newton-Schulz needs a non-empty matrix, got ", rows, "x",
              cols);
  PGOLF_CHECK(steps >= 0, "Newton-Schulz needs a non-negative step count, got ", steps);
  // OpenBLAS (OpenMP build) goes multi-threaded unless it is inside an active parallel
  // region or omp_get_max_threads() is 1, and its threaded GEMM rounds differently from
  // the single-threaded one. A one-thread region whose implicit task sets its own
  // nthreads-var to 1 makes every call below single-threaded wherever we are called from
  // (top level, a 1-thread team, or a worker of Muon's team); the setting dies with the
  // region and does not touch the caller's thread count nor OpenBLAS's.
#pragma omp parallel num_threads(1)
  {
    omp_set_num_threads(1);
    newton_schulz5_body(G, X, rows, cols, steps, workspace);
  }
}

template void newton_schulz5<float>(const float*, float*, int64_t, int64_t, int, float*);
template void newton_schulz5<double>(const double*, double*, int64_t, int64_t, int, double*);

}  // namespace pgolf
