// Linear layers and GEMM (BLAS): forward against the naive triple loop, gradients by
// finite differences, accumulation into pre-filled buffers.
#include <gtest/gtest.h>

#include <vector>

#include "kernels/cpu/linear.h"
#include "support/gradcheck.h"

namespace {

using pgolf::test::random_vector;

template <typename T>
std::vector<T> cast(const std::vector<double>& v) {
  return std::vector<T>(v.begin(), v.end());
}

// y = x W^T (+ y0) computed naively; W is [out, in].
std::vector<double> naive_linear(const std::vector<double>& x, const std::vector<double>& W,
                                 int64_t n, int64_t in, int64_t out) {
  std::vector<double> y(n * out, 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < out; ++j)
      for (int64_t k = 0; k < in; ++k) y[i * out + j] += x[i * in + k] * W[j * in + k];
  return y;
}

template <typename T>
void check_linear_forward(double tol) {
  const int64_t n = 7, in = 10, out = 5;
  auto x = random_vector(n * in, 1), W = random_vector(out * in, 2), y0 = random_vector(n * out, 3);
  auto ref = naive_linear(x, W, n, in, out);
  auto xt = cast<T>(x), Wt = cast<T>(W);
  std::vector<T> y(n * out, T(99));
  pgolf::cpu::linear_forward(xt.data(), Wt.data(), y.data(), n, in, out);
  for (int64_t i = 0; i < n * out; ++i) EXPECT_NEAR(y[i], ref[i], tol) << i;
  auto ya = cast<T>(y0);
  pgolf::cpu::linear_forward(xt.data(), Wt.data(), ya.data(), n, in, out, /*accumulate=*/true);
  for (int64_t i = 0; i < n * out; ++i) EXPECT_NEAR(ya[i], ref[i] + y0[i], tol) << i;
}

TEST(Linear, ForwardFloat) { check_linear_forward<float>(1e-5); }
TEST(Linear, ForwardDouble) { check_linear_forward<double>(1e-12); }

// C = alpha op(A) op(B) + beta C for every transpose combination, with padded strides.
template <typename T>
void check_gemm(double tol) {
  const int64_t m = 5, n = 3, k = 7, pad = 2;
  const double alpha = 0.75, beta = -1.5;
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      // Stored shapes: A is [m,k] or [k,m]; B is [k,n] or [n,k]; each row padded by `pad`.
      const int64_t lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
      auto A = random_vector((ta ? k : m) * lda, 10 + ta),
           B = random_vector((tb ? n : k) * ldb, 20 + tb);
      auto C = random_vector(m * ldc, 30);
      auto a = [&](int64_t i, int64_t p) { return ta ? A[p * lda + i] : A[i * lda + p]; };
      auto b = [&](int64_t p, int64_t j) { return tb ? B[j * ldb + p] : B[p * ldb + j]; };
      auto At = cast<T>(A), Bt = cast<T>(B), Ct = cast<T>(C);
      pgolf::cpu::gemm<T>(ta, tb, m, n, k, T(alpha), At.data(), lda, Bt.data(), ldb, T(beta),
                          Ct.data(), ldc);
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < ldc; ++j) {
          double ref = C[i * ldc + j];  // the padding columns stay untouched
          if (j < n) {
            double s = 0;
            for (int64_t p = 0; p < k; ++p) s += a(i, p) * b(p, j);
            ref = alpha * s + beta * ref;
          }
          EXPECT_NEAR(Ct[i * ldc + j], ref, tol)
              << "ta=" << ta << " tb=" << tb << " " << i << "," << j;
        }
    }
}

TEST(Linear, GemmFloat) { check_gemm<float>(1e-5); }
TEST(Linear, GemmDouble) { check_gemm<double>(1e-12); }

TEST(Linear, GradCheck) {
  const int64_t n = 7, in = 10, out = 5;
  auto x = random_vector(n * in, 4), W = random_vector(out * in, 5), w = random_vector(n * out, 6);
  std::vector<double> y(n * out), dx(n * in, 0.0), dW(out * in, 0.0);
  pgolf::cpu::linear_backward(w.data(), x.data(), W.data(), dx.data(), dW.data(), n, in, out);
  pgolf::test::check_gradients(
      {{"x", x.data(), dx.data(), n * in}, {"W", W.data(), dW.data(), out * in}}, [&] {
        pgolf::cpu::linear_forward(x.data(), W.data(), y.data(), n, in, out);
        return pgolf::test::dot(y, w);
      });
}

TEST(Linear, BackwardAccumulatesAndSkipsNull) {
  const int64_t n = 7, in = 10, out = 5;
  auto x = random_vector(n * in, 7), W = random_vector(out * in, 8), dy = random_vector(n * out, 9);
  std::vector<double> dx(n * in, 0.0), dW(out * in, 0.0);
  pgolf::cpu::linear_backward(dy.data(), x.data(), W.data(), dx.data(), dW.data(), n, in, out);
  auto dx2 = random_vector(n * in, 11), dW2 = random_vector(out * in, 12);
  auto dx_pre = dx2, dW_pre = dW2;
  pgolf::cpu::linear_backward(dy.data(), x.data(), W.data(), dx2.data(), dW2.data(), n, in, out);
  for (int64_t i = 0; i < n * in; ++i) EXPECT_NEAR(dx2[i], dx_pre[i] + dx[i], 1e-12);
  for (int64_t i = 0; i < out * in; ++i) EXPECT_NEAR(dW2[i], dW_pre[i] + dW[i], 1e-12);
  // Null gradients are skipped, the other is still computed.
  std::vector<double> dW3(out * in, 0.0), dx3(n * in, 0.0);
  pgolf::cpu::linear_backward<double>(dy.data(), x.data(), W.data(), nullptr, dW3.data(), n, in,
                                      out);
  pgolf::cpu::linear_backward<double>(dy.data(), x.data(), W.data(), dx3.data(), nullptr, n, in,
                                      out);
  for (int64_t i = 0; i < out * in; ++i) EXPECT_NEAR(dW3[i], dW[i], 1e-12);
  for (int64_t i = 0; i < n * in; ++i) EXPECT_NEAR(dx3[i], dx[i], 1e-12);
}

}  // namespace
