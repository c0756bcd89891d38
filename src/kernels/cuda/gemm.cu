// cuBLASLt GEMM (see gemm.h). cuBLASLt is column-major; a row-major M[r,c] with row stride
// ld is the column-major M^T with leading dimension ld, so the row-major product
// D = op(A) op(B) is computed as the column-major D^T = op(B)^T op(A)^T: B first, A second,
// each with its own transpose flag, and M = n, N = m.
#include "kernels/cuda/gemm.h"

#include <memory>
#include <type_traits>

#include "kernels/cuda/common.cuh"

namespace pgolf::cuda {

namespace {

struct DescDeleter {
  void operator()(cublasLtMatmulDescOpaque_t* p) const { cublasLtMatmulDescDestroy(p); }
  void operator()(cublasLtMatrixLayoutOpaque_t* p) const { cublasLtMatrixLayoutDestroy(p); }
  void operator()(cublasLtMatmulPreferenceOpaque_t* p) const {
    cublasLtMatmulPreferenceDestroy(p);
  }
};
using MatmulDesc = std::unique_ptr<cublasLtMatmulDescOpaque_t, DescDeleter>;
using Layout = std::unique_ptr<cublasLtMatrixLayoutOpaque_t, DescDeleter>;
using Preference = std::unique_ptr<cublasLtMatmulPreferenceOpaque_t, DescDeleter>;

template <typename Out>
constexpr cudaDataType_t out_type() {
  return std::is_same_v<Out, float> ? CUDA_R_32F : CUDA_R_16BF;
}

// The column-major layout of a stored row-major matrix of `rows` x `cols` (row stride ld),
// i.e. cols x rows with leading dimension ld, with the batch attributes.
Layout layout(cudaDataType_t type, int64_t rows, int64_t cols, int64_t ld, const GemmBatch& batch,
              int64_t stride) {
  cublasLtMatrixLayout_t p = nullptr;
  PGOLF_CUDA_CHECK(cublasLtMatrixLayoutCreate(&p, type, uint64_t(cols), uint64_t(rows), ld));
  Layout owned(p);
  if (batch.count > 1) {
    const int32_t count = batch.count;
    PGOLF_CUDA_CHECK(cublasLtMatrixLayoutSetAttribute(p, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT,
                                                      &count, sizeof(count)));
    PGOLF_CUDA_CHECK(cublasLtMatrixLayoutSetAttribute(
        p, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof(stride)));
  }
  return owned;
}

// The largest power of two up to 256 dividing the address of every matrix of the batch:
// the heuristic may otherwise pick a kernel whose vector loads need more.
uint32_t alignment(const void* p, int64_t stride_bytes, int count) {
  uint64_t bits = uint64_t(reinterpret_cast<uintptr_t>(p)) | 256u;
  if (count > 1) bits |= uint64_t(stride_bytes);
  return uint32_t(bits & (~bits + 1));  // lowest set bit
}

void set_alignment(cublasLtMatmulPreference_t pref, cublasLtMatmulPreferenceAttributes_t attr,
                   uint32_t bytes) {
  PGOLF_CUDA_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, attr, &bytes, sizeof(bytes)));
}

}  // namespace

template <typename Out>
void gemm(Context& ctx, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
          const bf16* A, int64_t lda, const bf16* B, int64_t ldb, float beta, const Out* C,
          Out* D, int64_t ldc, GemmBatch batch) {
  PGOLF_CHECK(m >= 0 && n >= 0 && k >= 0 && batch.count >= 1, "gemm needs non-negative sizes, got ",
              m, "x", n, "x", k, " in a batch of ", batch.count);
  if (m == 0 || n == 0) return;
  if (!C) {
    PGOLF_CHECK(beta == 0.0f, "gemm was given beta = ", beta, " without a C matrix");
    C = D;
  }

  cublasLtMatmulDesc_t desc_p = nullptr;
  PGOLF_CUDA_CHECK(cublasLtMatmulDescCreate(&desc_p, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  MatmulDesc desc(desc_p);
  // Column-major operand 1 is B, operand 2 is A (see the top of this file).
  const cublasOperation_t op1 = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op2 = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  PGOLF_CUDA_CHECK(cublasLtMatmulDescSetAttribute(desc_p, CUBLASLT_MATMUL_DESC_TRANSA, &op1,
                                                  sizeof(op1)));
  PGOLF_CUDA_CHECK(cublasLtMatmulDescSetAttribute(desc_p, CUBLASLT_MATMUL_DESC_TRANSB, &op2,
                                                  sizeof(op2)));

  // Stored shapes (row-major): B is [k,n] or, transposed, [n,k]; A is [m,k] or [k,m].
  const Layout lb = trans_b ? layout(CUDA_R_16BF, n, k, ldb, batch, batch.stride_b)
                            : layout(CUDA_R_16BF, k, n, ldb, batch, batch.stride_b);
  const Layout la = trans_a ? layout(CUDA_R_16BF, k, m, lda, batch, batch.stride_a)
                            : layout(CUDA_R_16BF, m, k, lda, batch, batch.stride_a);
  const Layout lc = layout(out_type<Out>(), m, n, ldc, batch, batch.stride_c);

  cublasLtMatmulPreference_t pref_p = nullptr;
  PGOLF_CUDA_CHECK(cublasLtMatmulPreferenceCreate(&pref_p));
  Preference pref(pref_p);
  const uint64_t workspace = uint64_t(ctx.workspace_bytes());
  PGOLF_CUDA_CHECK(cublasLtMatmulPreferenceSetAttribute(
      pref_p, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace, sizeof(workspace)));
  if constexpr (!std::is_same_v<Out, float>) {
    // A split-K product may only add its partial sums in fp32 (the compute type), never in
    // the bf16 output: fp32 accumulation all the way, as the SPEC's mixed precision says.
    const uint32_t schemes = CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE;
    PGOLF_CUDA_CHECK(cublasLtMatmulPreferenceSetAttribute(
        pref_p, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &schemes, sizeof(schemes)));
  }
  set_alignment(pref_p, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
                alignment(B, batch.stride_b * int64_t(sizeof(bf16)), batch.count));
  set_alignment(pref_p, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                alignment(A, batch.stride_a * int64_t(sizeof(bf16)), batch.count));
  set_alignment(pref_p, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
                alignment(C, batch.stride_c * int64_t(sizeof(Out)), batch.count));
  set_alignment(pref_p, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES,
                alignment(D, batch.stride_c * int64_t(sizeof(Out)), batch.count));

  cublasLtMatmulHeuristicResult_t heuristic{};
  int found = 0;
  PGOLF_CUDA_CHECK(cublasLtMatmulAlgoGetHeuristic(ctx.lt(), desc_p, lb.get(), la.get(), lc.get(),
                                                  lc.get(), pref_p, 1, &heuristic, &found));
  PGOLF_CHECK(found > 0, "cuBLASLt has no algorithm for a ", m, "x", n, "x", k, " bf16 GEMM (",
              trans_a ? "A^T" : "A", " ", trans_b ? "B^T" : "B", ", batch ", batch.count, ")");
  PGOLF_CUDA_CHECK(cublasLtMatmul(ctx.lt(), desc_p, &alpha, B, lb.get(), A, la.get(), &beta, C,
                                  lc.get(), D, lc.get(), &heuristic.algo, ctx.workspace(),
                                  workspace, ctx.stream()));
}

template <typename Out>
void linear_forward(Context& ctx, const bf16* x, const bf16* W, Out* y, int64_t n, int64_t in,
                    int64_t out, bool accumulate) {
  gemm<Out>(ctx, false, true, n, out, in, 1.0f, x, in, W, in, accumulate ? 1.0f : 0.0f,
            accumulate ? y : nullptr, y, out);
}

// dx += dy W: [n, out] x [out, in];  dW += dy^T x: [out, n] x [n, in].
void linear_backward(Context& ctx, const bf16* dy, const bf16* x, const bf16* W, bf16* dx,
                     float* dW, int64_t n, int64_t in, int64_t out) {
  if (dx) gemm<bf16>(ctx, false, false, n, in, out, 1.0f, dy, out, W, in, 1.0f, dx, dx, in);
  if (dW) gemm<float>(ctx, true, false, out, in, n, 1.0f, dy, out, x, in, 1.0f, dW, dW, in);
}

#define PGOLF_INSTANTIATE(Out)                                                                 \
  template void gemm<Out>(Context&, bool, bool, int64_t, int64_t, int64_t, float, const bf16*, \
                          int64_t, const bf16*, int64_t, float, const Out*, Out*, int64_t,     \
                          GemmBatch);                                                          \
  template void linear_forward<Out>(Context&, const bf16*, const bf16*, Out*, int64_t, int64_t, \
                                    int64_t, bool);
PGOLF_INSTANTIATE(float)
PGOLF_INSTANTIATE(bf16)
#undef PGOLF_INSTANTIATE

}  // namespace pgolf::cuda
