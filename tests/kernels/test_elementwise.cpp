// Element-wise residual-stream ops (SPEC §2, Block and Layers): forward against the formula,
// every differentiable input by finite differences, accumulation into pre-filled buffers.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <functional>
#include <vector>

#include "kernels/cpu/elementwise.h"
#include "support/gradcheck.h"

namespace {

using pgolf::test::GradInput;
using pgolf::test::random_vector;
namespace cpu = pgolf::cpu;

// rows 7, d 21: the parameter reductions span two column blocks.
constexpr int64_t kRows = 7, kD = 21, kH = 3, kHd = 7;  // kH * kHd == kD

template <typename T>
std::vector<T> cast(const std::vector<double>& v) {
  return std::vector<T>(v.begin(), v.end());
}

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// Runs `backward(grads)` twice, into zeroed buffers and into random pre-filled ones, and
// expects the second to equal the prefill plus the first.
void expect_accumulates(const std::vector<int64_t>& sizes,
                        const std::function<void(std::vector<std::vector<double>>&)>& backward) {
  std::vector<std::vector<double>> fresh, filled;
  for (size_t k = 0; k < sizes.size(); ++k) {
    fresh.emplace_back(sizes[k], 0.0);
    filled.push_back(random_vector(sizes[k], 100 + k));
  }
  const auto pre = filled;
  backward(fresh);
  backward(filled);
  for (size_t k = 0; k < sizes.size(); ++k)
    for (int64_t i = 0; i < sizes[k]; ++i)
      EXPECT_NEAR(filled[k][i], pre[k][i] + fresh[k][i], 1e-12) << "grad " << k << " elem " << i;
}

// ---- resid_mix: out = mix0 x + mix1 x0 ----

template <typename T>
void check_resid_mix_forward(double tol) {
  auto x = random_vector(kRows * kD, 1), x0 = random_vector(kRows * kD, 2),
       mix = random_vector(2 * kD, 3);
  auto xt = cast<T>(x), x0t = cast<T>(x0), mt = cast<T>(mix);
  std::vector<T> out(kRows * kD);
  cpu::resid_mix_forward(xt.data(), x0t.data(), mt.data(), out.data(), kRows, kD);
  for (int64_t r = 0; r < kRows; ++r)
    for (int64_t c = 0; c < kD; ++c) {
      const int64_t i = r * kD + c;
      EXPECT_NEAR(out[i], double(mt[c]) * xt[i] + double(mt[kD + c]) * x0t[i], tol) << i;
    }
}
TEST(Elementwise, ResidMixForwardFloat) { check_resid_mix_forward<float>(1e-6); }
TEST(Elementwise, ResidMixForwardDouble) { check_resid_mix_forward<double>(1e-14); }

TEST(Elementwise, ResidMixGradCheck) {
  const int64_t n = kRows * kD;
  auto x = random_vector(n, 4), x0 = random_vector(n, 5), mix = random_vector(2 * kD, 6),
       w = random_vector(n, 7);
  std::vector<double> out(n), dx(n, 0.0), dx0(n, 0.0), dmix(2 * kD, 0.0);
  cpu::resid_mix_backward(w.data(), x.data(), x0.data(), mix.data(), dx.data(), dx0.data(),
                          dmix.data(), kRows, kD);
  pgolf::test::check_gradients({{"x", x.data(), dx.data(), n},
                                {"x0", x0.data(), dx0.data(), n},
                                {"mix", mix.data(), dmix.data(), 2 * kD}},
                               [&] {
                                 cpu::resid_mix_forward(x.data(), x0.data(), mix.data(), out.data(),
                                                        kRows, kD);
                                 return pgolf::test::dot(out, w);
                               });
}

TEST(Elementwise, ResidMixAccumulates) {
  const int64_t n = kRows * kD;
  auto x = random_vector(n, 8), x0 = random_vector(n, 9), mix = random_vector(2 * kD, 10),
       dout = random_vector(n, 11);
  expect_accumulates({n, n, 2 * kD}, [&](auto& g) {
    cpu::resid_mix_backward(dout.data(), x.data(), x0.data(), mix.data(), g[0].data(), g[1].data(),
                            g[2].data(), kRows, kD);
  });
}

// ---- scaled_add: out = x + scale ⊙ delta, scale per channel or scalar ----

template <typename T>
void check_scaled_add_forward(int64_t scale_dim, double tol) {
  auto x = random_vector(kRows * kD, 12), delta = random_vector(kRows * kD, 13),
       scale = random_vector(scale_dim, 14);
  auto xt = cast<T>(x), dt = cast<T>(delta), st = cast<T>(scale);
  std::vector<T> out(kRows * kD);
  cpu::scaled_add_forward(xt.data(), dt.data(), st.data(), out.data(), kRows, kD, scale_dim);
  for (int64_t r = 0; r < kRows; ++r)
    for (int64_t c = 0; c < kD; ++c) {
      const int64_t i = r * kD + c;
      EXPECT_NEAR(out[i], xt[i] + double(st[scale_dim == 1 ? 0 : c]) * dt[i], tol) << i;
    }
  // In place (out aliasing x).
  cpu::scaled_add_forward(xt.data(), dt.data(), st.data(), xt.data(), kRows, kD, scale_dim);
  for (int64_t i = 0; i < kRows * kD; ++i) EXPECT_EQ(xt[i], out[i]) << i;
}
TEST(Elementwise, ScaledAddForwardFloat) {
  check_scaled_add_forward<float>(kD, 1e-6);
  check_scaled_add_forward<float>(1, 1e-6);
}
TEST(Elementwise, ScaledAddForwardDouble) {
  check_scaled_add_forward<double>(kD, 1e-14);
  check_scaled_add_forward<double>(1, 1e-14);
}

void check_scaled_add_grad(int64_t scale_dim) {
  const int64_t n = kRows * kD;
  auto x = random_vector(n, 15), delta = random_vector(n, 16), scale = random_vector(scale_dim, 17),
       w = random_vector(n, 18);
  std::vector<double> out(n), dx(n, 0.0), ddelta(n, 0.0), dscale(scale_dim, 0.0);
  cpu::scaled_add_backward(w.data(), delta.data(), scale.data(), dx.data(), ddelta.data(),
                           dscale.data(), kRows, kD, scale_dim);
  pgolf::test::check_gradients({{"x", x.data(), dx.data(), n},
                                {"delta", delta.data(), ddelta.data(), n},
                                {"scale", scale.data(), dscale.data(), scale_dim}},
                               [&] {
                                 cpu::scaled_add_forward(x.data(), delta.data(), scale.data(),
                                                         out.data(), kRows, kD, scale_dim);
                                 return pgolf::test::dot(out, w);
                               });
}
TEST(Elementwise, ScaledAddGradCheckPerChannel) { check_scaled_add_grad(kD); }
TEST(Elementwise, ScaledAddGradCheckScalar) { check_scaled_add_grad(1); }

TEST(Elementwise, ScaledAddAccumulatesAndSkipsNullDx) {
  const int64_t n = kRows * kD;
  auto delta = random_vector(n, 19), dout = random_vector(n, 20);
  for (int64_t scale_dim : {kD, int64_t(1)}) {
    auto scale = random_vector(scale_dim, 21);
    expect_accumulates({n, n, scale_dim}, [&](auto& g) {
      cpu::scaled_add_backward(dout.data(), delta.data(), scale.data(), g[0].data(), g[1].data(),
                               g[2].data(), kRows, kD, scale_dim);
    });
    // dx null: the other gradients are unchanged.
    std::vector<double> dd1(n, 0.0), ds1(scale_dim, 0.0), dd2(n, 0.0), ds2(scale_dim, 0.0),
        dx(n, 0.0);
    cpu::scaled_add_backward(dout.data(), delta.data(), scale.data(), dx.data(), dd1.data(),
                             ds1.data(), kRows, kD, scale_dim);
    cpu::scaled_add_backward<double>(dout.data(), delta.data(), scale.data(), nullptr, dd2.data(),
                                     ds2.data(), kRows, kD, scale_dim);
    EXPECT_EQ(dd1, dd2);
    EXPECT_EQ(ds1, ds2);
  }
}

// ---- mix2: out = lam0 a + lam1 b ----

template <typename T>
void check_mix2_forward(double tol) {
  const int64_t n = 23;
  auto a = random_vector(n, 22), b = random_vector(n, 23), lam = random_vector(2, 24);
  auto at = cast<T>(a), bt = cast<T>(b), lt = cast<T>(lam);
  std::vector<T> out(n);
  cpu::mix2_forward(at.data(), bt.data(), lt.data(), out.data(), n);
  for (int64_t i = 0; i < n; ++i)
    EXPECT_NEAR(out[i], double(lt[0]) * at[i] + double(lt[1]) * bt[i], tol) << i;
}
TEST(Elementwise, Mix2ForwardFloat) { check_mix2_forward<float>(1e-6); }
TEST(Elementwise, Mix2ForwardDouble) { check_mix2_forward<double>(1e-14); }

TEST(Elementwise, Mix2GradCheck) {
  const int64_t n = 23;
  auto a = random_vector(n, 25), b = random_vector(n, 26), lam = random_vector(2, 27),
       w = random_vector(n, 28);
  std::vector<double> out(n), da(n, 0.0), db(n, 0.0), dlam(2, 0.0);
  cpu::mix2_backward(w.data(), a.data(), b.data(), lam.data(), da.data(), db.data(), dlam.data(),
                     n);
  pgolf::test::check_gradients({{"a", a.data(), da.data(), n},
                                {"b", b.data(), db.data(), n},
                                {"lam", lam.data(), dlam.data(), 2}},
                               [&] {
                                 cpu::mix2_forward(a.data(), b.data(), lam.data(), out.data(), n);
                                 return pgolf::test::dot(out, w);
                               });
}

TEST(Elementwise, Mix2Accumulates) {
  const int64_t n = 23;
  auto a = random_vector(n, 29), b = random_vector(n, 30), lam = random_vector(2, 31),
       dout = random_vector(n, 32);
  expect_accumulates({n, n, 2}, [&](auto& g) {
    cpu::mix2_backward(dout.data(), a.data(), b.data(), lam.data(), g[0].data(), g[1].data(),
                       g[2].data(), n);
  });
}

// ---- head_scale: out[r,h,:] = gain[h] x[r,h,:] ----

template <typename T>
void check_head_scale_forward(double tol) {
  auto x = random_vector(kRows * kD, 33), gain = random_vector(kH, 34);
  auto xt = cast<T>(x), gt = cast<T>(gain);
  std::vector<T> out(kRows * kD);
  cpu::head_scale_forward(xt.data(), gt.data(), out.data(), kRows, kH, kHd);
  for (int64_t r = 0; r < kRows; ++r)
    for (int64_t h = 0; h < kH; ++h)
      for (int64_t j = 0; j < kHd; ++j) {
        const int64_t i = (r * kH + h) * kHd + j;
        EXPECT_NEAR(out[i], double(gt[h]) * xt[i], tol) << i;
      }
}
TEST(Elementwise, HeadScaleForwardFloat) { check_head_scale_forward<float>(1e-6); }
TEST(Elementwise, HeadScaleForwardDouble) { check_head_scale_forward<double>(1e-14); }

TEST(Elementwise, HeadScaleGradCheck) {
  const int64_t n = kRows * kD;
  auto x = random_vector(n, 35), gain = random_vector(kH, 36), w = random_vector(n, 37);
  std::vector<double> out(n), dx(n, 0.0), dgain(kH, 0.0);
  cpu::head_scale_backward(w.data(), x.data(), gain.data(), dx.data(), dgain.data(), kRows, kH,
                           kHd);
  pgolf::test::check_gradients(
      {{"x", x.data(), dx.data(), n}, {"gain", gain.data(), dgain.data(), kH}}, [&] {
        cpu::head_scale_forward(x.data(), gain.data(), out.data(), kRows, kH, kHd);
        return pgolf::test::dot(out, w);
      });
}

TEST(Elementwise, HeadScaleAccumulates) {
  const int64_t n = kRows * kD;
  auto x = random_vector(n, 38), gain = random_vector(kH, 39), dout = random_vector(n, 40);
  expect_accumulates({n, kH}, [&](auto& g) {
    cpu::head_scale_backward(dout.data(), x.data(), gain.data(), g[0].data(), g[1].data(), kRows,
                             kH, kHd);
  });
}

// ---- head_gate: out[r,h,:] = sigmoid(logit[r,h]) y[r,h,:] ----

template <typename T>
void check_head_gate_forward(double tol) {
  auto y = random_vector(kRows * kD, 41), logit = random_vector(kRows * kH, 42, 3.0);
  auto yt = cast<T>(y), lt = cast<T>(logit);
  std::vector<T> out(kRows * kD);
  cpu::head_gate_forward(yt.data(), lt.data(), out.data(), kRows, kH, kHd);
  for (int64_t r = 0; r < kRows; ++r)
    for (int64_t h = 0; h < kH; ++h)
      for (int64_t j = 0; j < kHd; ++j) {
        const int64_t i = (r * kH + h) * kHd + j;
        EXPECT_NEAR(out[i], sigmoid(lt[r * kH + h]) * yt[i], tol) << i;
      }
}
TEST(Elementwise, HeadGateForwardFloat) { check_head_gate_forward<float>(1e-6); }
TEST(Elementwise, HeadGateForwardDouble) { check_head_gate_forward<double>(1e-14); }

TEST(Elementwise, HeadGateGradCheck) {
  const int64_t n = kRows * kD;
  auto y = random_vector(n, 43), logit = random_vector(kRows * kH, 44), w = random_vector(n, 45);
  std::vector<double> out(n), dy(n, 0.0), dlogit(kRows * kH, 0.0);
  cpu::head_gate_backward(w.data(), y.data(), logit.data(), dy.data(), dlogit.data(), kRows, kH,
                          kHd);
  pgolf::test::check_gradients(
      {{"y", y.data(), dy.data(), n}, {"logit", logit.data(), dlogit.data(), kRows * kH}}, [&] {
        cpu::head_gate_forward(y.data(), logit.data(), out.data(), kRows, kH, kHd);
        return pgolf::test::dot(out, w);
      });
}

TEST(Elementwise, HeadGateAccumulates) {
  const int64_t n = kRows * kD;
  auto y = random_vector(n, 46), logit = random_vector(kRows * kH, 47), dout = random_vector(n, 48);
  expect_accumulates({n, kRows * kH}, [&](auto& g) {
    cpu::head_gate_backward(dout.data(), y.data(), logit.data(), g[0].data(), g[1].data(), kRows,
                            kH, kHd);
  });
}

// ---- bias_add: out[r,:] += bias ----

template <typename T>
void check_bias_add_forward(double tol) {
  auto out0 = random_vector(kRows * kD, 49), bias = random_vector(kD, 50);
  auto out = cast<T>(out0), bt = cast<T>(bias);
  const auto before = out;
  cpu::bias_add_forward(out.data(), bt.data(), kRows, kD);
  for (int64_t r = 0; r < kRows; ++r)
    for (int64_t c = 0; c < kD; ++c)
      EXPECT_NEAR(out[r * kD + c], double(before[r * kD + c]) + bt[c], tol) << r << "," << c;
}
TEST(Elementwise, BiasAddForwardFloat) { check_bias_add_forward<float>(1e-6); }
TEST(Elementwise, BiasAddForwardDouble) { check_bias_add_forward<double>(1e-14); }

TEST(Elementwise, BiasAddGradCheck) {
  const int64_t n = kRows * kD;
  auto base = random_vector(n, 51), bias = random_vector(kD, 52), w = random_vector(n, 53);
  std::vector<double> out(n), dbias(kD, 0.0);
  cpu::bias_add_backward(w.data(), dbias.data(), kRows, kD);
  pgolf::test::check_gradients({{"bias", bias.data(), dbias.data(), kD}}, [&] {
    out = base;
    cpu::bias_add_forward(out.data(), bias.data(), kRows, kD);
    return pgolf::test::dot(out, w);
  });
}

TEST(Elementwise, BiasAddAccumulates) {
  auto dout = random_vector(kRows * kD, 54);
  expect_accumulates({kD},
                     [&](auto& g) { cpu::bias_add_backward(dout.data(), g[0].data(), kRows, kD); });
}

// ---- axpy and dot (dot spans several of its fixed chunks) ----

template <typename T>
void check_axpy_dot(double tol) {
  const int64_t n = 40001;
  auto x = random_vector(n, 55), y = random_vector(n, 56);
  auto xt = cast<T>(x), yt = cast<T>(y);
  double ref = 0;
  for (int64_t i = 0; i < n; ++i) ref += double(xt[i]) * yt[i];
  EXPECT_NEAR(cpu::dot(n, xt.data(), yt.data()), ref, 1e-9);
  const auto before = yt;
  cpu::axpy(n, T(-0.25), xt.data(), yt.data());
  for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(yt[i], double(before[i]) - 0.25 * xt[i], tol) << i;
}
TEST(Elementwise, AxpyDotFloat) { check_axpy_dot<float>(1e-6); }
TEST(Elementwise, AxpyDotDouble) { check_axpy_dot<double>(1e-14); }

// Parameter gradients reduce rows in a fixed order: bit-identical for any thread count.
TEST(Elementwise, ReductionsIndependentOfThreadCount) {
  const int64_t rows = 301, d = 53, n = rows * d;
  auto x = cast<float>(random_vector(n, 57)), x0 = cast<float>(random_vector(n, 58));
  auto mix = cast<float>(random_vector(2 * d, 59)), dout = cast<float>(random_vector(n, 60));
  auto run = [&](int threads) {
    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    std::vector<float> g(2 * d + 2, 0.0f), dx(n, 0.0f);
    cpu::resid_mix_backward<float>(dout.data(), x.data(), x0.data(), mix.data(), dx.data(), nullptr,
                                   g.data(), rows, d);
    cpu::mix2_backward<float>(dout.data(), x.data(), x0.data(), mix.data(), nullptr, nullptr,
                              g.data() + 2 * d, n);
    omp_set_num_threads(saved);
    return g;
  };
  const auto one = run(1);
  EXPECT_EQ(run(3), one);
  EXPECT_EQ(run(4), one);
}

}  // namespace
