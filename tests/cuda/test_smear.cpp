// CUDA SmearGate (kernels/cuda/smear.h) against the CPU kernel (in double) on the same bf16
// activations and fp32 gate. Tolerances: out and dh are one fp32 expression rounded once to
// bf16 (2^-8 relative, floor 1e-6 of the scale); dgate is a column sum over B T = 150 rows in
// fp32 partials and a double total, with g (1-g) applied per term rather than once, against
// the CPU's double sum (1e-5 relative, floor 1e-5 of the scale).
#include <gtest/gtest.h>

#include <vector>

#include "cuda/cuda_test_support.h"
#include "kernels/cpu/smear.h"
#include "kernels/cuda/smear.h"

namespace {

namespace cuda = pgolf::cuda;
using namespace pgolf::test;

// 3 sequences of 50: several row chunks in dgate's sum and sequence starts inside a chunk;
// 72 channels: a partial column tile.
constexpr int64_t kB = 3, kT = 50, kDim = 72, kN = kB * kT * kDim;

std::vector<double> as_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }

TEST(CudaSmear, ForwardMatchesCpu) {
  PGOLF_REQUIRE_GPU();
  cuda::Context ctx;
  const auto h = random_bf16_values(kN, 1);
  const auto gate = random_floats(kDim, 2, 2.0);  // gates on both sides of 1/2
  const auto hd = as_double(h), gated = as_double(gate);
  std::vector<double> out(kN);
  pgolf::cpu::smear_forward(hd.data(), gated.data(), out.data(), kB, kT, kDim);

  auto d_h = upload_bf16(ctx, h);
  auto d_gate = upload(ctx, gate);
  cuda::DeviceBuffer<cuda::bf16> d_out(kN);
  cuda::smear_forward(ctx, d_h.data(), d_gate.data(), d_out.data(), kB, kT, kDim);
  expect_close(download_floats(ctx, d_out), out, kBf16Rounding, 1e-6, "out");
}

TEST(CudaSmear, BackwardMatchesCpu) {
  PGOLF_REQUIRE_GPU();
  cuda::Context ctx;
  const auto g = random_bf16_values(kN, 1), h = random_bf16_values(kN, 2);
  const auto gate = random_floats(kDim, 3, 2.0);
  const auto dh0 = random_bf16_values(kN, 4);
  const auto dgate0 = random_floats(kDim, 5);  // both gradients accumulate
  const auto gd = as_double(g), hd = as_double(h), gated = as_double(gate);
  std::vector<double> dh = as_double(dh0), dgate = as_double(dgate0);
  pgolf::cpu::smear_backward(gd.data(), hd.data(), gated.data(), dh.data(), dgate.data(), kB, kT,
                             kDim);

  auto d_g = upload_bf16(ctx, g), d_h = upload_bf16(ctx, h), d_dh = upload_bf16(ctx, dh0);
  auto d_gate = upload(ctx, gate), d_dgate = upload(ctx, dgate0);
  cuda::smear_backward(ctx, d_g.data(), d_h.data(), d_gate.data(), d_dh.data(), d_dgate.data(), kB,
                       kT, kDim);
  expect_close(download_floats(ctx, d_dh), dh, kBf16Rounding, 1e-6, "dh");
  const std::vector<float> dgate_gpu = download(ctx, d_dgate);
  expect_close(dgate_gpu, dgate, 1e-5, 1e-5, "dgate");

  // Null gradients are skipped: dgate alone gives the same bits; dh alone the same dh.
  auto d_dgate2 = upload(ctx, dgate0);
  cuda::smear_backward(ctx, d_g.data(), d_h.data(), d_gate.data(), nullptr, d_dgate2.data(), kB, kT,
                       kDim);
  EXPECT_EQ(download(ctx, d_dgate2), dgate_gpu);
  auto d_dh2 = upload_bf16(ctx, dh0);
  cuda::smear_backward(ctx, d_g.data(), d_h.data(), d_gate.data(), d_dh2.data(), nullptr, kB, kT,
                       kDim);
  EXPECT_EQ(download_floats(ctx, d_dh2), download_floats(ctx, d_dh));
}

}  // namespace
