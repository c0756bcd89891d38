// The CUDA AdamW update (kernels/cuda/adamw.h) against the CPU optimizer (optim/adamw.h) on
// the same fp32 parameters and gradients, three steps with and without weight decay.
// Tolerance: fp32 on both sides with the same scalars; nvcc's fused multiply-adds change the
// last bits: 2e-6 relative, floor 1e-7 of the scale.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "cuda/cuda_test_support.h"
#include "kernels/cuda/adamw.h"
#include "optim/adamw.h"

namespace {

namespace cuda = pgolf::cuda;
using namespace pgolf::test;

TEST(CudaAdamW, MatchesCpuOptimizer) {
  PGOLF_REQUIRE_GPU();
  cuda::Context ctx;
  const int64_t n = 4099;
  for (double wd : {0.0, 0.04}) {
    SCOPED_TRACE(testing::Message() << "weight decay " << wd);
    std::vector<float> p = random_floats(n, 1), g(n);
    auto d_p = upload(ctx, p);
    cuda::DeviceBuffer<float> d_g(n), d_m(n), d_v(n);
    pgolf::AdamW<float> cpu({{p.data(), g.data(), 1, n}});
    for (int step = 1; step <= 3; ++step) {
      const double lr = 0.01 * step;
      const auto fresh = random_floats(n, 10 + step, 0.1);
      std::copy(fresh.begin(), fresh.end(), g.begin());  // in place: the optimizer holds g
      cpu.step(lr, wd);
      d_g.upload(g, ctx.stream());
      const auto d_s = upload(ctx, std::vector{cuda::adamw_step(step, lr, wd)});
      cuda::adamw_update(ctx, d_p.data(), d_g.data(), d_m.data(), d_v.data(), n, d_s.data());
    }
    const auto state = cpu.state();
    const std::vector<float> m(state.begin(), state.begin() + n);
    const std::vector<float> v(state.begin() + state.size() / 2,
                               state.begin() + state.size() / 2 + n);
    expect_close(download(ctx, d_p), p, 2e-6, 1e-7, "p");
    expect_close(download(ctx, d_m), m, 2e-6, 1e-7, "m");
    expect_close(download(ctx, d_v), v, 2e-6, 1e-7, "v");
  }
}

// The step's scalars are host arithmetic: this test needs no GPU.
TEST(CudaAdamW, StepScalarsMatchTheCpuFormula) {
  const cuda::AdamWStep s = cuda::adamw_step(3, 0.02, 0.1);
  EXPECT_FLOAT_EQ(s.step_size, float(0.02 / (1 - 0.9 * 0.9 * 0.9)));
  EXPECT_FLOAT_EQ(s.bc2_sqrt, float(std::sqrt(1 - 0.95 * 0.95 * 0.95)));
  EXPECT_FLOAT_EQ(s.keep, float(1 - 0.02 * 0.1));
  EXPECT_TRUE(s.decay);
  EXPECT_FALSE(cuda::adamw_step(1, 0.02, 0.0).decay);
  EXPECT_THROW(cuda::adamw_step(0, 0.02, 0.0), pgolf::Error);
}

}  // namespace
