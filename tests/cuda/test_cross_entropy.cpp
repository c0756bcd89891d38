// CUDA softcap + cross-entropy (kernels/cuda/cross_entropy.h) against the CPU kernel in
// double on the same logits, fp32 and bf16, with the cap (30) and without it, with the
// scoring temperature. Tolerances: the loss is fp32 logsumexp over V terms (1e-5 relative,
// floor 1e-5 of the largest loss); dz is fp32 rounded once to bf16 (2^-8 relative, floor 1e-6
// of the largest |dz| for the fp32 error of the softmax in the many tiny entries).
#include <gtest/gtest.h>

#include <type_traits>
#include <vector>

#include "cuda/cuda_test_support.h"
#include "kernels/cpu/cross_entropy.h"
#include "kernels/cuda/cross_entropy.h"

namespace {

namespace cuda = pgolf::cuda;
using namespace pgolf::test;

constexpr int64_t kRows = 13, kV = 1000;  // V not a multiple of the block

std::vector<int32_t> random_targets(uint32_t seed) {
  std::vector<int32_t> t(kRows);
  for (int64_t r = 0; r < kRows; ++r) t[r] = int32_t((r * 7919 + seed * 104729) % kV);
  return t;
}

// Logits of scale 20, so the cap bends them; fp32 values, or bf16 ones for the bf16 path.
std::vector<float> logits(bool bf16_values) {
  return bf16_values ? random_bf16_values(kRows * kV, 1, 20.0) : random_floats(kRows * kV, 1, 20.0);
}

template <typename Z>
void check_forward(cuda::Context& ctx, float cap, float temperature) {
  const bool is_bf16 = !std::is_same_v<Z, float>;
  const auto z = logits(is_bf16);
  const auto targets = random_targets(2);
  const std::vector<double> zd(z.begin(), z.end());
  std::vector<double> want(kRows);
  pgolf::cpu::softcap_ce_forward<double>(zd.data(), targets.data(), want.data(), kRows, kV, cap,
                                         temperature);

  auto d_z = upload_as<Z>(ctx, z);
  auto d_t = upload(ctx, targets);
  cuda::DeviceBuffer<float> d_loss(kRows);
  cuda::softcap_ce_forward<Z>(ctx, d_z.data(), d_t.data(), d_loss.data(), kRows, kV, cap,
                              temperature);
  expect_close(download(ctx, d_loss), want, 1e-5, 1e-5, is_bf16 ? "bf16 loss" : "fp32 loss");
}

template <typename Z>
void check_backward(cuda::Context& ctx, float cap, bool accumulate) {
  const bool is_bf16 = !std::is_same_v<Z, float>;
  const auto z = logits(is_bf16);
  const auto targets = random_targets(3);
  const auto dloss = random_floats(kRows, 4);
  const auto dz0 = random_bf16_values(kRows * kV, 5, 1e-3);
  const std::vector<double> zd(z.begin(), z.end()), gd(dloss.begin(), dloss.end());
  std::vector<double> want(dz0.begin(), dz0.end());
  pgolf::cpu::softcap_ce_backward<double>(zd.data(), targets.data(), gd.data(), want.data(),
                                          kRows, kV, cap, accumulate);

  auto d_z = upload_as<Z>(ctx, z);
  auto d_t = upload(ctx, targets);
  auto d_g = upload(ctx, dloss);
  auto d_dz = upload_bf16(ctx, dz0);
  cuda::softcap_ce_backward<Z>(ctx, d_z.data(), d_t.data(), d_g.data(), d_dz.data(), kRows, kV,
                               cap, accumulate);
  expect_close(download_floats(ctx, d_dz), want, kBf16Rounding, 1e-6,
               is_bf16 ? "bf16-logit dz" : "fp32-logit dz");
}

TEST(CudaCrossEntropy, ForwardMatchesCpu) {
  PGOLF_REQUIRE_GPU();
  cuda::Context ctx;
  for (float cap : {30.0f, 0.0f})
    for (float temperature : {1.0f, 0.98f}) {
      SCOPED_TRACE(testing::Message() << "cap " << cap << ", temperature " << temperature);
      check_forward<float>(ctx, cap, temperature);
      check_forward<cuda::bf16>(ctx, cap, temperature);
    }
}

TEST(CudaCrossEntropy, BackwardMatchesCpu) {
  PGOLF_REQUIRE_GPU();
  cuda::Context ctx;
  for (float cap : {30.0f, 0.0f})
    for (bool accumulate : {true, false}) {
      SCOPED_TRACE(testing::Message() << "cap " << cap << ", accumulate " << accumulate);
      check_backward<float>(ctx, cap, accumulate);
      check_backward<cuda::bf16>(ctx, cap, accumulate);
    }
}

}  // namespace
