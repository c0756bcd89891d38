// CUDA late-QAT fake quantisation (kernels/cuda/fake_quant.h) against the CPU kernel on the
// same fp32 weights. Tolerance: none. Every step is one correctly rounded fp32 operation on
// both sides, so the results must be bitwise equal.
#include <gtest/gtest.h>

#include <vector>

#include "cuda/cuda_test_support.h"
#include "kernels/cpu/fake_quant.h"
#include "kernels/cuda/fake_quant.h"

namespace {

namespace cuda = pgolf::cuda;
using namespace pgolf::test;

std::vector<float> cpu_fake_quant(const std::vector<float>& w, int64_t rows, int64_t cols) {
  std::vector<float> out(w.size());
  pgolf::cpu::fake_quant_int6_rows(w.data(), out.data(), rows, cols);
  return out;
}

TEST(CudaFakeQuant, BitwiseEqualToCpu) {
  PGOLF_REQUIRE_GPU();
  cuda::Context ctx;
  const int64_t rows = 37;
  // Row widths below, at and above a block of threads; a scale of 0.02 keeps most rows under
  // rowmax 1 (scale 1/31), 3.0 puts them above (scale rowmax / 31).
  for (int64_t cols : {20, 256, 1000})
    for (double scale : {0.02, 3.0}) {
      SCOPED_TRACE(testing::Message() << cols << " columns, scale " << scale);
      const auto w = random_floats(rows * cols, uint32_t(cols), scale);
      const auto want = cpu_fake_quant(w, rows, cols);
      auto d_w = upload(ctx, w);
      cuda::DeviceBuffer<float> d_out(rows * cols);
      cuda::fake_quant_int6_rows(ctx, d_w.data(), d_out.data(), rows, cols);
      EXPECT_EQ(download(ctx, d_out), want);
      // In place, as QAT quantises the master weights.
      cuda::fake_quant_int6_rows(ctx, d_w.data(), d_w.data(), rows, cols);
      EXPECT_EQ(download(ctx, d_w), want);
    }
}

// Ties round to even, as torch.round: with rowmax 31 the scale is exactly 1.
TEST(CudaFakeQuant, TiesRoundToEven) {
  PGOLF_REQUIRE_GPU();
  cuda::Context ctx;
  const std::vector<float> w = {31.0f, 2.5f, -3.5f, 0.5f, -0.5f, 1.5f, 30.5f, -30.5f};
  const std::vector<float> want = {31.0f, 2.0f, -4.0f, 0.0f, -0.0f, 2.0f, 30.0f, -30.0f};
  ASSERT_EQ(cpu_fake_quant(w, 1, int64_t(w.size())), want);
  auto d_w = upload(ctx, w);
  cuda::fake_quant_int6_rows(ctx, d_w.data(), d_w.data(), 1, int64_t(w.size()));
  EXPECT_EQ(download(ctx, d_w), want);
}

}  // namespace
