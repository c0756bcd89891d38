// Tensor categories (quant/category.h): every tensor a model can have, found through the
// plan's own indices rather than by name, lands in the category its role says.
#include "quant/category.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <iterator>
#include <set>

#include "model/plan.h"

using namespace pgolf;
using quant::tensor_category;

namespace {

// A config with every optional tensor present (untied head, bigram and VE projections,
// gates, value residual, U-Net skips, a tied layer schedule).
ModelConfig every_tensor_config() {
  ModelConfig c;
  c.vocab_size = 50;
  c.num_layers = 2;
  c.layer_schedule = {0, 1, 1, 0};
  c.model_dim = 32;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.tie_embeddings = false;
  c.bigram_vocab_size = 9;
  c.bigram_dim = 8;
  c.ve_enabled = true;
  c.ve_dim = 8;
  c.ve_layers = {2, 3};
  c.gated_attention = true;
  c.value_residual = true;
  return c;
}

TEST(TensorCategory, EveryTensorOfAFullModelByRole) {
  const ModelPlan plan = make_plan(every_tensor_config());
  std::vector<std::string> seen;  // names checked, to prove none was left out
  auto expect = [&](int index, const std::string& category) {
    ASSERT_GE(index, 0) << "the config should have every tensor (" << category << ")";
    const std::string& name = plan.layout.info(index).name;
    EXPECT_EQ(tensor_category(name), category) << name;
    seen.push_back(name);
  };
  expect(plan.tok_emb, "embed");
  expect(plan.lm_head, "embed");
  for (int i : {plan.bigram_embed, plan.bigram_proj, plan.bigram_scale}) expect(i, "bigram");
  for (int i : {plan.ve_embed, plan.ve_proj, plan.ve_scale}) expect(i, "ve");
  for (const BlockParams& b : plan.blocks) {
    for (int i : {b.c_q, b.c_k, b.c_v, b.attn_proj}) expect(i, "attn");
    for (int i : {b.mlp_fc, b.mlp_proj}) expect(i, "mlp");
  }
  expect(plan.smear_gate, "control");
  expect(plan.skip_weights, "control");
  for (int i : plan.ve_layer_scales) expect(i, "control");
  for (const LayerParams& l : plan.layers)
    for (int i : l.all()) expect(i, "control");
  EXPECT_EQ(seen.size(), plan.layout.infos().size()) << "a tensor of the plan was not checked";
}

TEST(TensorCategory, NamesOutsideTheMatricesAreControl) {
  for (const char* name :
       {"blocks.3.attn.q_gain", "blocks.0.attn.attn_gate.weight", "blocks.1.attn.vr_lambda",
        "blocks.12.attn_scale", "blocks.2.resid_mix", "ve_layer_scales.0", "something.new"})
    EXPECT_EQ(tensor_category(name), "control") << name;
  EXPECT_EQ(tensor_category("blocks.11.attn.proj.weight"), "attn");
  EXPECT_EQ(tensor_category("blocks.11.mlp.proj.weight"), "mlp");
}

// docs/recurrence.md's names: a repeat's untied matrices are block matrices, #784's
// residual value-embedding tables are value embeddings, and its per-layer vectors and
// scales are control tensors.
TEST(TensorCategory, RecurrenceNames) {
  for (const char* name : {"repeats.3.attn.c_q.weight", "repeats.3.attn.c_k.weight",
                           "repeats.3.attn.c_v.weight", "repeats.12.attn.proj.weight"})
    EXPECT_EQ(tensor_category(name), "attn") << name;
  for (const char* name : {"repeats.3.mlp.fc.weight", "repeats.12.mlp.proj.weight"})
    EXPECT_EQ(tensor_category(name), "mlp") << name;
  for (const char* name : {"value_embeds.0.weight", "value_embeds.11.weight"})
    EXPECT_EQ(tensor_category(name), "ve") << name;
  for (const char* name : {"loop_embed", "value_scales", "cross_repeat_scales", "repeats",
                           "repeats.3", "repeats.3.attn_scale"})
    EXPECT_EQ(tensor_category(name), "control") << name;
}

// A recurrent model with every recurrence tensor: untied attention and MLP matrices on both
// repeats, loop_embed, two residual VE tables with their scales, cross-repeat scales.
ModelConfig recurrent_config() {
  ModelConfig c = every_tensor_config();
  c.repeat_untie_mlp = "full";
  c.repeat_untie_attn = true;
  c.loop_embed = true;
  c.residual_ve_tables = 2;
  c.cross_repeat = true;
  return c;
}

TEST(TensorCategory, EveryTensorOfARecurrentModelByRole) {
  for (const char* untie_mlp : {"full", "down"}) {
    ModelConfig cfg = recurrent_config();
    cfg.repeat_untie_mlp = untie_mlp;
    const ModelPlan plan = make_plan(cfg);
    std::set<std::string> seen;
    auto expect = [&](int index, const std::string& category) {
      ASSERT_GE(index, 0) << "the config should have every tensor (" << category << ")";
      const std::string& name = plan.layout.info(index).name;
      EXPECT_EQ(tensor_category(name), category) << name;
      seen.insert(name);
    };
    expect(plan.tok_emb, "embed");
    expect(plan.lm_head, "embed");
    for (int i : {plan.bigram_embed, plan.bigram_proj, plan.bigram_scale}) expect(i, "bigram");
    for (int i : {plan.ve_embed, plan.ve_proj, plan.ve_scale}) expect(i, "ve");
    ASSERT_EQ(plan.value_embeds.size(), 2u);
    for (int i : plan.value_embeds) expect(i, "ve");
    int repeat_matrices = 0;
    for (const BlockParams& b : plan.blocks) {  // a repeat's set: -1 where it owns none
      for (int i : {b.c_q, b.c_k, b.c_v, b.attn_proj})
        if (i >= 0) expect(i, "attn");
      for (int i : {b.mlp_fc, b.mlp_proj})
        if (i >= 0) expect(i, "mlp");
      for (int i : b.all())
        repeat_matrices += i >= 0 && plan.layout.info(i).name.starts_with("repeats.");
    }
    // Two repeats (virtual 2 and 3), each with 4 attention matrices and 2 or 1 MLP ones.
    EXPECT_EQ(repeat_matrices, 2 * (4 + (std::string(untie_mlp) == "full" ? 2 : 1))) << untie_mlp;
    for (int i : {plan.smear_gate, plan.skip_weights, plan.loop_embed, plan.value_scales,
                  plan.cross_repeat_scales})
      expect(i, "control");
    for (int i : plan.ve_layer_scales) expect(i, "control");
    for (const LayerParams& l : plan.layers)
      for (int i : l.all()) expect(i, "control");
    EXPECT_EQ(seen.size(), plan.layout.infos().size()) << "a tensor of the plan was not checked";
  }
}

TEST(TensorCategory, EveryResultIsAListedCategory) {
  for (const ModelPlan& plan : {make_plan(every_tensor_config()), make_plan(recurrent_config())})
    for (const ParamInfo& p : plan.layout.infos())
      EXPECT_NE(std::find(std::begin(quant::kTensorCategories),
                          std::end(quant::kTensorCategories), tensor_category(p.name)),
                std::end(quant::kTensorCategories))
          << p.name;
}

}  // namespace
