// #490's magnitude pruning before quantisation (quant/prune.h): the threshold is
// torch.quantile(|w|, fraction), values strictly below it become 0, only rank-2 tensors of
// more than 65,536 elements that the quantiser stores as int-N or int8 are touched, and an
// artifact written with pruning reads back as exactly what the quantiser dequantises.
#include "quant/prune.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>

#include "core/error.h"
#include "io/artifact.h"
#include "model/model.h"
#include "model/plan.h"
#include "quant/artifact_model.h"
#include "quant/quantize.h"
#include "support/temp_dir_test.h"

using namespace pgolf;
using namespace pgolf::quant;

namespace {

bool same_bits(float a, float b) { return std::bit_cast<uint32_t>(a) == std::bit_cast<uint32_t>(b); }

}  // namespace

// |w| = 1, 2, ..., 90,000 (shuffled, random signs): with fraction 0.02 torch's rank is
// float(0.02) · 89,999 = 1799.98, so the threshold lies between 1800 and 1801 and exactly
// the 1,800 smallest magnitudes go.
TEST(Prune, ZeroesExactlyTheExpectedCountOnAKnownTensor) {
  const int64_t n = 300 * 300;
  std::vector<float> w(n);
  std::iota(w.begin(), w.end(), 1.0f);
  std::mt19937 rng(3);
  std::shuffle(w.begin(), w.end(), rng);
  for (float& x : w)
    if (rng() & 1) x = -x;
  const std::vector<float> before = w;

  const float thresh = magnitude_threshold(w.data(), n, 0.02);
  EXPECT_GT(thresh, 1800.0f);
  EXPECT_LT(thresh, 1801.0f);
  EXPECT_EQ(prune_by_magnitude(w.data(), n, 0.02), 1800);
  int64_t zeros = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (std::fabs(before[i]) <= 1800.0f) {
      EXPECT_TRUE(same_bits(w[i], 0.0f)) << before[i];
      ++zeros;
    } else {
      ASSERT_TRUE(same_bits(w[i], before[i])) << i;
    }
  }
  EXPECT_EQ(zeros, 1800);
  // A second pass zeroes nothing new: the 1,800 zeros are now the smallest magnitudes and
  // the threshold, lerp(0, 1801, 0.98), lies below 1801.
  EXPECT_EQ(prune_by_magnitude(w.data(), n, 0.02), 0);
}

// The rule is strict (|w| < threshold): values equal to it survive, so a tensor of equal
// magnitudes loses nothing; fraction 0 changes nothing; fractions outside [0, 1) are errors.
TEST(Prune, TiesSurviveAndFractionsAreChecked) {
  std::vector<float> w(70000, 0.5f);
  for (size_t i = 0; i < w.size(); i += 2) w[i] = -0.5f;
  EXPECT_EQ(prune_by_magnitude(w.data(), int64_t(w.size()), 0.02), 0);
  EXPECT_EQ(w[0], -0.5f);
  std::vector<float> r = {3, -1, 2, 0.5f};
  EXPECT_EQ(prune_by_magnitude(r.data(), 4, 0.0), 0);
  EXPECT_EQ(r, (std::vector<float>{3, -1, 2, 0.5f}));
  EXPECT_THROW(prune_by_magnitude(r.data(), 4, 1.0), Error);
  EXPECT_THROW(prune_by_magnitude(r.data(), 4, -0.01), Error);
  // rank 0.5 · 3 = 1.5 between |w| 1 and 2: the threshold 1.5 takes 0.5 and -1.
  EXPECT_EQ(magnitude_threshold(r.data(), 4, 0.5), 1.5f);
  EXPECT_EQ(prune_by_magnitude(r.data(), 4, 0.5), 2);
  EXPECT_EQ(r, (std::vector<float>{3, 0, 2, 0}));
}

// The selection-based threshold is quant/quantize.h's sort-based torch.quantile, bit for bit.
TEST(Prune, ThresholdIsTorchQuantileOfTheMagnitudes) {
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  for (int64_t n : {1, 2, 7, 1000, 65537, 200003}) {
    std::vector<float> w(n), a(n);
    for (float& x : w) x = normal(rng);
    for (int64_t i = 0; i < n; ++i) a[i] = std::fabs(w[i]);
    for (double f : {0.0, 0.02, 0.1, 0.5, 0.999, 1.0}) {
      const float expected = quantile(a.data(), n, float(f));
      ASSERT_TRUE(same_bits(magnitude_threshold(w.data(), n, f), expected))
          << "n " << n << " fraction " << f;
    }
  }
}

TEST(Prune, OnlyMatricesOfMoreThan65536Elements) {
  EXPECT_TRUE(is_prunable({257, 256}));
  EXPECT_FALSE(is_prunable({256, 256}));  // exactly 65,536
  EXPECT_FALSE(is_prunable({100000}));    // rank 1
  EXPECT_FALSE(is_prunable({2, 300, 300}));  // rank 3
  EXPECT_FALSE(is_prunable({}));
}

// ---- in the quantiser ------------------------------------------------------------------

namespace {

// Block MLP matrices of 1088 x 64 = 69,632 elements and tok_emb / lm_head of 1100 x 64 =
// 70,400 (prunable); attention matrices of 64 x 64 and every scalar (not).
ModelConfig prune_config() {
  ModelConfig c;
  c.vocab_size = 1100;
  c.num_layers = 2;
  c.model_dim = 64;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.mlp_mult = 17;
  c.tie_embeddings = false;
  c.bigram_vocab_size = 9;
  c.bigram_dim = 8;
  c.gated_attention = true;
  return c;
}

std::vector<float> random_values(const ModelPlan& plan, uint32_t seed) {
  std::vector<float> v(size_t(plan.layout.total()));
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  for (float& x : v) x = normal(rng);
  return v;
}

bool same_tensor(const QTensor& a, const QTensor& b) {
  return a.name == b.name && a.shape == b.shape && a.scheme == b.scheme && a.bits == b.bits &&
         a.q == b.q && a.scales == b.scales && a.f16 == b.f16 &&
         std::memcmp(a.f32.data(), b.f32.data(), a.f32.size() * sizeof(float)) == 0 &&
         a.f32.size() == b.f32.size();
}

}  // namespace

// Every quantised matrix of more than 65,536 elements is quantised from its pruned copy (the
// int-N block matrices and the int8 embeddings alike); everything else comes out exactly as
// without pruning, small int6 matrices included (passthrough 0 quantises them).
TEST(PrunePolicy, QuantizeModelPrunesTheLargeQuantisedMatricesOnly) {
  const ModelPlan plan = make_plan(prune_config());
  const std::vector<float> values = random_values(plan, 5);
  for (int64_t passthrough : {int64_t(65536), int64_t(0)}) {
    QuantOptions plain;
    plain.passthrough_max_elements = passthrough;
    QuantOptions pruning = plain;
    pruning.prune_fraction = 0.02;
    const auto a = quantize_model(plan, values.data(), plain);
    const auto b = quantize_model(plan, values.data(), pruning);
    ASSERT_EQ(a.size(), b.size());
    int pruned_tensors = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      const ParamInfo& p = plan.layout.info(int(i));
      if (!is_prunable(p.shape)) {
        EXPECT_TRUE(same_tensor(a[i], b[i])) << p.name << " changed";
        continue;
      }
      ++pruned_tensors;
      ASSERT_EQ(b[i].scheme, Scheme::kIntRows) << p.name;
      std::vector<float> w(values.begin() + p.offset, values.begin() + p.offset + p.numel);
      const int64_t zeroed = prune_by_magnitude(w.data(), p.numel, 0.02);
      // Distinct random values: all but the ones at the threshold's floor rank go below it.
      const float rank = 0.02f * float(p.numel - 1);
      EXPECT_EQ(zeroed, int64_t(rank) + 1) << p.name;
      const QTensor expected =
          b[i].bits == 8 ? quantize_int8_rows(p.name, w.data(), p.shape[0], p.shape[1])
                         : quantize_int_rows(p.name, w.data(), p.shape[0], p.shape[1], 6, false);
      EXPECT_TRUE(same_tensor(expected, b[i])) << p.name;
      int64_t zero_q = 0, zero_q_plain = 0;
      for (size_t j = 0; j < b[i].q.size(); ++j) {
        if (w[j] == 0.0f) {
          EXPECT_EQ(b[i].q[j], 0) << p.name;
        }
        zero_q += b[i].q[j] == 0;
        zero_q_plain += a[i].q[j] == 0;
      }
      EXPECT_GE(zero_q, zero_q_plain) << p.name;
    }
    EXPECT_EQ(pruned_tensors, 2 + 2 * 2);  // tok_emb, lm_head, mlp.fc/proj of 2 blocks
  }
  QuantOptions bad;
  bad.prune_fraction = 1.0;
  EXPECT_THROW(quantize_model(plan, values.data(), bad), Error);
}

class PruneArtifact : public test::TempDirTest {
 protected:
  PruneArtifact() : TempDirTest("pgolf_prune") {}
};

// pack's path: an artifact written with pruning decodes to dequantize() of the quantiser's
// own tensors bit for bit, and every pruned weight decodes to exactly 0.
TEST_F(PruneArtifact, RoundTripIsBitExactAgainstDequantize) {
  Model<float> model(make_plan(prune_config()));
  const std::vector<float> values = random_values(model.plan(), 8);
  auto store = model.params().values();
  std::copy(values.begin(), values.end(), store.begin());
  QuantOptions opt;
  opt.prune_fraction = 0.02;
  const std::string file = path("model.pgolf");
  const std::vector<QTensor> written = write_model_artifact(file, model, opt);

  const auto decoded = load_artifact_model<float>(file);
  const ModelPlan& plan = decoded->plan();
  const float* got = decoded->params().values().data();
  int64_t pruned_zeros = 0;
  for (size_t i = 0; i < written.size(); ++i) {
    const ParamInfo& p = plan.layout.info(int(i));
    ASSERT_EQ(written[i].name, p.name);
    const std::vector<float> expect = dequantize(written[i]);
    ASSERT_EQ(std::memcmp(expect.data(), got + p.offset, p.numel * sizeof(float)), 0) << p.name;
    if (!is_prunable(p.shape)) continue;
    std::vector<float> w(values.begin() + p.offset, values.begin() + p.offset + p.numel);
    const float thresh = magnitude_threshold(w.data(), p.numel, 0.02);
    for (int64_t j = 0; j < p.numel; ++j)
      if (std::fabs(w[j]) < thresh) {
        ASSERT_TRUE(same_bits(got[p.offset + j], 0.0f)) << p.name << " " << j;
        ++pruned_zeros;
      }
  }
  EXPECT_GT(pruned_zeros, 6 * 1300);
  // The artifact holds what the quantiser returned.
  const io::Artifact art = io::read_artifact(file);
  ASSERT_EQ(art.tensors.size(), written.size());
  for (size_t i = 0; i < written.size(); ++i)
    EXPECT_TRUE(same_tensor(art.tensors[i], written[i])) << written[i].name;
}
