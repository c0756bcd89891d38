// CUDA element-wise ops (kernels/cuda/elementwise.h) against the CPU kernels (in double) on
// the same bf16 inputs. Tolerances: forward outputs and activation gradients are one fp32
// expression rounded once to bf16 (2^-8 relative, floor 1e-6 of the scale; 1e-5 for
// head_gate's dlogit, an fp32 dot of hd terms that may cancel); parameter gradients (dmix,
// dscale, dlam, dgain, dbias) are sums of up to ~21600 terms in fp32 partials and a double
// total against the CPU's double sum (1e-5 relative, floor 1e-5 of the scale); the casts are
// exact (round to nearest even one way, widening the other). Running a backward again with
// only the parameter gradient gives the same bits (the sums are deterministic). add_into is
// the CPU's axpy with coefficient 1 up to one bf16 rounding, and exactly the host's
// bf16(float(dst) + float(src)); fill is exact.
#include <gtest/gtest.h>

#include <utility>
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

// The scale arguments of scaled_add: per channel and a scalar.
const int64_t kScaleDims[] = {kD, 1};

// (H, hd): head dims below and above the warp width (head_gate's backward runs a warp per head).
const std::pair<int64_t, int64_t> kHeads[] = {{4, 18}, {2, 40}};

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
  cuda::resid_mix_backward(ctx, d_g.data(), d_x.data(), d_x0.data(), d_mix.data(), nullptr, nullptr,
                           d_dmix2.data(), kRows, kD);
  EXPECT_EQ(download(ctx, d_dmix2), dmix_gpu);
  auto d_dx2 = upload_bf16(ctx, dx0);
  cuda::resid_mix_backward(ctx, d_g.data(), d_x.data(), d_x0.data(), d_mix.data(), d_dx2.data(),
                           nullptr, nullptr, kRows, kD);
  EXPECT_EQ(download_floats(ctx, d_dx2), download_floats(ctx, d_dx));
}

TEST(CudaElementwise, ScaledAddForwardMatchesCpu) {
  PGOLF_REQUIRE_GPU();
  cuda::Context ctx;
  for (int64_t scale_dim : kScaleDims) {
    SCOPED_TRACE(testing::Message() << "scale_dim " << scale_dim);
    const auto x = random_bf16_values(kRows * kD, 1), delta = random_bf16_values(kRows * kD, 2);
    const auto scale = random_floats(scale_dim, 3);
    const auto xd = as_double(x), dd = as_double(delta), sd = as_double(scale);
    std::vector<double> out(kRows * kD);
    pgolf::cpu::scaled_add_forward(xd.data(), dd.data(), sd.data(), out.data(), kRows, kD,
                                   scale_dim);

    auto d_x = upload_bf16(ctx, x), d_delta = upload_bf16(ctx, delta);
    auto d_scale = upload(ctx, scale);
    cuda::DeviceBuffer<cuda::bf16> d_out(kRows * kD);
    cuda::scaled_add_forward(ctx, d_x.data(), d_delta.data(), d_scale.data(), d_out.data(), kRows,
                             kD, scale_dim);
    expect_close(download_floats(ctx, d_out), out, kBf16Rounding, 1e-6, "out");

    // In place (out aliasing x) gives the same bits.
    cuda::scaled_add_forward(ctx, d_x.data(), d_delta.data(), d_scale.data(), d_x.data(), kRows, kD,
                             scale_dim);
    EXPECT_EQ(download_floats(ctx, d_x), download_floats(ctx, d_out));
  }
}

TEST(CudaElementwise, ScaledAddBackwardMatchesCpu) {
  PGOLF_REQUIRE_GPU();
  cuda::Context ctx;
  for (int64_t scale_dim : kScaleDims) {
    SCOPED_TRACE(testing::Message() << "scale_dim " << scale_dim);
    const auto g = random_bf16_values(kRows * kD, 1), delta = random_bf16_values(kRows * kD, 2);
    const auto scale = random_floats(scale_dim, 3);
    const auto dx0 = random_bf16_values(kRows * kD, 4), ddelta0 = random_bf16_values(kRows * kD, 5);
    const auto dscale0 = random_floats(scale_dim, 6);  // every gradient accumulates
    const auto gd = as_double(g), dd = as_double(delta), sd = as_double(scale);
    std::vector<double> dx = as_double(dx0), ddelta = as_double(ddelta0),
                        dscale = as_double(dscale0);
    pgolf::cpu::scaled_add_backward(gd.data(), dd.data(), sd.data(), dx.data(), ddelta.data(),
                                    dscale.data(), kRows, kD, scale_dim);

    auto d_g = upload_bf16(ctx, g), d_delta = upload_bf16(ctx, delta);
    auto d_dx = upload_bf16(ctx, dx0), d_ddelta = upload_bf16(ctx, ddelta0);
    auto d_scale = upload(ctx, scale), d_dscale = upload(ctx, dscale0);
    cuda::scaled_add_backward(ctx, d_g.data(), d_delta.data(), d_scale.data(), d_dx.data(),
                              d_ddelta.data(), d_dscale.data(), kRows, kD, scale_dim);
    expect_close(download_floats(ctx, d_dx), dx, kBf16Rounding, 1e-6, "dx");
    expect_close(download_floats(ctx, d_ddelta), ddelta, kBf16Rounding, 1e-6, "ddelta");
    const std::vector<float> dscale_gpu = download(ctx, d_dscale);
    expect_close(dscale_gpu, dscale, 1e-5, 1e-5, "dscale");

    auto d_dscale2 = upload(ctx, dscale0);
    cuda::scaled_add_backward(ctx, d_g.data(), d_delta.data(), d_scale.data(), nullptr, nullptr,
                              d_dscale2.data(), kRows, kD, scale_dim);
    EXPECT_EQ(download(ctx, d_dscale2), dscale_gpu);
  }
}

TEST(CudaElementwise, Mix2MatchesCpu) {
  PGOLF_REQUIRE_GPU();
  cuda::Context ctx;
  const int64_t n = kRows * kD + 5;  // not a multiple of the flat sum's 32 columns
  const auto a = random_bf16_values(n, 1), b = random_bf16_values(n, 2);
  const auto g = random_bf16_values(n, 3), lam = random_floats(2, 4);
  const auto da0 = random_bf16_values(n, 5), db0 = random_bf16_values(n, 6);
  const auto dlam0 = random_floats(2, 7);
  const auto ad = as_double(a), bd = as_double(b), gd = as_double(g), lamd = as_double(lam);
  std::vector<double> out(n), da = as_double(da0), db = as_double(db0), dlam = as_double(dlam0);
  pgolf::cpu::mix2_forward(ad.data(), bd.data(), lamd.data(), out.data(), n);
  pgolf::cpu::mix2_backward(gd.data(), ad.data(), bd.data(), lamd.data(), da.data(), db.data(),
                            dlam.data(), n);

  auto d_a = upload_bf16(ctx, a), d_b = upload_bf16(ctx, b), d_g = upload_bf16(ctx, g);
  auto d_lam = upload(ctx, lam), d_dlam = upload(ctx, dlam0);
  auto d_da = upload_bf16(ctx, da0), d_db = upload_bf16(ctx, db0);
  cuda::DeviceBuffer<cuda::bf16> d_out(n);
  cuda::mix2_forward(ctx, d_a.data(), d_b.data(), d_lam.data(), d_out.data(), n);
  expect_close(download_floats(ctx, d_out), out, kBf16Rounding, 1e-6, "out");
  cuda::mix2_backward(ctx, d_g.data(), d_a.data(), d_b.data(), d_lam.data(), d_da.data(),
                      d_db.data(), d_dlam.data(), n);
  expect_close(download_floats(ctx, d_da), da, kBf16Rounding, 1e-6, "da");
  expect_close(download_floats(ctx, d_db), db, kBf16Rounding, 1e-6, "db");
  const std::vector<float> dlam_gpu = download(ctx, d_dlam);
  expect_close(dlam_gpu, dlam, 1e-5, 1e-5, "dlam");

  auto d_dlam2 = upload(ctx, dlam0);
  cuda::mix2_backward(ctx, d_g.data(), d_a.data(), d_b.data(), d_lam.data(), nullptr, nullptr,
                      d_dlam2.data(), n);
  EXPECT_EQ(download(ctx, d_dlam2), dlam_gpu);
}

TEST(CudaElementwise, HeadScaleMatchesCpu) {
  PGOLF_REQUIRE_GPU();
  cuda::Context ctx;
  for (auto [H, hd] : kHeads) {
    SCOPED_TRACE(testing::Message() << H << " heads of " << hd);
    const int64_t n = kRows * H * hd;
    const auto x = random_bf16_values(n, 1), g = random_bf16_values(n, 2);
    const auto gain = random_floats(H, 3), dx0 = random_bf16_values(n, 4);
    const auto dgain0 = random_floats(H, 5);
    const auto xd = as_double(x), gd = as_double(g), gaind = as_double(gain);
    std::vector<double> out(n), dx = as_double(dx0), dgain = as_double(dgain0);
    pgolf::cpu::head_scale_forward(xd.data(), gaind.data(), out.data(), kRows, H, hd);
    pgolf::cpu::head_scale_backward(gd.data(), xd.data(), gaind.data(), dx.data(), dgain.data(),
                                    kRows, H, hd);

    auto d_x = upload_bf16(ctx, x), d_g = upload_bf16(ctx, g), d_dx = upload_bf16(ctx, dx0);
    auto d_gain = upload(ctx, gain), d_dgain = upload(ctx, dgain0);
    cuda::DeviceBuffer<cuda::bf16> d_out(n);
    cuda::head_scale_forward(ctx, d_x.data(), d_gain.data(), d_out.data(), kRows, H, hd);
    expect_close(download_floats(ctx, d_out), out, kBf16Rounding, 1e-6, "out");
    cuda::head_scale_backward(ctx, d_g.data(), d_x.data(), d_gain.data(), d_dx.data(),
                              d_dgain.data(), kRows, H, hd);
    expect_close(download_floats(ctx, d_dx), dx, kBf16Rounding, 1e-6, "dx");
    const std::vector<float> dgain_gpu = download(ctx, d_dgain);
    expect_close(dgain_gpu, dgain, 1e-5, 1e-5, "dgain");

    auto d_dgain2 = upload(ctx, dgain0);
    cuda::head_scale_backward(ctx, d_g.data(), d_x.data(), d_gain.data(), nullptr, d_dgain2.data(),
                              kRows, H, hd);
    EXPECT_EQ(download(ctx, d_dgain2), dgain_gpu);
  }
}

TEST(CudaElementwise, HeadGateMatchesCpu) {
  PGOLF_REQUIRE_GPU();
  cuda::Context ctx;
  for (auto [H, hd] : kHeads) {
    SCOPED_TRACE(testing::Message() << H << " heads of " << hd);
    const int64_t n = kRows * H * hd;
    const auto y = random_bf16_values(n, 1), g = random_bf16_values(n, 2);
    const auto logit = random_bf16_values(kRows * H, 3, 3.0);  // both branches of the sigmoid
    const auto dy0 = random_bf16_values(n, 4), dlogit0 = random_bf16_values(kRows * H, 5);
    const auto yd = as_double(y), gd = as_double(g), ld = as_double(logit);
    std::vector<double> out(n), dy = as_double(dy0), dlogit = as_double(dlogit0);
    pgolf::cpu::head_gate_forward(yd.data(), ld.data(), out.data(), kRows, H, hd);
    pgolf::cpu::head_gate_backward(gd.data(), yd.data(), ld.data(), dy.data(), dlogit.data(), kRows,
                                   H, hd);

    auto d_y = upload_bf16(ctx, y), d_g = upload_bf16(ctx, g), d_logit = upload_bf16(ctx, logit);
    auto d_dy = upload_bf16(ctx, dy0), d_dlogit = upload_bf16(ctx, dlogit0);
    cuda::DeviceBuffer<cuda::bf16> d_out(n);
    cuda::head_gate_forward(ctx, d_y.data(), d_logit.data(), d_out.data(), kRows, H, hd);
    expect_close(download_floats(ctx, d_out), out, kBf16Rounding, 1e-6, "out");
    cuda::head_gate_backward(ctx, d_g.data(), d_y.data(), d_logit.data(), d_dy.data(),
                             d_dlogit.data(), kRows, H, hd);
    expect_close(download_floats(ctx, d_dy), dy, kBf16Rounding, 1e-6, "dy");
    expect_close(download_floats(ctx, d_dlogit), dlogit, kBf16Rounding, 1e-5, "dlogit");
  }
}

TEST(CudaElementwise, BiasAddMatchesCpu) {
  PGOLF_REQUIRE_GPU();
  cuda::Context ctx;
  const auto x = random_bf16_values(kRows * kD, 1), g = random_bf16_values(kRows * kD, 2);
  const auto bias = random_floats(kD, 3), dbias0 = random_floats(kD, 4);
  std::vector<double> out = as_double(x), dbias = as_double(dbias0);
  const auto bd = as_double(bias), gd = as_double(g);
  pgolf::cpu::bias_add_forward(out.data(), bd.data(), kRows, kD);
  pgolf::cpu::bias_add_backward(gd.data(), dbias.data(), kRows, kD);

  auto d_out = upload_bf16(ctx, x), d_g = upload_bf16(ctx, g);
  auto d_bias = upload(ctx, bias), d_dbias = upload(ctx, dbias0);
  cuda::bias_add_forward(ctx, d_out.data(), d_bias.data(), kRows, kD);
  expect_close(download_floats(ctx, d_out), out, kBf16Rounding, 1e-6, "out");
  cuda::bias_add_backward(ctx, d_g.data(), d_dbias.data(), kRows, kD);
  expect_close(download(ctx, d_dbias), dbias, 1e-5, 1e-5, "dbias");
}

// dst at 40 times src's scale: most sums are exact in fp32 but not in bf16, so the one
// rounding is exercised.
TEST(CudaElementwise, AddIntoMatchesCpu) {
  PGOLF_REQUIRE_GPU();
  cuda::Context ctx;
  const int64_t n = kRows * kD;
  const auto src = random_bf16_values(n, 1), dst0 = random_bf16_values(n, 2, 40.0);
  std::vector<double> want = as_double(dst0);
  const std::vector<double> srcd = as_double(src);
  pgolf::cpu::axpy(n, 1.0, srcd.data(), want.data());
  std::vector<float> exact(dst0.size());
  for (size_t i = 0; i < exact.size(); ++i) exact[i] = bf16_round(dst0[i] + src[i]);

  auto d_src = upload_bf16(ctx, src), d_dst = upload_bf16(ctx, dst0);
  cuda::add_into(ctx, d_src.data(), d_dst.data(), n);
  const std::vector<float> got = download_floats(ctx, d_dst);
  expect_close(got, want, kBf16Rounding, 1e-6, "dst");
  EXPECT_EQ(got, exact);
  EXPECT_EQ(download_floats(ctx, d_src), src);  // src is only read
  EXPECT_THROW(cuda::add_into(ctx, d_dst.data(), d_dst.data(), n), pgolf::Error);
}

TEST(CudaElementwise, FillWritesEveryElement) {
  PGOLF_REQUIRE_GPU();
  cuda::Context ctx;
  const int64_t n = 70001;  // many blocks, the last one partial
  cuda::DeviceBuffer<float> d(n + 1);
  cuda::fill(ctx, d.data(), -0.375f, n);
  std::vector<float> want(size_t(n), -0.375f);
  want.push_back(0.0f);  // past n: untouched
  EXPECT_EQ(download(ctx, d), want);
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
