// Post-training quantisation (SEEDS.md §1 "Quantisation and export"): torch.quantile,
// GPTQ-lite int-N rows, the int8 embedding path, the per-tensor policy and the round trip
// through dequantize_model; also the fp16 conversion in core/half.h it relies on.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <map>
#include <random>

#include "core/error.h"
#include "core/half.h"
#include "core/param_store.h"
#include "model/plan.h"
#include "quant/quantize.h"

using namespace pgolf;
using namespace pgolf::quant;

namespace {

std::vector<float> random_matrix(int64_t rows, int64_t cols, uint32_t seed, bool outliers) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  std::vector<float> w(rows * cols);
  for (float& x : w) x = normal(rng);
  if (outliers)
    for (int64_t r = 0; r < rows; ++r) w[r * cols + (r * 7) % cols] *= 12.0f;
  return w;
}

double row_mse(const std::vector<float>& a, const std::vector<float>& b, int64_t r, int64_t cols) {
  double e = 0;
  for (int64_t c = 0; c < cols; ++c) {
    const double d = double(a[r * cols + c]) - b[r * cols + c];
    e += d * d;
  }
  return e / double(cols);
}

double mse(const std::vector<float>& a, const std::vector<float>& b) {
  double e = 0;
  for (size_t i = 0; i < a.size(); ++i) e += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  return e / double(a.size());
}

}  // namespace

// ---- fp16 ----------------------------------------------------------------------

TEST(QuantHalf, EveryHalfRoundTripsAndKnownValuesRound) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue;  // nan
    ASSERT_EQ(float_to_half(half_to_float(uint16_t(h))), h) << h;
  }
  EXPECT_EQ(float_to_half(1.0f), 0x3c00);
  EXPECT_EQ(float_to_half(65504.0f), 0x7bff);
  EXPECT_EQ(float_to_half(65519.0f), 0x7bff);
  EXPECT_EQ(float_to_half(65520.0f), 0x7c00);               // ties to even → inf
  EXPECT_EQ(float_to_half(1.0f + 0x1p-11f), 0x3c00);        // tie → even
  EXPECT_EQ(float_to_half(1.0f + 3 * 0x1p-11f), 0x3c02);    // tie → even (up)
  EXPECT_EQ(float_to_half(0x1p-25f), 0x0000);               // half the smallest subnormal
  EXPECT_EQ(float_to_half(3 * 0x1p-25f), 0x0002);
  EXPECT_EQ(float_to_half(-0x1p-24f), 0x8001);
  EXPECT_EQ(float_to_half(0.02f), 0x251f);
  EXPECT_TRUE(std::isnan(half_to_float(float_to_half(NAN))));
}

// ---- quantile ------------------------------------------------------------------

TEST(QuantQuantile, MatchesTorchLinearInterpolation) {
  const float a[] = {4, 1, 3, 2};
  EXPECT_EQ(quantile(a, 4, 0.5f), 2.5f);
  EXPECT_EQ(quantile(a, 4, 0.0f), 1.0f);
  EXPECT_EQ(quantile(a, 4, 1.0f), 4.0f);
  // rank = float(0.9999) * 9 = 8.9990997..., so 9 + 0.9990997 * (10 - 9) in float.
  const float ten[] = {10, 9, 8, 7, 6, 5, 4, 3, 2, 1};
  EXPECT_FLOAT_EQ(quantile(ten, 10, 0.9999f), 9.9991f);
  EXPECT_NEAR(quantile(ten, 10, 0.9999f), 9.99909973f, 1e-6);
  const float one = 7.0f;
  EXPECT_EQ(quantile(&one, 1, 0.999f), 7.0f);
  EXPECT_THROW(quantile(a, 0, 0.5f), Error);
}

// ---- GPTQ-lite int-N rows --------------------------------------------------------

// Row 0 [0, 6.2]: clip p gives s = fp16(max(6.2 p / 31, 1/31)): 0x3265 (0.1998291) for
// p = 0.999 (q = 31, error 0.0053²) and 0x3266 (0.1999512) for p >= 0.9995 (q = 31, error
// 0.0015²), so s = 0x3266 (first chosen at p = 0.9995, the same scale as the row max).
// Row 1 [0.02, -0.016]: max / 31 is below 1/31, so s = fp16(1/31) = 0x2821 for every p and
// q = [round(0.62), round(-0.496)] = [1, 0].
TEST(QuantIntRows, HandWorkedSmallMatrix) {
  const float w[] = {0.0f, 6.2f, 0.02f, -0.016f};
  const QTensor t = quantize_int_rows("m", w, 2, 2, 6, false);
  EXPECT_EQ(t.scheme, Scheme::kIntRows);
  EXPECT_EQ(t.bits, 6);
  EXPECT_EQ(t.shape, (Shape{2, 2}));
  EXPECT_EQ(t.scales, (std::vector<uint16_t>{0x3266, 0x2821}));
  EXPECT_EQ(t.q, (std::vector<int8_t>{0, 31, 1, 0}));
  const std::vector<float> d = dequantize(t);
  EXPECT_EQ(d[1], 31.0f * 0.199951171875f);
  EXPECT_EQ(d[2], half_to_float(0x2821));
  // Per row gives the same here: row 1 has one candidate value, row 0 picks 0x3266.
  const QTensor r = quantize_int_rows("m", w, 2, 2, 6, true);
  EXPECT_EQ(r.scales, t.scales);
  EXPECT_EQ(r.q, t.q);
}

// 999 values of ±1 and one of 1.1: the row max gives s = fp16(1.1 / 31) = 0.0354919 and
// every ±1 lands on ±28 · s = ±0.99377 (MSE 3.9e-5), while the 0.999 quantile (rank 998.001,
// clip 1.0001) gives s = fp16(1/31) with ±1 → ±31 · s ≈ ±0.99997 and only the 1.1 clipped
// to 0.99997 (MSE 1.0e-5): GPTQ-lite keeps the clipped candidate.
TEST(QuantIntRows, PicksAClipBelowTheRowMaxWhenItIsBetter) {
  std::vector<float> w(1000);
  for (int i = 0; i < 1000; ++i) w[i] = i % 2 ? -1.0f : 1.0f;
  w[3] = 1.1f;
  const QTensor t = quantize_int_rows("m", w.data(), 1, 1000, 6, false);
  EXPECT_EQ(t.scales[0], float_to_half(float(1.0 / 31)));
  EXPECT_NE(t.scales[0], float_to_half(1.1f / 31.0f));
  EXPECT_EQ(t.q[0], 31);
  EXPECT_EQ(t.q[1], -31);
  EXPECT_EQ(t.q[3], 31);
}

TEST(QuantIntRows, RoundsHalfToEvenAndFloorsTheScaleAtOneOver31) {
  const float s = half_to_float(float_to_half(float(1.0 / 31)));  // 1057 / 32768
  const float w[] = {0.5f * s, 1.5f * s, 2.5f * s, 3.5f * s, -2.5f * s, -0.5f * s};
  const QTensor t = quantize_int_rows("m", w, 1, 6, 6, false);
  EXPECT_EQ(t.scales[0], float_to_half(float(1.0 / 31)));
  EXPECT_EQ(t.q, (std::vector<int8_t>{0, 2, 2, 4, -2, 0}));
}

TEST(QuantIntRows, ValuesStayWithinTheClipRange) {
  for (int bits : {4, 6, 8}) {
    const int range = (1 << (bits - 1)) - 1;
    std::vector<float> w = random_matrix(16, 200, 3, true);
    w[5] = 1e4f;  // a huge outlier; and rows of large values
    for (int64_t c = 0; c < 200; ++c) w[200 + c] = (c % 2 ? -1.0f : 1.0f) * (5.0f + c);
    for (bool per_row : {false, true}) {
      const QTensor t = quantize_int_rows("m", w.data(), 16, 200, bits, per_row);
      int lo = 0, hi = 0;
      for (int8_t q : t.q) lo = std::min<int>(lo, q), hi = std::max<int>(hi, q);
      EXPECT_GE(lo, -range);
      EXPECT_LE(hi, range);
      EXPECT_EQ(hi, range);   // the row max maps to the top of the grid
      EXPECT_EQ(lo, -range);  // never -(range + 1)
    }
  }
  EXPECT_THROW(quantize_int_rows("m", nullptr, 1, 1, 1, false), Error);
  EXPECT_THROW(quantize_int_rows("m", nullptr, 1, 1, 9, false), Error);
}

TEST(QuantIntRows, ErrorNoLargerThanClippingAtTheRowMax) {
  const int64_t rows = 32, cols = 256;
  for (bool outliers : {false, true}) {
    const std::vector<float> w = random_matrix(rows, cols, 11, outliers);
    // The clip = 1.0 candidate alone, written out.
    std::vector<float> amax(w.size());
    for (int64_t r = 0; r < rows; ++r) {
      float m = 0;
      for (int64_t c = 0; c < cols; ++c) m = std::max(m, std::fabs(w[r * cols + c]));
      const float s = half_to_float(float_to_half(std::max(m / 31.0f, float(1.0 / 31))));
      for (int64_t c = 0; c < cols; ++c)
        amax[r * cols + c] =
            std::clamp(std::nearbyint(w[r * cols + c] / s), -31.0f, 31.0f) * s;
    }
    const std::vector<float> d = dequantize(quantize_int_rows("m", w.data(), rows, cols, 6, false));
    EXPECT_LE(mse(w, d), mse(w, amax));
  }
}

TEST(QuantIntRows, PerRowClipNeverWorsePerRow) {
  const int64_t rows = 24, cols = 300;
  const std::vector<float> w = random_matrix(rows, cols, 5, true);
  const auto tensor = dequantize(quantize_int_rows("m", w.data(), rows, cols, 6, false));
  const auto per_row = dequantize(quantize_int_rows("m", w.data(), rows, cols, 6, true));
  for (int64_t r = 0; r < rows; ++r)
    EXPECT_LE(row_mse(w, per_row, r, cols), row_mse(w, tensor, r, cols)) << "row " << r;
  EXPECT_LE(mse(w, per_row), mse(w, tensor));
}

// ---- int8 rows ---------------------------------------------------------------------

// [1.27, -0.5, 0]: clip = quantile(|w|, 0.9999984) = 1.27 - 0.77 * (1 - 0.9999968) ≈ 1.2699975;
// s = clip / 127 ≈ 0.01 (float), q = [127, -50, 0], stored scale fp16(s) = 0x211f.
// Row 1 [0.001, 0]: s floors at 1/127, q = round(0.127) = 0.
TEST(QuantInt8Rows, HandWorked) {
  const float w[] = {1.27f, -0.5f, 0.0f, 0.001f, 0.0f, -0.004f};
  const QTensor t = quantize_int8_rows("e", w, 2, 3);
  EXPECT_EQ(t.bits, 8);
  EXPECT_EQ(t.q, (std::vector<int8_t>{127, -50, 0, 0, 0, -1}));
  EXPECT_EQ(t.scales, (std::vector<uint16_t>{0x211f, float_to_half(float(1.0 / 127))}));
}

TEST(QuantInt8Rows, ClipsTheOutlierAtTheQuantile) {
  std::vector<float> w(2000, 0.0f);
  for (int i = 0; i < 2000; ++i) w[i] = float(i % 100) / 100.0f;
  w[17] = 50.0f;  // one outlier in a row of 2000
  const QTensor t = quantize_int8_rows("e", w.data(), 1, 2000);
  std::vector<float> absw(w);
  for (float& x : absw) x = std::fabs(x);
  const float clip = quantile(absw.data(), 2000, kInt8ClipQuantile);
  EXPECT_LT(clip, 50.0f);
  const float s = std::max(clip / 127.0f, float(1.0 / 127));
  EXPECT_EQ(t.scales[0], float_to_half(s));
  EXPECT_EQ(t.q[17], 127);
  EXPECT_EQ(t.q[99], int8_t(std::nearbyint(0.99f / s)));
}

// ---- policy and round trip ---------------------------------------------------------

namespace {

ModelConfig policy_config() {
  ModelConfig c;
  c.vocab_size = 1100;  // tok_emb / lm_head: 1100 x 64 = 70,400 > 65,536 → int8
  c.num_layers = 2;
  c.layer_schedule = {0, 1, 1};
  c.model_dim = 64;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.tie_embeddings = false;
  c.bigram_vocab_size = 9;
  c.bigram_dim = 8;
  c.ve_enabled = true;
  c.ve_dim = 8;
  c.ve_layers = {2};
  c.value_residual = true;
  c.gated_attention = true;
  return c;
}

struct PolicyModel {
  ModelPlan plan = make_plan(policy_config());
  std::vector<float> values;
  PolicyModel() : values(plan.layout.total(), 0.0f) {
    std::mt19937 rng(9);
    std::normal_distribution<float> normal(0.0f, 0.3f);
    for (float& x : values) x = normal(rng);
  }
  const QTensor& find(const std::vector<QTensor>& q, const std::string& name) const {
    for (const QTensor& t : q)
      if (t.name == name) return t;
    throw Error("missing " + name);
  }
};

}  // namespace

// The reference's order: every tensor of this narrow model but tok_emb / lm_head has at
// most 65,536 elements and passes through as fp16, control tensors included.
TEST(QuantPolicy, SmallTensorsPassThroughAsFp16First) {
  PolicyModel m;
  const auto q = quantize_model(m.plan, m.values.data());
  ASSERT_EQ(q.size(), m.plan.layout.infos().size());
  for (const ParamInfo& p : m.plan.layout.infos()) {
    const QTensor& t = m.find(q, p.name);
    const bool embedding = p.name == "tok_emb.weight" || p.name == "lm_head.weight";
    EXPECT_EQ(t.scheme, embedding ? Scheme::kIntRows : Scheme::kF16) << p.name;
    EXPECT_EQ(t.bits, embedding ? 8 : 0) << p.name;
  }
}

// With no small-tensor rule, every other rule shows.
TEST(QuantPolicy, AssignsEachTensorItsCategory) {
  PolicyModel m;
  QuantOptions opt;
  opt.mlp_bits = 5;
  opt.passthrough_max_elements = 0;
  const auto q = quantize_model(m.plan, m.values.data(), opt);
  ASSERT_EQ(q.size(), m.plan.layout.infos().size());
  for (const ParamInfo& p : m.plan.layout.infos()) EXPECT_EQ(m.find(q, p.name).shape, p.shape);

  auto expect = [&](const std::string& name, Scheme scheme, int bits) {
    const QTensor& t = m.find(q, name);
    EXPECT_EQ(t.scheme, scheme) << name;
    EXPECT_EQ(t.bits, bits) << name;
  };
  for (int p = 0; p < 2; ++p) {
    const std::string b = "blocks." + std::to_string(p) + ".";
    for (const char* n : {"attn.c_q.weight", "attn.c_k.weight", "attn.c_v.weight", "attn.proj.weight"})
      expect(b + n, Scheme::kIntRows, 6);
    expect(b + "mlp.fc.weight", Scheme::kIntRows, 5);
    expect(b + "mlp.proj.weight", Scheme::kIntRows, 5);
  }
  expect("tok_emb.weight", Scheme::kIntRows, 8);
  expect("lm_head.weight", Scheme::kIntRows, 8);
  expect("bigram.embed.weight", Scheme::kIntRows, 8);
  expect("bigram.proj.weight", Scheme::kIntRows, 8);
  expect("ve_shared.embed.weight", Scheme::kIntRows, 8);
  for (const char* n : {"bigram.scale", "smear.gate", "skip_weights", "ve_shared.scale",
                        "ve_layer_scales.0", "blocks.2.attn_scale", "blocks.2.mlp_scale",
                        "blocks.2.resid_mix", "blocks.2.attn.q_gain",
                        "blocks.1.attn.attn_gate.weight", "blocks.1.attn.attn_gate.bias",
                        "blocks.2.attn.vr_lambda"})
    expect(n, Scheme::kF32, 0);
}

TEST(QuantPolicy, DequantizeModelPutsPassthroughTensorsBack) {
  PolicyModel m;
  for (int64_t small : {int64_t(65536), int64_t(0)}) {  // fp16 + int8; then f32 + int6 + int8
    QuantOptions opt;
    opt.passthrough_max_elements = small;
    const auto q = quantize_model(m.plan, m.values.data(), opt);
    std::vector<float> out(m.values.size(), 0.0f);
    dequantize_model(q, m.plan, out.data());
    for (const ParamInfo& p : m.plan.layout.infos()) {
      const QTensor& t = m.find(q, p.name);
      const float* x = m.values.data() + p.offset;
      const float* y = out.data() + p.offset;
      if (t.scheme == Scheme::kF32) {
        EXPECT_EQ(std::memcmp(x, y, p.numel * sizeof(float)), 0) << p.name;
      } else if (t.scheme == Scheme::kF16) {
        for (int64_t i = 0; i < p.numel; ++i)
          ASSERT_EQ(std::bit_cast<uint32_t>(y[i]), std::bit_cast<uint32_t>(round_to_half(x[i])))
              << p.name;
      } else {
        const std::vector<float> d = dequantize(t);
        EXPECT_EQ(std::memcmp(d.data(), y, p.numel * sizeof(float)), 0) << p.name;
        const int range = (1 << (t.bits - 1)) - 1;
        for (int64_t r = 0; r < p.shape[0]; ++r) {  // reconstruction within about half a step
          const float s = half_to_float(t.scales[r]);
          for (int64_t c = 0; c < p.shape[1]; ++c) {
            const float v = x[r * p.shape[1] + c];
            // int8 rounds with the float scale and stores it in fp16: allow 127 fp16 ulps.
            if (std::fabs(v) <= (range - 1) * s) {
              ASSERT_LE(std::fabs(v - y[r * p.shape[1] + c]), 0.5f * s + range * s * 0x1p-11f)
                  << p.name;
            }
          }
        }
      }
    }
  }
}

TEST(QuantPolicy, DequantizeModelRejectsMissingWrongAndExtraTensors) {
  PolicyModel m;
  const auto q = quantize_model(m.plan, m.values.data());
  std::vector<float> out(m.values.size());
  auto message = [&](std::vector<QTensor> tensors) -> std::string {
    try {
      dequantize_model(tensors, m.plan, out.data());
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  auto missing = q;
  missing.erase(missing.begin() + 3);
  EXPECT_NE(message(missing).find(q[3].name), std::string::npos);
  auto reshaped = q;
  reshaped[0].shape = {1};
  EXPECT_NE(message(reshaped).find("shape"), std::string::npos);
  auto extra = q;
  extra.push_back(q[0]);
  EXPECT_NE(message(extra).find("twice"), std::string::npos);
  extra.back().name = "nope";
  EXPECT_NE(message(extra).find("nope"), std::string::npos);
  auto truncated = q;
  ASSERT_EQ(truncated[0].scheme, Scheme::kIntRows);
  truncated[0].q.pop_back();
  EXPECT_NE(message(truncated).find(q[0].name), std::string::npos);
}

// docs/recurrence.md's tensors: a repeat's untied matrices are block matrices (int-N, MLP
// bits for its MLP ones), #784's residual VE tables are embeddings (int8), loop_embed,
// value_scales and cross_repeat_scales are control tensors (fp32); plan.blocks entries of
// repeats that own only some matrices (-1 elsewhere) are skipped.
TEST(QuantPolicy, RecurrenceTensorsByRole) {
  for (const char* untie_mlp : {"full", "down"}) {
    ModelConfig c = policy_config();
    c.layer_schedule = {0, 1, 1, 0};
    c.ve_layers = {2, 3};
    c.repeat_untie_mlp = untie_mlp;
    c.repeat_untie_attn = true;
    c.loop_embed = true;
    c.residual_ve_tables = 2;
    c.cross_repeat = true;
    const ModelPlan plan = make_plan(c);
    std::vector<float> values(plan.layout.total());
    std::mt19937 rng(4);
    std::normal_distribution<float> normal(0.0f, 0.3f);
    for (float& x : values) x = normal(rng);
    QuantOptions opt;
    opt.mlp_bits = 5;
    opt.passthrough_max_elements = 0;
    const auto q = quantize_model(plan, values.data(), opt);
    ASSERT_EQ(q.size(), plan.layout.infos().size());
    std::map<std::string, const QTensor*> by_name;
    for (const QTensor& t : q) by_name[t.name] = &t;
    auto expect = [&](const std::string& name, Scheme scheme, int bits) {
      ASSERT_TRUE(by_name.count(name)) << name;
      EXPECT_EQ(by_name[name]->scheme, scheme) << name;
      EXPECT_EQ(by_name[name]->bits, bits) << name;
    };
    const bool full = std::string(untie_mlp) == "full";
    for (int v : {2, 3}) {
      const std::string r = "repeats." + std::to_string(v) + ".";
      for (const char* n : {"attn.c_q.weight", "attn.c_k.weight", "attn.c_v.weight",
                            "attn.proj.weight"})
        expect(r + n, Scheme::kIntRows, 6);
      expect(r + "mlp.proj.weight", Scheme::kIntRows, 5);
      if (full) expect(r + "mlp.fc.weight", Scheme::kIntRows, 5);
      else EXPECT_FALSE(by_name.count(r + "mlp.fc.weight"));
    }
    expect("value_embeds.0.weight", Scheme::kIntRows, 8);
    expect("value_embeds.1.weight", Scheme::kIntRows, 8);
    for (const char* n : {"loop_embed", "value_scales", "cross_repeat_scales"})
      expect(n, Scheme::kF32, 0);
    std::vector<float> out(values.size());
    dequantize_model(q, plan, out.data());  // every tensor present once, shapes right
  }
}
