// Linear layers and GEMM through CBLAS (OpenBLAS, OpenMP build), row-major.
#include "kernels/cpu/linear.h"

#include <cblas.h>

namespace pgolf::cpu {

namespace {

// One overload per precision so gemm<T> dispatches to sgemm or dgemm.
void blas_gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int64_t m, int64_t n, int64_t k, float alpha,
               const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
               int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

void blas_gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int64_t m, int64_t n, int64_t k,
               double alpha, const double* A, int64_t lda, const double* B, int64_t ldb,
               double beta, double* C, int64_t ldc) {
  cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* A,
          int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if (m == 0 || n == 0) return;
  blas_gemm(trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, n, k,
            alpha, A, lda, B, ldb, beta, C, ldc);
}

// y = x W^T (+ y): [n, in] x [out, in]^T -> [n, out].
template <typename T>
void linear_forward(const T* x, const T* W, T* y, int64_t n, int64_t in, int64_t out,
                    bool accumulate) {
  gemm<T>(false, true, n, out, in, T(1), x, in, W, in, accumulate ? T(1) : T(0), y, out);
}

// dx += dy W: [n, out] x [out, in];  dW += dy^T x: [out, n] x [n, in].
template <typename T>
void linear_backward(const T* dy, const T* x, const T* W, T* dx, T* dW, int64_t n, int64_t in,
                     int64_t out) {
  if (dx) gemm<T>(false, false, n, in, out, T(1), dy, out, W, in, T(1), dx, in);
  if (dW) gemm<T>(true, false, out, in, n, T(1), dy, out, x, in, T(1), dW, in);
}

#define PGOLF_INSTANTIATE(T)                                                                   \
  template void gemm<T>(bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t, const T*, \
                        int64_t, T, T*, int64_t);                                              \
  template void linear_forward<T>(const T*, const T*, T*, int64_t, int64_t, int64_t, bool);    \
  template void linear_backward<T>(const T*, const T*, const T*, T*, T*, int64_t, int64_t, int64_t);
PGOLF_INSTANTIATE(float)
PGOLF_INSTANTIATE(double)
#undef PGOLF_INSTANTIATE

}  // namespace pgolf::cpu
