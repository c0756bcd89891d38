// CUDA flash attention (kernels/cuda/attention.h) against the CPU kernel (float) on the same
// bf16 inputs. Tolerances (rtol relative to each element, floor relative to the largest):
// - y, dq, dk, dv: rtol 2^-8 for the one rounding of the result to bf16. Floors for the
//   operands the GPU rounds to bf16 before a product, as FlashAttention does: P (y, dv) and
//   dS (dk, dq), each term of a sum off by up to 2^-9 relative, independently, so a sum is off
//   by about 2^-9 sqrt(Σ term²). Floors 2^-8 (y) and 2^-7 (gradients): emulating exactly
//   those roundings on the host (double sums) on these shapes, the worst element used 0.43
//   of the y tolerance and 0.46 of the gradients'.
// - lse: fp32 on both sides; the scores differ only in the order of the fp32 sum over hd
//   (products of bf16 values are exact): 1e-5 relative, floor 2e-5 of the largest |lse|.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cuda/cuda_test_support.h"
#include "kernels/cpu/attention.h"
#include "kernels/cuda/attention.h"
#include "support/attention_shape.h"

namespace {

namespace cuda = pgolf::cuda;
using namespace pgolf::test;

using Shape = pgolf::test::AttentionShape;

const Shape kShapes[] = {
    {2, 77, 4, 4, 64},    // GQA ratio 1; T past one 64-row tile, not a multiple of it
    {2, 150, 8, 2, 128},  // GQA ratio 4; three query tiles, the last partial
    {3, 45, 4, 1, 72},    // an odd multiple of 8 (padded to 80 columns); GQA ratio 4
    {2, 70, 4, 2, 200},   // head dims above 128 take 32-key tiles
    {2, 5, 2, 1, 64},     // fewer rows than one warp's 16
    {1, 300, 2, 2, 256},  // the largest head dim, many key tiles
    {2, 130, 4, 2, 32},   // `tiny`'s head dim: two 16-column fragments
    {2, 70, 6, 3, 48},    // three fragments
    {2, 40, 4, 4, 16},    // the smallest head dim: one fragment
    {1, 33, 2, 1, 24},    // padded to 32 columns
};

constexpr double kOperandFloor = kBf16Rounding;       // y: P rounded to bf16
constexpr double kGradientFloor = 2 * kBf16Rounding;  // dq, dk, dv: P and dS rounded to bf16
constexpr double kLseRtol = 1e-5, kLseFloor = 2e-5;

std::string describe(const Shape& s) {
  return "B=" + std::to_string(s.B) + " T=" + std::to_string(s.T) + " H=" + std::to_string(s.H) +
         " Hkv=" + std::to_string(s.Hkv) + " hd=" + std::to_string(s.hd);
}

// Inputs like the model's: q carries q_gain (1.5) over unit-scale rms-normed rows, so the
// scaled logits have a standard deviation near 1.5.
struct Inputs {
  std::vector<float> q, k, v;
  explicit Inputs(const Shape& s)
      : q(random_bf16_values(s.q_size(), 11, 1.5)),
        k(random_bf16_values(s.kv_size(), 12)),
        v(random_bf16_values(s.kv_size(), 13)) {}
};

TEST(CudaAttention, UnsupportedShapesAreClearErrors) {
  // attention_check runs on the host before any device call: no GPU needed.
  for (int64_t hd : {16, 24, 32, 48, 64, 72, 104, 128, 200, 256})
    EXPECT_NO_THROW(cuda::attention_check(8, 4, hd));
  for (int64_t hd : {0, 4, 8, 12, 68, 100, 264, 512}) {
    try {
      cuda::attention_check(8, 4, hd);
      ADD_FAILURE() << "head dim " << hd << " was accepted";
    } catch (const pgolf::Error& e) {
      EXPECT_NE(std::string(e.what()).find("head dims 16 to 256 in steps of 8"), std::string::npos)
          << e.what();
    }
  }
  EXPECT_THROW(cuda::attention_check(6, 4, 64), pgolf::Error);  // H not a multiple of Hkv
  EXPECT_THROW(cuda::attention_check(8, 0, 64), pgolf::Error);
}

TEST(CudaAttention, ForwardMatchesCpu) {
  PGOLF_REQUIRE_GPU();
  cuda::Context ctx;
  for (const Shape& s : kShapes) {
    SCOPED_TRACE(describe(s));
    const Inputs in(s);
    std::vector<float> y(s.q_size()), lse(s.lse_size());
    pgolf::cpu::attention_forward(in.q.data(), in.k.data(), in.v.data(), y.data(), lse.data(), s.B,
                                  s.T, s.H, s.Hkv, s.hd);

    auto d_q = upload_bf16(ctx, in.q), d_k = upload_bf16(ctx, in.k), d_v = upload_bf16(ctx, in.v);
    cuda::DeviceBuffer<cuda::bf16> d_y(s.q_size());
    cuda::DeviceBuffer<float> d_lse(s.lse_size());
    cuda::attention_forward(ctx, d_q.data(), d_k.data(), d_v.data(), d_y.data(), d_lse.data(), s.B,
                            s.T, s.H, s.Hkv, s.hd);
    expect_close(download_floats(ctx, d_y), y, kBf16Rounding, kOperandFloor, "y");
    expect_close(download(ctx, d_lse), lse, kLseRtol, kLseFloor, "lse");
  }
}

// The backward alone: both sides read the CPU forward's y (rounded to bf16, as the GPU keeps
// it) and lse, and add into the same non-zero gradients (the kernels accumulate).
struct BackwardCase {
  Inputs in;
  std::vector<float> dy, y, lse, dq0, dk0, dv0;
  BackwardCase(const Shape& s)
      : in(s),
        dy(random_bf16_values(s.q_size(), 14)),
        y(s.q_size()),
        lse(s.lse_size()),
        dq0(random_bf16_values(s.q_size(), 15, 0.1)),
        dk0(random_bf16_values(s.kv_size(), 16, 0.1)),
        dv0(random_bf16_values(s.kv_size(), 17, 0.1)) {
    pgolf::cpu::attention_forward(in.q.data(), in.k.data(), in.v.data(), y.data(), lse.data(), s.B,
                                  s.T, s.H, s.Hkv, s.hd);
    for (float& x : y) x = bf16_round(x);
  }
};

struct DeviceGradients {
  std::vector<float> dq, dk, dv;
};

DeviceGradients gpu_backward(cuda::Context& ctx, const Shape& s, const BackwardCase& c) {
  auto d_q = upload_bf16(ctx, c.in.q), d_k = upload_bf16(ctx, c.in.k),
       d_v = upload_bf16(ctx, c.in.v), d_dy = upload_bf16(ctx, c.dy), d_y = upload_bf16(ctx, c.y);
  auto d_lse = upload(ctx, c.lse);
  auto d_dq = upload_bf16(ctx, c.dq0), d_dk = upload_bf16(ctx, c.dk0),
       d_dv = upload_bf16(ctx, c.dv0);
  cuda::attention_backward(ctx, d_dy.data(), d_q.data(), d_k.data(), d_v.data(), d_y.data(),
                           d_lse.data(), d_dq.data(), d_dk.data(), d_dv.data(), s.B, s.T, s.H,
                           s.Hkv, s.hd);
  return {download_floats(ctx, d_dq), download_floats(ctx, d_dk), download_floats(ctx, d_dv)};
}

TEST(CudaAttention, BackwardMatchesCpu) {
  PGOLF_REQUIRE_GPU();
  cuda::Context ctx;
  for (const Shape& s : kShapes) {
    SCOPED_TRACE(describe(s));
    const BackwardCase c(s);
    std::vector<float> dq = c.dq0, dk = c.dk0, dv = c.dv0;
    pgolf::cpu::attention_backward(c.dy.data(), c.in.q.data(), c.in.k.data(), c.in.v.data(),
                                   c.y.data(), c.lse.data(), dq.data(), dk.data(), dv.data(), s.B,
                                   s.T, s.H, s.Hkv, s.hd);
    const DeviceGradients got = gpu_backward(ctx, s, c);
    expect_close(got.dq, dq, kBf16Rounding, kGradientFloor, "dq");
    expect_close(got.dk, dk, kBf16Rounding, kGradientFloor, "dk");
    expect_close(got.dv, dv, kBf16Rounding, kGradientFloor, "dv");
  }
}

// No atomics: two runs give the same bits.
TEST(CudaAttention, BackwardIsDeterministic) {
  PGOLF_REQUIRE_GPU();
  cuda::Context ctx;
  const Shape s = kShapes[1];
  const BackwardCase c(s);
  const DeviceGradients a = gpu_backward(ctx, s, c), b = gpu_backward(ctx, s, c);
  EXPECT_EQ(a.dq, b.dq);
  EXPECT_EQ(a.dk, b.dk);
  EXPECT_EQ(a.dv, b.dv);
}

}  // namespace
