// Matrix products on the GPU through cuBLASLt, the twin of kernels/cpu/linear.h: row-major
// as cpu::gemm, bf16 operands, fp32 accumulation and scaling (SPEC mixed precision), the
// result in bf16 (activations) or fp32 (weight gradients, logits).
//
// The epilogue is cuBLASLt's default one, the alpha/beta blend D = alpha AB + beta C, and
// nothing else: pgolf's linears have no bias and its MLP nonlinearity (leaky_relu², SPEC §2)
// is no cuBLASLt epilogue, so a bias or GELU epilogue would have nothing to do. The blend
// is used: beta = 1 with C = D accumulates gradients in place (dW += dy^T x over
// micro-batches, dx += dy W), and C != D gives Newton–Schulz's aX + BX in one call.
#pragma once
#include <cstdint>

#include "core/cuda/runtime.h"

namespace pgolf::cuda {

// A strided batch of `count` products: matrix i of A, B and C/D starts i * stride elements
// after the first. count = 1 is one product.
struct GemmBatch {
  int count = 1;
  int64_t stride_a = 0, stride_b = 0, stride_c = 0;
};

// D[m,n] = alpha op(A)[m,k] op(B)[k,n] + beta C[m,n], op = transpose when the flag is set;
// lda, ldb, ldc are the row strides of the stored matrices, C and D share ldc (and the
// batch stride). C may be D (in place) or null when beta = 0. Out is bf16 or float.
template <typename Out>
void gemm(Context& ctx, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
          const bf16* A, int64_t lda, const bf16* B, int64_t ldb, float beta, const Out* C,
          Out* D, int64_t ldc, GemmBatch batch = {});

// y[n, out] = x[n, in] W[out, in]^T (+ y when accumulate), as cpu::linear_forward.
template <typename Out>
void linear_forward(Context& ctx, const bf16* x, const bf16* W, Out* y, int64_t n, int64_t in,
                    int64_t out, bool accumulate = false);

// dx += dy W (bf16; skipped when dx is null); dW += dy^T x (the fp32 gradient of the fp32
// master weight; skipped when dW is null), as cpu::linear_backward.
void linear_backward(Context& ctx, const bf16* dy, const bf16* x, const bf16* W, bf16* dx,
                     float* dW, int64_t n, int64_t in, int64_t out);

}  // namespace pgolf::cuda
