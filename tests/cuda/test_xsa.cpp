// CUDA XSA (kernels/cuda/xsa.h) against the CPU kernel (float) on the same bf16 inputs.
// Tolerances: every step is fp32 on both sides from the same bf16 values, and each result is
// rounded to bf16 once (rtol 2^-8); the floor, 1e-5 of the largest element, covers the fp32
// sums in a different order (warp butterflies against the CPU's sequential dots) where
// y - (y·n) n and dn - (dn·n) n cancel.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "cuda/cuda_test_support.h"
#include "kernels/cpu/xsa.h"
#include "kernels/cuda/xsa.h"

namespace {

namespace cuda = pgolf::cuda;
using namespace pgolf::test;

struct Shape {
  int64_t rows, H, Hkv, hd;
  int64_t y_size() const { return rows * H * hd; }
  int64_t v_size() const { return rows * Hkv * hd; }
};

// GQA ratios 1 and 4, head dims below, at and above the warp width and not multiples of it.
const Shape kShapes[] = {
    {37, 4, 4, 64}, {37, 8, 2, 128}, {29, 4, 1, 72}, {23, 4, 2, 20}, {19, 2, 1, 300},
};
constexpr double kFloor = 1e-5;

std::string describe(const Shape& s) {
  return "rows=" + std::to_string(s.rows) + " H=" + std::to_string(s.H) +
         " Hkv=" + std::to_string(s.Hkv) + " hd=" + std::to_string(s.hd);
}

TEST(CudaXsa, ForwardMatchesCpu) {
  PGOLF_REQUIRE_GPU();
  cuda::Context ctx;
  for (const Shape& s : kShapes) {
    SCOPED_TRACE(describe(s));
    const auto y = random_bf16_values(s.y_size(), 21);
    auto v = random_bf16_values(s.v_size(), 22);
    std::fill(v.begin(), v.begin() + s.hd, 0.0f);  // a zero value row: n = 0 (the norm's clamp)
    std::vector<float> out(y.size());
    pgolf::cpu::xsa_forward(y.data(), v.data(), out.data(), s.rows, s.H, s.Hkv, s.hd);

    auto d_y = upload_bf16(ctx, y), d_v = upload_bf16(ctx, v);
    cuda::DeviceBuffer<cuda::bf16> d_out(s.y_size());
    cuda::xsa_forward(ctx, d_y.data(), d_v.data(), d_out.data(), s.rows, s.H, s.Hkv, s.hd);
    const auto got = download_floats(ctx, d_out);
    expect_close(got, out, kBf16Rounding, kFloor, "out");

    // In place (out aliasing y) gives the same bits.
    cuda::xsa_forward(ctx, d_y.data(), d_v.data(), d_y.data(), s.rows, s.H, s.Hkv, s.hd);
    EXPECT_EQ(download_floats(ctx, d_y), got);
  }
}

TEST(CudaXsa, BackwardMatchesCpu) {
  PGOLF_REQUIRE_GPU();
  cuda::Context ctx;
  for (const Shape& s : kShapes) {
    SCOPED_TRACE(describe(s));
    const auto y = random_bf16_values(s.y_size(), 23), v = random_bf16_values(s.v_size(), 24);
    const auto dout = random_bf16_values(s.y_size(), 25);
    // Non-zero starting gradients: the kernels accumulate.
    const auto dy0 = random_bf16_values(s.y_size(), 26, 0.1),
               dv0 = random_bf16_values(s.v_size(), 27, 0.1);
    std::vector<float> dy = dy0, dv = dv0;
    pgolf::cpu::xsa_backward(dout.data(), y.data(), v.data(), dy.data(), dv.data(), s.rows, s.H,
                             s.Hkv, s.hd);

    auto d_dout = upload_bf16(ctx, dout), d_y = upload_bf16(ctx, y), d_v = upload_bf16(ctx, v);
    auto d_dy = upload_bf16(ctx, dy0), d_dv = upload_bf16(ctx, dv0);
    cuda::xsa_backward(ctx, d_dout.data(), d_y.data(), d_v.data(), d_dy.data(), d_dv.data(), s.rows,
                       s.H, s.Hkv, s.hd);
    expect_close(download_floats(ctx, d_dy), dy, kBf16Rounding, kFloor, "dy");
    expect_close(download_floats(ctx, d_dv), dv, kBf16Rounding, kFloor, "dv");
  }
}

TEST(CudaXsa, UnsupportedShapesAreClearErrors) {
  PGOLF_REQUIRE_GPU();  // the checks sit in the wrappers, which take a device context
  cuda::Context ctx;
  EXPECT_THROW(cuda::xsa_forward(ctx, nullptr, nullptr, nullptr, 1, 6, 4, 64), pgolf::Error);
  EXPECT_THROW(cuda::xsa_forward(ctx, nullptr, nullptr, nullptr, 1, 8, 4, 1025), pgolf::Error);
}

}  // namespace
