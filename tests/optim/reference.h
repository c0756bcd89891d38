// Plain-loop double references for the optimizer tests: Newton–Schulz 5 and one Muon step
// (SPEC §3), and the eigenvalues of a small symmetric matrix (cyclic Jacobi) for checking
// singular values.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace pgolf::test {

using Mat = std::vector<double>;  // row-major

// C[r, c] = A[r, k] B[k, c]
inline Mat matmul(const Mat& A, const Mat& B, int64_t r, int64_t k, int64_t c) {
  Mat C(r * c, 0.0);
  for (int64_t i = 0; i < r; ++i)
    for (int64_t p = 0; p < k; ++p)
      for (int64_t j = 0; j < c; ++j) C[i * c + j] += A[i * k + p] * B[p * c + j];
  return C;
}

inline Mat transpose(const Mat& A, int64_t r, int64_t c) {
  Mat T(r * c);
  for (int64_t i = 0; i < r; ++i)
    for (int64_t j = 0; j < c; ++j) T[j * r + i] = A[i * c + j];
  return T;
}

// The reference's zeropower_via_newtonschulz5, literally, in double.
inline Mat naive_newton_schulz5(const Mat& G, int64_t rows, int64_t cols, int steps) {
  const double a = 3.4445, b = -4.7750, c = 2.0315;
  double ss = 0;
  for (double g : G) ss += g * g;
  Mat X = G;
  for (double& x : X) x /= std::sqrt(ss) + 1e-7;
  const bool transposed = rows > cols;
  int64_t m = rows, n = cols;
  if (transposed) X = transpose(X, rows, cols), std::swap(m, n);
  for (int s = 0; s < steps; ++s) {
    Mat A = matmul(X, transpose(X, m, n), m, n, m);
    Mat AA = matmul(A, A, m, m, m);
    Mat B(m * m);
    for (int64_t i = 0; i < m * m; ++i) B[i] = b * A[i] + c * AA[i];
    Mat BX = matmul(B, X, m, m, n);
    for (int64_t i = 0; i < m * n; ++i) X[i] = a * X[i] + BX[i];
  }
  return transposed ? transpose(X, m, n) : X;
}

// One Muon step on one matrix, the formula of SPEC §3 written out.
inline void naive_muon_step(Mat& p, Mat& buf, const Mat& g, int64_t rows, int64_t cols,
                            double lr, double momentum, double wd, int steps) {
  Mat gp(g.size());
  for (size_t i = 0; i < g.size(); ++i) {
    buf[i] = momentum * buf[i] + g[i];
    gp[i] = g[i] + momentum * buf[i];
  }
  Mat u = naive_newton_schulz5(gp, rows, cols, steps);
  const double scale = std::sqrt(std::max(1.0, double(rows) / double(cols)));
  for (size_t i = 0; i < p.size(); ++i) {
    if (wd > 0) p[i] *= 1 - lr * wd;
    p[i] -= lr * scale * u[i];
  }
}

// Eigenvalues of the symmetric n x n matrix S by cyclic Jacobi rotations.
inline std::vector<double> symmetric_eigenvalues(Mat S, int64_t n) {
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = i + 1; j < n; ++j) off += S[i * n + j] * S[i * n + j];
    if (off < 1e-28) break;
    for (int64_t p = 0; p < n; ++p)
      for (int64_t q = p + 1; q < n; ++q) {
        const double apq = S[p * n + q];
        if (std::abs(apq) < 1e-300) continue;
        const double theta = (S[q * n + q] - S[p * n + p]) / (2 * apq);
        const double t = (theta >= 0 ? 1 : -1) / (std::abs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (int64_t k = 0; k < n; ++k) {  // S = S J (columns p, q)
          const double skp = S[k * n + p], skq = S[k * n + q];
          S[k * n + p] = c * skp - s * skq;
          S[k * n + q] = s * skp + c * skq;
        }
        for (int64_t k = 0; k < n; ++k) {  // S = J^T S (rows p, q)
          const double spk = S[p * n + k], sqk = S[q * n + k];
          S[p * n + k] = c * spk - s * sqk;
          S[q * n + k] = s * spk + c * sqk;
        }
      }
  }
  std::vector<double> ev(n);
  for (int64_t i = 0; i < n; ++i) ev[i] = S[i * n + i];
  std::sort(ev.begin(), ev.end());
  return ev;
}

// Singular values of the rows x cols matrix X: sqrt of the eigenvalues of the smaller Gram.
inline std::vector<double> singular_values(const Mat& X, int64_t rows, int64_t cols) {
  const bool wide = rows <= cols;
  const int64_t m = wide ? rows : cols, n = wide ? cols : rows;
  const Mat W = wide ? X : transpose(X, rows, cols);
  auto ev = symmetric_eigenvalues(matmul(W, transpose(W, m, n), m, n, m), m);
  for (double& e : ev) e = std::sqrt(std::max(0.0, e));
  return ev;
}

}  // namespace pgolf::test
