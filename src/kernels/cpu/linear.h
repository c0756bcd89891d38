// Linear layers through BLAS (OpenBLAS sgemm / dgemm): y = x W^T, W is [out, in].
#pragma once
#include <cstdint>

namespace pgolf::cpu {

// y[n, out] = x[n, in] W[out, in]^T  (+ y when accumulate).
template <typename T>
void linear_forward(const T* x, const T* W, T* y, int64_t n, int64_t in, int64_t out,
                    bool accumulate = false);

// dx += dy W (skipped when dx is null);  dW += dy^T x (skipped when dW is null).
template <typename T>
void linear_backward(const T* dy, const T* x, const T* W, T* dx, T* dW, int64_t n, int64_t in,
                     int64_t out);

// Plain row-major GEMM used by kernels that tile their own products:
// C[m,n] = alpha * op(A) op(B) + beta * C with op = transpose when the flag is set;
// lda/ldb/ldc are the row strides of the stored matrices.
template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* A,
          int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc);

}  // namespace pgolf::cpu
