// The CUDA optimizer element-wise kernels (kernels/cuda/optimizer.h) against the CPU
// optimizers on the same fp32 values. Tolerances:
//  - Muon's momentum, its update from a given u, the EMA: fp32 on both sides with the same
//    scalars; nvcc's (and possibly the host compiler's) fused multiply-adds change the last
//    bits: a few ulps (2e-6 relative over three steps, 3e-7 for one), floor 1e-7 of the scale.
//  - A whole Muon step (momentum, newton_schulz5 with 0 iterations, update) against Muon<float>:
//    the GPU rounds the normalised update to bf16 (the reference's precision; the CPU keeps
//    fp32), so the weights' change agrees to 2^-8 relative, floor 2^-7 of the largest change.
//  - SWA: bitwise (one fp32 addition, one IEEE division per element).
//  - The gradient norm: fp32 partials and a double total against the CPU's double sum:
//    1e-6 relative. Clipping: the factor from either norm rounds to the same float or a
//    neighbour, so 3e-7 relative; no clipping leaves the bits alone.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "cuda/cuda_test_support.h"
#include "kernels/cuda/newton_schulz.h"
#include "kernels/cuda/optimizer.h"
#include "optim/averaging.h"
#include "optim/grad_clip.h"
#include "optim/muon.h"

namespace {

namespace cuda = pgolf::cuda;
using namespace pgolf::test;

// Taller than wide: the aspect-ratio scale is sqrt(1.5) and Newton–Schulz transposes.
constexpr int64_t kRows = 96, kCols = 64, kN = kRows * kCols;

TEST(CudaOptimizer, MuonStepMatchesCpu) {
  PGOLF_REQUIRE_GPU();
  cuda::Context ctx;
  for (double wd : {0.0, 0.04}) {
    SCOPED_TRACE(testing::Message() << "weight decay " << wd);
    const std::vector<float> w0 = random_floats(kN, 1);
    std::vector<float> w = w0, g(kN);
    pgolf::Muon<float> cpu({{w.data(), g.data(), kRows, kCols}});
    auto d_w = upload(ctx, w0);
    cuda::DeviceBuffer<float> d_g(kN), d_buf(kN), d_gn(kN);
    cuda::DeviceBuffer<cuda::bf16> d_u(kN), d_ws(cuda::newton_schulz5_workspace(1, kRows, kCols));
    for (int step = 1; step <= 3; ++step) {
      const double lr = 0.02 * step, momentum = 0.85 + 0.03 * step;
      const auto fresh = random_floats(kN, 10 + step, 0.1);
      std::copy(fresh.begin(), fresh.end(), g.begin());  // in place: the optimizer holds g
      cpu.step(lr, momentum, wd, 0);
      d_g.upload(g, ctx.stream());
      const auto d_s = upload(ctx, std::vector{cuda::muon_step(lr, momentum, wd)});
      cuda::muon_momentum(ctx, d_buf.data(), d_g.data(), d_gn.data(), kN, d_s.data());
      cuda::newton_schulz5(ctx, d_gn.data(), d_u.data(), 1, kRows, kCols, 0, d_ws.data());
      cuda::muon_update(ctx, d_w.data(), d_u.data(), kN, cuda::muon_scale(kRows, kCols),
                        d_s.data());
    }
    const auto state = cpu.state();
    expect_close(download(ctx, d_buf), std::vector<float>(state.begin(), state.begin() + kN), 2e-6,
                 1e-7, "momentum");
    const auto w_gpu = download(ctx, d_w);
    std::vector<double> change_gpu(kN), change_cpu(kN);
    for (int64_t i = 0; i < kN; ++i) {
      change_gpu[i] = double(w_gpu[i]) - w0[i];
      change_cpu[i] = double(w[i]) - w0[i];
    }
    expect_close(change_gpu, change_cpu, kBf16Rounding, 2 * kBf16Rounding, "weight change");
  }
}

// The update alone, from a given bf16 u, against muon.cpp's formula in float.
TEST(CudaOptimizer, MuonUpdateMatchesCpuFormula) {
  PGOLF_REQUIRE_GPU();
  cuda::Context ctx;
  const auto w0 = random_floats(kN, 1), u = random_bf16_values(kN, 2, 0.02);
  for (double wd : {0.0, 0.04}) {
    SCOPED_TRACE(testing::Message() << "weight decay " << wd);
    const double lr = 0.03;
    const float tlr = float(lr), keep = float(1.0 - lr * wd);
    const float scale = float(std::sqrt(double(kRows) / double(kCols)));
    std::vector<float> want(kN);
    for (int64_t j = 0; j < kN; ++j) {
      const float uj = u[j] * scale;
      const float wj = wd > 0 ? w0[j] * keep : w0[j];
      want[j] = wj - tlr * uj;
    }
    auto d_w = upload(ctx, w0);
    auto d_u = upload_bf16(ctx, u);
    const auto d_s = upload(ctx, std::vector{cuda::muon_step(lr, 0.9, wd)});
    cuda::muon_update(ctx, d_w.data(), d_u.data(), kN, cuda::muon_scale(kRows, kCols), d_s.data());
    expect_close(download(ctx, d_w), want, 3e-7, 1e-7, "w");
  }
}

// The step's scalars are host arithmetic: this test needs no GPU.
TEST(CudaOptimizer, MuonStepScalarsMatchTheCpuFormula) {
  const cuda::MuonStep s = cuda::muon_step(0.02, 0.95, 0.1);
  EXPECT_EQ(s.lr, 0.02f);
  EXPECT_EQ(s.momentum, 0.95f);
  EXPECT_EQ(s.keep, float(1.0 - 0.02 * 0.1));
  EXPECT_TRUE(s.decay);
  EXPECT_FALSE(cuda::muon_step(0.02, 0.95, 0.0).decay);
  EXPECT_EQ(cuda::muon_scale(kRows, kCols), float(std::sqrt(1.5)));
  EXPECT_EQ(cuda::muon_scale(kCols, kRows), 1.0f);  // wide: no scale
  EXPECT_THROW(cuda::muon_scale(0, kCols), pgolf::Error);
}

TEST(CudaOptimizer, EmaMatchesCpu) {
  PGOLF_REQUIRE_GPU();
  cuda::Context ctx;
  std::vector<float> ema = random_floats(kN, 1);
  auto d_ema = upload(ctx, ema);
  for (int step = 1; step <= 3; ++step) {
    const auto p = random_floats(kN, 10 + step);
    pgolf::ema_update(std::span<float>(ema), std::span<const float>(p), 0.997);
    auto d_p = upload(ctx, p);
    cuda::ema_update(ctx, d_ema.data(), d_p.data(), kN, 0.997);
  }
  expect_close(download(ctx, d_ema), ema, 2e-6, 1e-7, "ema");
}

TEST(CudaOptimizer, SwaBitwiseEqualToCpu) {
  PGOLF_REQUIRE_GPU();
  cuda::Context ctx;
  std::vector<float> sum(kN), avg(kN);
  cuda::DeviceBuffer<float> d_sum(kN), d_avg(kN);
  for (int step = 1; step <= 3; ++step) {
    const auto p = random_floats(kN, 10 + step);
    pgolf::swa_accumulate(std::span<float>(sum), std::span<const float>(p));
    auto d_p = upload(ctx, p);
    cuda::swa_accumulate(ctx, d_sum.data(), d_p.data(), kN);
  }
  pgolf::swa_average(std::span<const float>(sum), 3, std::span<float>(avg));
  cuda::swa_average(ctx, d_sum.data(), 3, d_avg.data(), kN);
  EXPECT_EQ(download(ctx, d_sum), sum);
  EXPECT_EQ(download(ctx, d_avg), avg);
}

TEST(CudaOptimizer, GradNormAndClipMatchCpu) {
  PGOLF_REQUIRE_GPU();
  cuda::Context ctx;
  const int64_t n = 100003;  // not a multiple of 32; many row chunks
  const auto g = random_floats(n, 1, 0.01);
  const double norm = pgolf::global_grad_norm(std::span<const float>(g));
  auto d_g = upload(ctx, g);
  cuda::DeviceBuffer<double> d_ss(1), d_ss2(1);
  cuda::grad_sum_squares(ctx, d_g.data(), n, d_ss.data());
  const std::vector<double> ss = download(ctx, d_ss);
  EXPECT_NEAR(std::sqrt(ss[0]), norm, 1e-6 * norm);

  // Deterministic: again from zero, the same bits; a second span adds to the first.
  cuda::grad_sum_squares(ctx, d_g.data(), n, d_ss2.data());
  EXPECT_EQ(download(ctx, d_ss2), ss);
  cuda::grad_sum_squares(ctx, d_g.data(), n, d_ss2.data());
  EXPECT_EQ(download(ctx, d_ss2)[0], 2 * ss[0]);  // ss + ss, exact

  // No clipping below the max norm: the same bits.
  cuda::clip_grads(ctx, d_g.data(), n, d_ss.data(), 2 * norm);
  EXPECT_EQ(download(ctx, d_g), g);

  // Clipping to half the norm, as clip_grad_norm does on the host.
  std::vector<float> clipped = g;
  pgolf::clip_grad_norm(std::span<float>(clipped), 0.5 * norm);
  cuda::clip_grads(ctx, d_g.data(), n, d_ss.data(), 0.5 * norm);
  expect_close(download(ctx, d_g), clipped, 3e-7, 0, "clipped");
}

}  // namespace
