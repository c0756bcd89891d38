// CUDA residual mix and casts (kernels/cuda/elementwise.h) against the CPU kernels (in
// double) on the same bf16 inputs. Tolerances: out, dx, dx0 are one fp32 expression rounded
// once to bf16 (2^-8 relative, floor 1e-6 of the scale); dmix is an fp32 column sum of 300
// rows in a fixed order against the CPU's double sum (1e-5 relative, floor 1e-5 of the
// scale); the casts are exact (round to nearest even one way, widening the other).
#include <gtest/gtest.h>

#include <vector>

#include "cuda/cuda_test_support.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cuda/elementwise.h"

namespace {

namespace cuda = pgolf::cuda;
using namespace pgolf::test;

// 300 rows: several row chunks in the backward's column sums; 72 columns: a partial tile.
constexpr int64_t kRows = 300, kD = 72;

std::vector<double> as_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }

TEST(CudaElementwise, ResidMixForwardMatchesCpu) {
  PGOLF_REQUIRE_GPU();
  cuda::Context ctx;
  const auto x = random_bf16_values(kRows * kD, 1), x0 = random_bf16_values(kRows * kD, 2);
  const auto mix = random_floats(2 * kD, 3);
  const auto xd = as_double(x), x0d = as_double(x0), mixd = as_double(mix);
  std::vector<double> out(kRows * kD);
  pgolf::cpu::resid_mix_forward(xd.data(), x0d.data(), mixd.data(), out.data(), kRows, kD);

  auto d_x = upload_bf16(ctx, x), d_x0 = upload_bf16(ctx, x0);
  auto d_mix = upload(ctx, mix);
  cuda::DeviceBuffer<cuda::bf16> d_out(kRows * kD);
  cuda::resid_mix_forward(ctx, d_x.data(), d_x0.data(), d_mix.data(), d_out.data(), kRows, kD);
  expect_close(download_floats(ctx, d_out), out, kBf16Rounding, 1e-6, "out");
}

TEST(CudaElementwise, ResidMixBackwardMatchesCpu) {
  PGOLF_REQUIRE_GPU();
  cuda::Context ctx;
  const auto g = random_bf16_values(kRows * kD, 1), x = random_bf16_values(kRows * kD, 2);
  const auto x0 = random_bf16_values(kRows * kD, 3);
  const auto mix = random_floats(2 * kD, 4);
  const auto dx0 = random_bf16_values(kRows * kD, 5), dxx0 = random_bf16_values(kRows * kD, 6);
  const auto dmix0 = random_floats(2 * kD, 7);  // all three gradients accumulate
  const auto gd = as_double(g), xd = as_double(x), x0d = as_double(x0), mixd = as_double(mix);
  std::vector<double> dx = as_double(dx0), dxx = as_double(dxx0), dmix = as_double(dmix0);
  pgolf::cpu::resid_mix_backward(gd.data(), xd.data(), x0d.data(), mixd.data(), dx.data(),
                                 dxx.data(), dmix.data(), kRows, kD);

  auto d_g = upload_bf16(ctx, g), d_x = upload_bf16(ctx, x), d_x0 = upload_bf16(ctx, x0);
  auto d_mix = upload(ctx, mix), d_dmix = upload(ctx, dmix0);
  auto d_dx = upload_bf16(ctx, dx0), d_dxx = upload_bf16(ctx, dxx0);
  cuda::resid_mix_backward(ctx, d_g.data(), d_x.data(), d_x0.data(), d_mix.data(), d_dx.data(),
                           d_dxx.data(), d_dmix.data(), kRows, kD);
  expect_close(download_floats(ctx, d_dx), dx, kBf16Rounding, 1e-6, "dx");
  expect_close(download_floats(ctx, d_dxx), dxx, kBf16Rounding, 1e-6, "dx0");
  const std::vector<float> dmix_gpu = download(ctx, d_dmix);
  expect_close(dmix_gpu, dmix, 1e-5, 1e-5, "dmix");

  // Null gradients are skipped: dmix alone gives the same bits; dx alone leaves dmix alone.
  auto d_dmix2 = upload(ctx, dmix0);
  cuda::resid_mix_backward(ctx, d_g.data(), d_x.data(), d_x0.data(), d_mix.data(), nullptr,
                           nullptr, d_dmix2.data(), kRows, kD);
  EXPECT_EQ(download(ctx, d_dmix2), dmix_gpu);
  auto d_dx2 = upload_bf16(ctx, dx0);
  cuda::resid_mix_backward(ctx, d_g.data(), d_x.data(), d_x0.data(), d_mix.data(), d_dx2.data(),
                           nullptr, nullptr, kRows, kD);
  EXPECT_EQ(download_floats(ctx, d_dx2), download_floats(ctx, d_dx));
}

TEST(CudaElementwise, CastsMatchHostRounding) {
  PGOLF_REQUIRE_GPU();
  cuda::Context ctx;
  const int64_t n = 3001;
  auto x = random_floats(n, 1, 100.0);
  x[0] = 1.0f + 1.0f / 256;  // a tie: rounds to even (1.0)
  std::vector<float> want(n);
  for (int64_t i = 0; i < n; ++i) want[i] = bf16_round(x[i]);

  auto d_x = upload(ctx, x);
  cuda::DeviceBuffer<cuda::bf16> d_b(n);
  cuda::cast_to_bf16(ctx, d_x.data(), d_b.data(), n);
  EXPECT_EQ(download_floats(ctx, d_b), want);
  EXPECT_EQ(download_floats(ctx, d_b)[0], 1.0f);
  cuda::DeviceBuffer<float> d_back(n);
  cuda::cast_to_float(ctx, d_b.data(), d_back.data(), n);
  EXPECT_EQ(download(ctx, d_back), want);
}

}  // namespace
