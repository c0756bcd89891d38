// The batched bf16 Newton–Schulz (kernels/cuda/newton_schulz.h) against the CPU's fp32
// newton_schulz5 (optim/newton_schulz.h), matrix by matrix, for wide, tall (the transposed
// iteration) and square batches.
// Tolerance: bf16 rounds every iterate, so the result is not the fp32 one. A CPU emulation
// of the bf16 roundings (after each GEMM, fp32 sums) on N(0,1) matrices of 64x96 to 512x512
// differed from fp32 by 1.1–1.5% in relative Frobenius norm and at most 2.4% of max|X| in
// one element; the bounds are twice those: 3% and 5%. A wrong coefficient, a missed
// transpose or a wrong batch stride gives errors of order 100%.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "cuda/cuda_test_support.h"
#include "kernels/cuda/newton_schulz.h"
#include "optim/newton_schulz.h"

namespace {

namespace cuda = pgolf::cuda;
using namespace pgolf::test;

void check_batch(cuda::Context& ctx, int64_t count, int64_t rows, int64_t cols) {
  SCOPED_TRACE(testing::Message() << count << " matrices of " << rows << "x" << cols);
  const int64_t numel = rows * cols;
  const auto g = random_floats(count * numel, uint32_t(rows * 1000 + cols));
  std::vector<float> want(g.size());
  std::vector<float> ws(size_t(pgolf::newton_schulz5_workspace(rows, cols)));
  for (int64_t i = 0; i < count; ++i)
    pgolf::newton_schulz5<float>(g.data() + i * numel, want.data() + i * numel, rows, cols, 5,
                                 ws.data());

  auto d_g = upload(ctx, g);
  cuda::DeviceBuffer<cuda::bf16> d_x(count * numel);
  cuda::DeviceBuffer<cuda::bf16> d_ws(cuda::newton_schulz5_workspace(count, rows, cols));
  cuda::newton_schulz5(ctx, d_g.data(), d_x.data(), count, rows, cols, 5, d_ws.data());
  const std::vector<float> got = download_floats(ctx, d_x);

  for (int64_t i = 0; i < count; ++i) {
    double err2 = 0, ref2 = 0, max_err = 0, max_ref = 0;
    for (int64_t j = i * numel; j < (i + 1) * numel; ++j) {
      const double e = std::fabs(double(got[j]) - want[j]);
      err2 += e * e;
      ref2 += double(want[j]) * want[j];
      max_err = std::max(max_err, e);
      max_ref = std::max(max_ref, std::fabs(double(want[j])));
    }
    EXPECT_LT(std::sqrt(err2 / ref2), 0.03) << "matrix " << i << ": relative Frobenius error";
    EXPECT_LT(max_err, 0.05 * max_ref) << "matrix " << i << ": largest element error";
  }
}

TEST(CudaNewtonSchulz, BatchMatchesCpu) {
  PGOLF_REQUIRE_GPU();
  cuda::Context ctx;
  check_batch(ctx, 3, 64, 96);   // wide: X X^T
  check_batch(ctx, 3, 96, 64);   // tall: the reference's transposed iteration
  check_batch(ctx, 2, 64, 64);   // square
  check_batch(ctx, 1, 128, 384);
}

TEST(CudaNewtonSchulz, ZeroStepsIsTheNormalisedInput) {
  PGOLF_REQUIRE_GPU();
  cuda::Context ctx;
  const int64_t rows = 8, cols = 12;
  const auto g = random_floats(2 * rows * cols, 7);
  auto d_g = upload(ctx, g);
  cuda::DeviceBuffer<cuda::bf16> d_x(2 * rows * cols);
  cuda::DeviceBuffer<cuda::bf16> d_ws(cuda::newton_schulz5_workspace(2, rows, cols));
  cuda::newton_schulz5(ctx, d_g.data(), d_x.data(), 2, rows, cols, 0, d_ws.data());
  std::vector<float> want(g.size());
  for (int64_t i = 0; i < 2; ++i) {  // bf16(G) / (‖bf16(G)‖_F + 1e-7), rounded to bf16
    double ss = 0;
    for (int64_t j = i * rows * cols; j < (i + 1) * rows * cols; ++j)
      ss += double(bf16_round(g[j])) * bf16_round(g[j]);
    for (int64_t j = i * rows * cols; j < (i + 1) * rows * cols; ++j)
      want[j] = bf16_round(float(bf16_round(g[j]) / (std::sqrt(ss) + 1e-7)));
  }
  expect_close(download_floats(ctx, d_x), want, kBf16Rounding, 1e-6, "X");
}

}  // namespace
