// docs/recurrence.md: the sharing rules' wiring, depth stages and the recurrence switch.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "core/philox.h"
#include "model/init.h"
#include "model/recurrence.h"
#include "model/untie.h"
#include "support/small_configs.h"

namespace pgolf {
namespace {

// #686's form when recur_layers is given (else the identity over `layers` blocks).
ModelConfig small(std::vector<int64_t> recur_layers, int64_t layers) {
  ModelConfig c = test::small_switches_on(29, layers);
  c.recur_layers = std::move(recur_layers);
  return c;
}

// Random weights with every tensor non-zero (zero-init projections too), so a switch that
// changed anything would show in the loss.
void randomise(Model<double>& m) {
  const auto& infos = m.plan().layout.infos();
  for (size_t i = 0; i < infos.size(); ++i) {
    Philox rng(3, i);
    double* v = m.params().value(int(i));
    for (int64_t k = 0; k < infos[i].numel; ++k) v[k] = 0.6 + 0.3 * rng.normal(uint64_t(k));
  }
}

std::vector<double> losses(Model<double>& m, int64_t B, int64_t T) {
  std::vector<int32_t> x(size_t(B * T)), y(size_t(B * T));
  Philox rng(8, 1);
  for (size_t i = 0; i < x.size(); ++i) {
    x[i] = int32_t(rng.uniform(i, 0) * 29);
    y[i] = int32_t(rng.uniform(i, 1) * 29);
  }
  m.forward(x.data(), y.data(), B, T);
  return {m.token_losses(), m.token_losses() + B * T};
}

TEST(Recurrence, RepeatIndexPreviousAndFirstUse) {
  ModelConfig c = small({4, 5}, 11);  // #686: [0..5, 4, 5, 6..10]
  EXPECT_EQ(c.num_repeats(), 2);
  EXPECT_EQ(c.repeat_index(6), 1);
  EXPECT_EQ(c.repeat_index(7), 1);
  EXPECT_EQ(c.repeat_index(8), 0);
  EXPECT_EQ(c.previous_use(7), 5);
  EXPECT_EQ(c.previous_use(8), -1);
  EXPECT_EQ(c.first_use(6), 8);
}

// #857: schedule [0..9, 9, 9, 9, 9, 10], one Block object for virtual 9–13.
TEST(Recurrence, BlockSharingFollows857) {
  ModelConfig c = small({}, 11);
  c.layer_schedule = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 9, 9, 10};
  c.xsa_last_n = 4;
  c.scalar_sharing = "block";
  c.xsa_placement = "block";
  const ModelPlan p = make_plan(c);
  // XSA on blocks[11..14] = the shared block 9 and block 10: virtual 9–14, six layers.
  for (int64_t v = 0; v < 15; ++v) EXPECT_EQ(p.wiring[size_t(v)].xsa, v >= 9) << v;
  // ln scale of the shared block is 1/sqrt(10) at all five uses; virtual 14 (block 10,
  // first used there) 1/sqrt(15).
  for (int64_t v = 9; v < 14; ++v) EXPECT_DOUBLE_EQ(p.wiring[size_t(v)].ln_scale, 1 / std::sqrt(10.0));
  EXPECT_DOUBLE_EQ(p.wiring[14].ln_scale, 1 / std::sqrt(15.0));
  // The five uses read one set of scalars, named by the block.
  for (int64_t v = 10; v < 14; ++v) EXPECT_EQ(p.layers[size_t(v)].attn_scale, p.layers[9].attn_scale);
  EXPECT_EQ(p.layout.info(p.layers[14].attn_scale).name, "blocks.10.attn_scale");
  EXPECT_EQ(p.layout.find("blocks.11.attn_scale"), -1);
  // With "virtual" placement XSA stays on the last four virtual layers.
  c.xsa_placement = "virtual";
  const ModelPlan q = make_plan(c);
  for (int64_t v = 0; v < 15; ++v) EXPECT_EQ(q.wiring[size_t(v)].xsa, v >= 11) << v;
}

TEST(Recurrence, UntiedRepeatMatricesAreNamedByLayerAndStartAsCopies) {
  ModelConfig c = small({1, 2}, 4);  // [0, 1, 2, 1, 2, 3]
  c.repeat_untie_mlp = "down";
  Model<float> m(make_plan(c));
  init_params(m.plan(), m.params(), 7);
  const ModelPlan& p = m.plan();
  ASSERT_EQ(p.untied_matrix_sources.size(), 2u);
  EXPECT_EQ(p.layer_mats[3].mlp_proj, p.layout.find("repeats.3.mlp.proj.weight"));
  EXPECT_EQ(p.layer_mats[3].mlp_fc, p.blocks[1].mlp_fc);  // "down" keeps fc shared
  EXPECT_EQ(p.layout.find("repeats.3.mlp.fc.weight"), -1);
  ASSERT_EQ(p.blocks.size(), 6u);  // 4 physical + 2 repeat sets
  Philox rng(1, 1);
  float* src = m.params().value(p.blocks[1].mlp_proj);
  for (int64_t k = 0; k < p.layout.info(p.blocks[1].mlp_proj).numel; ++k)
    src[k] = float(rng.normal(uint64_t(k)));
  switch_on_repeats(m, 1, 2, "copy");  // the "copy" switch resets the copy to the source
  const float* own = m.params().value(p.layer_mats[3].mlp_proj);
  for (int64_t k = 0; k < p.layout.info(p.blocks[1].mlp_proj).numel; ++k)
    ASSERT_EQ(own[k], src[k]);
}

// docs/recurrence.md: identity repeats, per-layer scalars, no U-Net and no cross-repeat:
// the model right after the switch computes exactly what it computed before.
TEST(Recurrence, SwitchWithIdentityRepeatsKeepsOutputs) {
  ModelConfig c = small({1, 2}, 4);
  c.unet_skips = false;
  c.ve_enabled = true;
  c.ve_dim = 5;
  c.ve_layers = {2, 3};  // VE on a repeat too
  c.repeat_untie_mlp = "full";
  Model<double> m(make_plan(c));
  randomise(m);
  m.set_active_repeats(1);
  EXPECT_EQ(m.active_layers(), (std::vector<int64_t>{0, 1, 2, 5}));
  const auto before = losses(m, 2, 6);
  switch_on_repeats(m, 1, 2, "identity");
  EXPECT_EQ(m.active_layers().size(), 6u);
  const auto after = losses(m, 2, 6);
  for (size_t i = 0; i < before.size(); ++i) ASSERT_EQ(before[i], after[i]) << i;
  // ... and the repeats are live: their scales train away from zero.
  m.params().zero_grads();
  m.backward();
  double g = 0;
  for (int64_t k = 0; k < c.model_dim; ++k) g += std::abs(m.params().grad(m.plan().layers[3].mlp_scale)[k]);
  EXPECT_GT(g, 0);
}

// Why the switch cannot be exact with U-Net skips: inserting layers moves the
// encoder/decoder split (4 → 6 layers: 2 → 3 encoders), so decoders pair differently.
TEST(Recurrence, UNetMovesAtTheSwitch) {
  ModelConfig c = small({1, 2}, 4);
  Model<double> m(make_plan(c));
  randomise(m);
  m.set_active_repeats(1);
  EXPECT_EQ(m.wiring()[5].skip_from, 0);  // active [0, 1, 2, 5]: 5 takes layer 0
  const auto before = losses(m, 2, 6);
  switch_on_repeats(m, 1, 2, "identity");
  EXPECT_EQ(m.wiring()[5].skip_from, 0);  // [0, 1, 2 | 3, 4, 5]: 3←2, 4←1, 5←0
  EXPECT_EQ(m.wiring()[3].skip_from, 2);
  const auto after = losses(m, 2, 6);
  double diff = 0;
  for (size_t i = 0; i < before.size(); ++i) diff = std::max(diff, std::abs(before[i] - after[i]));
  EXPECT_GT(diff, 1e-6);
}

TEST(Recurrence, CopySwitchStartsRepeatScalarsAsTheirFirstPass) {
  ModelConfig c = small({1, 2}, 4);
  Model<double> m(make_plan(c));
  randomise(m);
  m.set_active_repeats(1);
  switch_on_repeats(m, 1, 2, "copy");
  const ModelPlan& p = m.plan();
  for (auto [v, first] : {std::pair{3, 1}, std::pair{4, 2}}) {
    const std::vector<int> copies = p.layers[size_t(v)].all();
    const std::vector<int> sources = p.layers[size_t(first)].all();
    ASSERT_EQ(std::count(copies.begin(), copies.end(), -1), 0);  // every switch is on
    for (size_t i = 0; i < copies.size(); ++i) {
      const int a = copies[i], b = sources[i];
      for (int64_t k = 0; k < p.layout.info(a).numel; ++k)
        ASSERT_EQ(m.params().value(a)[k], m.params().value(b)[k]) << p.layout.info(a).name;
    }
  }
}

TEST(Recurrence, DepthScheduleStages) {
  DepthSchedule s;
  EXPECT_EQ(s.active_repeats(0, 0.0, 4), 4);
  s.recur_start_step = 100;
  EXPECT_EQ(s.active_repeats(99, 0.5, 2), 1);
  EXPECT_EQ(s.active_repeats(100, 0.5, 2), 2);
  DepthSchedule p;
  p.progressive_repeats = {2, 3, 4};
  p.progressive_fractions = {0.4, 0.65};
  EXPECT_EQ(p.active_repeats(0, 0.0, 4), 2);
  EXPECT_EQ(p.active_repeats(0, 0.39, 4), 2);
  EXPECT_EQ(p.active_repeats(0, 0.4, 4), 3);
  EXPECT_EQ(p.active_repeats(0, 0.7, 4), 4);
  ModelConfig c;
  c.num_layers = 3;
  c.layer_schedule = {0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2};
  EXPECT_NO_THROW(validate(p, c));
  p.progressive_fractions = {0.4};
  EXPECT_THROW(validate(p, c), Error);
  p.progressive_fractions = {0.65, 0.4};
  EXPECT_THROW(validate(p, c), Error);
  p.progressive_fractions = {0.4, 0.65};
  p.progressive_repeats = {2, 3, 5};
  EXPECT_THROW(validate(p, c), Error);
  DepthSchedule id;
  id.recur_init = "identity";
  c.scalar_sharing = "block";
  EXPECT_THROW(validate(id, c), Error);
  id.recur_init = "zero";
  c.scalar_sharing = "layer";
  EXPECT_THROW(validate(id, c), Error);
}

TEST(Recurrence, ConfigRejectsUnknownModesAndCrossRepeatWithoutRepeats) {
  ModelConfig c = small({}, 3);
  for (auto [key, bad] : {std::pair{"scalar_sharing", "physical"}, {"repeat_untie_mlp", "up"},
                          {"xsa_placement", "last"}, {"init_scheme", "xavier"}}) {
    ModelConfig d = c;
    apply_json(d, {{key, bad}}, "test");
    try {
      validate(d);
      ADD_FAILURE() << key << " accepted " << bad;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    }
  }
  c.cross_repeat = true;
  EXPECT_THROW(validate(c), Error);
  c.layer_schedule = {0, 1, 2, 0};
  EXPECT_NO_THROW(validate(c));
}

}  // namespace
}  // namespace pgolf

namespace pgolf {
namespace {

// model/untie.h: every repeat gets its own matrices, the function is unchanged.
TEST(Recurrence, UntiedTwinIsTheSameFunction) {
  ModelConfig c = small({1, 2}, 4);
  c.repeat_untie_mlp = "down";  // one matrix already owned: its value must carry over
  c.scalar_sharing = "block";
  Model<double> probe(make_plan(c));
  randomise(probe);
  Model<float> m(make_plan(c));
  for (size_t i = 0; i < m.params().values().size(); ++i)
    m.params().values()[i] = float(probe.params().values()[i]);
  const auto twin = untied_twin(m);
  EXPECT_EQ(twin->plan().untied_matrix_sources.size(), 12u);  // 2 repeats × 6 matrices
  std::vector<int32_t> x(12), y(12);
  for (int i = 0; i < 12; ++i) x[size_t(i)] = (7 * i) % 29, y[size_t(i)] = (5 * i + 3) % 29;
  EXPECT_EQ(m.forward(x.data(), y.data(), 2, 6), twin->forward(x.data(), y.data(), 2, 6));
}

// ve_layers without ve_enabled (the tiny preset's with --set ve_enabled=false) means no VE.
TEST(Recurrence, VeLayersWithoutVeAreIgnored) {
  ModelConfig c = small({}, 3);
  c.ve_layers = {1, 2};
  Model<double> m(make_plan(c));
  randomise(m);
  for (const auto& w : m.plan().wiring) EXPECT_EQ(w.ve_slot, -1);
  EXPECT_TRUE(std::isfinite(losses(m, 1, 5)[0]));
}

}  // namespace
}  // namespace pgolf
