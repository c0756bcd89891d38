// CUDA RMS norm (kernels/cuda/rmsnorm.h) against the CPU kernel on the same bf16 inputs.
// Tolerances: rstd is fp32 on both sides (1e-5 relative: fp32 against the CPU's double sum);
// y and dx are rounded once to bf16 (2^-8 relative) over fp32 math (a floor of 1e-5 of the
// largest element for the backward's cancellation in dy - xhat m).
#include <gtest/gtest.h>

#include <vector>

#include "cuda/cuda_test_support.h"
#include "kernels/cpu/rmsnorm.h"
#include "kernels/cuda/rmsnorm.h"

namespace {

namespace cuda = pgolf::cuda;
using namespace pgolf::test;

// dims below, at and above the warp width, and not multiples of it.
constexpr int64_t kRows = 37;
const int64_t kDims[] = {20, 96, 515};

TEST(CudaRmsNorm, ForwardMatchesCpu) {
  PGOLF_REQUIRE_GPU();
  cuda::Context ctx;
  for (int64_t dim : kDims) {
    const float scale = 0.7f;
    auto x = random_bf16_values(kRows * dim, 1, 2.0);
    std::vector<float> y(x.size()), rstd(kRows);
    pgolf::cpu::rmsnorm_forward(x.data(), y.data(), rstd.data(), kRows, dim, scale);

    auto dx = upload_bf16(ctx, x);
    cuda::DeviceBuffer<cuda::bf16> dy(kRows * dim);
    cuda::DeviceBuffer<float> drstd(kRows);
    cuda::rmsnorm_forward(ctx, dx.data(), dy.data(), drstd.data(), kRows, dim, scale);
    expect_close(download(ctx, drstd), rstd, 1e-5, 0, "rstd");
    expect_close(download_floats(ctx, dy), y, kBf16Rounding, 1e-6, "y");

    // In place (y aliasing x) gives the same bits.
    cuda::rmsnorm_forward(ctx, dx.data(), dx.data(), drstd.data(), kRows, dim, scale);
    EXPECT_EQ(download_floats(ctx, dx), download_floats(ctx, dy)) << "dim " << dim;
  }
}

TEST(CudaRmsNorm, BackwardMatchesCpu) {
  PGOLF_REQUIRE_GPU();
  cuda::Context ctx;
  for (int64_t dim : kDims) {
    const float scale = 0.7f;
    auto x = random_bf16_values(kRows * dim, 2), g = random_bf16_values(kRows * dim, 3);
    auto dx0 = random_bf16_values(kRows * dim, 4);  // the backward accumulates into dx
    std::vector<float> y(x.size()), rstd(kRows), dx = dx0;
    pgolf::cpu::rmsnorm_forward(x.data(), y.data(), rstd.data(), kRows, dim, scale);
    pgolf::cpu::rmsnorm_backward(g.data(), x.data(), rstd.data(), dx.data(), kRows, dim, scale);

    auto d_x = upload_bf16(ctx, x), d_g = upload_bf16(ctx, g), d_dx = upload_bf16(ctx, dx0);
    auto d_rstd = upload(ctx, rstd);  // the CPU's rstd: this checks the backward alone
    cuda::rmsnorm_backward(ctx, d_g.data(), d_x.data(), d_rstd.data(), d_dx.data(), kRows, dim,
                           scale);
    expect_close(download_floats(ctx, d_dx), dx, kBf16Rounding, 1e-5, "dx");
  }
}

}  // namespace
