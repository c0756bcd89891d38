// CUDA leaky_relu² (kernels/cuda/activation.h) against the CPU kernel on the same bf16
// inputs, at the SPEC's slope 0.5 and at 0 (relu²). Tolerance: one fp32 product rounded once
// to bf16 (2^-8 relative; the floor only admits exact zeros' neighbours).
#include <gtest/gtest.h>

#include <vector>

#include "cuda/cuda_test_support.h"
#include "kernels/cpu/activation.h"
#include "kernels/cuda/activation.h"

namespace {

namespace cuda = pgolf::cuda;
using namespace pgolf::test;

constexpr int64_t kN = 5000;

TEST(CudaActivation, ForwardMatchesCpu) {
  PGOLF_REQUIRE_GPU();
  cuda::Context ctx;
  for (float slope : {0.5f, 0.0f}) {
    auto h = random_bf16_values(kN, 1);
    std::vector<float> out(kN);
    pgolf::cpu::leaky_relu_sq_forward(h.data(), out.data(), kN, slope);
    auto d_h = upload_bf16(ctx, h);
    cuda::DeviceBuffer<cuda::bf16> d_out(kN);
    cuda::leaky_relu_sq_forward(ctx, d_h.data(), d_out.data(), kN, slope);
    expect_close(download_floats(ctx, d_out), out, kBf16Rounding, 1e-7, "out");
  }
}

TEST(CudaActivation, BackwardMatchesCpu) {
  PGOLF_REQUIRE_GPU();
  cuda::Context ctx;
  for (float slope : {0.5f, 0.0f}) {
    auto h = random_bf16_values(kN, 2), g = random_bf16_values(kN, 3);
    auto dh0 = random_bf16_values(kN, 4);  // accumulated into
    std::vector<float> dh = dh0;
    pgolf::cpu::leaky_relu_sq_backward(g.data(), h.data(), dh.data(), kN, slope);
    auto d_h = upload_bf16(ctx, h), d_g = upload_bf16(ctx, g), d_dh = upload_bf16(ctx, dh0);
    cuda::leaky_relu_sq_backward(ctx, d_g.data(), d_h.data(), d_dh.data(), kN, slope);
    expect_close(download_floats(ctx, d_dh), dh, kBf16Rounding, 1e-6, "dh");
  }
}

}  // namespace
