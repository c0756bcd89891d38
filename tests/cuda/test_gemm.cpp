// The cuBLASLt GEMM wrapper (kernels/cuda/gemm.h) against cpu::gemm and cpu::linear_* (in
// double) on the same bf16 operands: every transpose pair, alpha/beta with C != D, in-place
// accumulation, a strided batch, fp32 and bf16 results. Tolerances: products of bf16 values
// are exact in fp32, so the only fp32 error is the accumulation order over k (1e-5 relative,
// floor 1e-5 of the scale); a bf16 result adds one rounding (2^-8 relative).
#include <gtest/gtest.h>

#include <type_traits>
#include <vector>

#include "cuda/cuda_test_support.h"
#include "kernels/cpu/linear.h"
#include "kernels/cuda/gemm.h"

namespace {

namespace cuda = pgolf::cuda;
using namespace pgolf::test;

// Odd sizes, so no dimension is a multiple of a tile or of the 16-byte vector width.
constexpr int64_t kM = 37, kN = 45, kK = 70;

std::vector<double> as_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }

template <typename Out>
double rounding() {
  return std::is_same_v<Out, float> ? 1e-5 : kBf16Rounding;
}

// D = alpha op(A) op(B) + beta C for a batch of `count` products, against cpu::gemm per product.
template <typename Out>
void check_gemm(cuda::Context& ctx, bool ta, bool tb, float alpha, float beta, bool in_place,
                int count) {
  SCOPED_TRACE(testing::Message() << "trans_a " << ta << ", trans_b " << tb << ", alpha "
                                  << alpha << ", beta " << beta << ", in place " << in_place
                                  << ", batch " << count << ", "
                                  << (std::is_same_v<Out, float> ? "fp32" : "bf16") << " out");
  const int64_t lda = ta ? kM : kK, ldb = tb ? kK : kN, ldc = kN;
  const int64_t sa = kM * kK, sb = kK * kN, sc = kM * kN;
  const auto a = random_bf16_values(count * sa, 1), b = random_bf16_values(count * sb, 2);
  const auto c = random_bf16_values(count * sc, 3);  // exact as bf16 and fp32 outputs alike
  const auto ad = as_double(a), bd = as_double(b);
  std::vector<double> want = as_double(c);
  for (int i = 0; i < count; ++i)
    pgolf::cpu::gemm<double>(ta, tb, kM, kN, kK, alpha, ad.data() + i * sa, lda,
                             bd.data() + i * sb, ldb, beta, want.data() + i * sc, ldc);

  auto d_a = upload_bf16(ctx, a), d_b = upload_bf16(ctx, b);
  auto d_c = upload_as<Out>(ctx, c);
  cuda::DeviceBuffer<Out> d_d(count * sc);
  Out* out = in_place ? d_c.data() : d_d.data();
  cuda::gemm<Out>(ctx, ta, tb, kM, kN, kK, alpha, d_a.data(), lda, d_b.data(), ldb, beta,
                  d_c.data(), out, ldc, {count, sa, sb, sc});
  expect_close(download_as_floats(ctx, in_place ? d_c : d_d), want, rounding<Out>(), 1e-5, "D");
  if (!in_place) {
    EXPECT_EQ(download_as_floats(ctx, d_c), c) << "C was written";
  }
}

TEST(CudaGemm, EveryTransposeMatchesCpu) {
  PGOLF_REQUIRE_GPU();
  cuda::Context ctx;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      check_gemm<float>(ctx, ta, tb, 1.0f, 0.0f, false, 1);
      check_gemm<cuda::bf16>(ctx, ta, tb, 1.0f, 0.0f, false, 1);
    }
}

TEST(CudaGemm, AlphaBetaAndAccumulationMatchCpu) {
  PGOLF_REQUIRE_GPU();
  cuda::Context ctx;
  check_gemm<float>(ctx, false, true, 0.5f, -1.5f, false, 1);      // C != D
  check_gemm<cuda::bf16>(ctx, true, false, 2.0315f, -4.775f, false, 1);
  check_gemm<float>(ctx, true, false, 1.0f, 1.0f, true, 1);        // D += AB in place
  check_gemm<cuda::bf16>(ctx, false, false, 1.0f, 1.0f, true, 1);
}

TEST(CudaGemm, StridedBatchMatchesCpu) {
  PGOLF_REQUIRE_GPU();
  cuda::Context ctx;
  check_gemm<float>(ctx, false, true, 1.0f, 0.0f, false, 3);
  check_gemm<cuda::bf16>(ctx, true, true, 1.0f, 3.4445f, false, 3);
}

// linear_forward (fresh and accumulated) and linear_backward (dx in bf16, dW in fp32, both
// accumulated) against the CPU's linear layer.
TEST(CudaGemm, LinearMatchesCpu) {
  PGOLF_REQUIRE_GPU();
  cuda::Context ctx;
  const int64_t n = 33, in = 40, out = 24;
  const auto x = random_bf16_values(n * in, 1), w = random_bf16_values(out * in, 2);
  const auto y0 = random_bf16_values(n * out, 3), g = random_bf16_values(n * out, 4);
  const auto dx0 = random_bf16_values(n * in, 5);
  const auto dw0 = random_floats(out * in, 6);
  const auto xd = as_double(x), wd = as_double(w), gd = as_double(g);
  std::vector<double> y(n * out), y_acc = as_double(y0), dx = as_double(dx0), dw = as_double(dw0);
  pgolf::cpu::linear_forward<double>(xd.data(), wd.data(), y.data(), n, in, out);
  pgolf::cpu::linear_forward<double>(xd.data(), wd.data(), y_acc.data(), n, in, out, true);
  pgolf::cpu::linear_backward<double>(gd.data(), xd.data(), wd.data(), dx.data(), dw.data(), n,
                                      in, out);

  auto d_x = upload_bf16(ctx, x), d_w = upload_bf16(ctx, w), d_g = upload_bf16(ctx, g);
  cuda::DeviceBuffer<float> d_y(n * out);
  cuda::linear_forward<float>(ctx, d_x.data(), d_w.data(), d_y.data(), n, in, out);
  expect_close(download(ctx, d_y), y, 1e-5, 1e-5, "y (fp32)");
  auto d_y_acc = upload_bf16(ctx, y0);
  cuda::linear_forward<cuda::bf16>(ctx, d_x.data(), d_w.data(), d_y_acc.data(), n, in, out, true);
  expect_close(download_floats(ctx, d_y_acc), y_acc, kBf16Rounding, 1e-5, "y (bf16, accumulated)");
  auto d_dx = upload_bf16(ctx, dx0);
  auto d_dw = upload(ctx, dw0);
  cuda::linear_backward(ctx, d_g.data(), d_x.data(), d_w.data(), d_dx.data(), d_dw.data(), n, in,
                        out);
  expect_close(download_floats(ctx, d_dx), dx, kBf16Rounding, 1e-5, "dx");
  expect_close(download(ctx, d_dw), dw, 1e-5, 1e-5, "dW");
}

}  // namespace
