// The optimizer groups (train/optimizer_set.h, SPEC §3): Muon holds every block matrix, and
// with the train key attn_gate_muon (#490) the attention gates' weights too, each tensor
// once, whatever plan.blocks and plan.layers repeat; otherwise the gates are scalar AdamW.
#include "train/optimizer_set.h"

#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <set>

#include "core/param_store.h"
#include "model/plan.h"

using namespace pgolf;

namespace {

ModelConfig gated_config() {
  ModelConfig c;
  c.vocab_size = 40;
  c.num_layers = 2;
  c.layer_schedule = {0, 1, 1};
  c.model_dim = 32;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.gated_attention = true;
  c.value_residual = true;
  return c;
}

// The layout indices Muon holds, found back from the value pointers.
std::set<int> muon_indices(const OptimizerSet& opt, const ParamStore<float>& store) {
  std::set<int> out;
  for (const auto& ref : opt.muon_params()) {
    int found = -1;
    for (int i = 0; i < int(store.layout().infos().size()); ++i)
      if (store.value(i) == ref.value) found = i;
    EXPECT_GE(found, 0) << "Muon holds a tensor that is not a parameter";
    EXPECT_TRUE(out.insert(found).second) << "Muon holds " << store.layout().info(found).name
                                          << " twice";
  }
  EXPECT_EQ(out.size(), opt.muon_params().size());
  return out;
}

std::set<int> block_matrices(const ModelPlan& plan) {
  std::set<int> out;
  for (const BlockParams& b : plan.blocks)
    for (int i : b.all())
      if (i >= 0) out.insert(i);
  return out;
}

size_t state_size(OptimizerSet& opt, const std::string& name) {
  for (const auto& s : opt.state())
    if (s.name == name) return s.values.size();
  ADD_FAILURE() << "no optimizer state " << name;
  return 0;
}

}  // namespace

TEST(OptimizerSet, AttnGateMuonMovesTheGateWeightsIntoMuon) {
  const ModelPlan plan = make_plan(gated_config());
  ParamStore<float> store(plan.layout);
  std::set<int> gates;
  int64_t gate_elements = 0;
  for (const LayerParams& l : plan.layers) {
    ASSERT_GE(l.gate_weight, 0);
    gates.insert(l.gate_weight);
    gate_elements += plan.layout.info(l.gate_weight).numel;
  }
  ASSERT_EQ(gates.size(), 3u);

  TrainConfig t;
  OptimizerSet spec(store, plan, t);  // SPEC §3: gates in the scalar group
  EXPECT_EQ(muon_indices(spec, store), block_matrices(plan));
  t.attn_gate_muon = true;
  OptimizerSet pr490(store, plan, t);
  std::set<int> expected = block_matrices(plan);
  expected.insert(gates.begin(), gates.end());
  EXPECT_EQ(muon_indices(pr490, store), expected);
  // The state moves with them: one momentum per element in Muon, two moments in AdamW.
  EXPECT_EQ(state_size(pr490, "optim.muon.momentum"),
            state_size(spec, "optim.muon.momentum") + size_t(gate_elements));
  EXPECT_EQ(state_size(pr490, "optim.adam.scalar.moments") + 2 * size_t(gate_elements),
            state_size(spec, "optim.adam.scalar.moments"));
}

// The learning rate that moves a gate weight is matrix_lr with the key, scalar_lr without.
TEST(OptimizerSet, TheGateStepsWithItsGroupsLearningRate) {
  const ModelPlan plan = make_plan(gated_config());
  const int gate = plan.layers[1].gate_weight;
  const int64_t n = plan.layout.info(gate).numel;
  for (bool in_muon : {false, true}) {
    for (bool matrix_lr_only : {false, true}) {
      ParamStore<float> store(plan.layout);
      std::mt19937 rng(7);
      std::normal_distribution<float> normal(0.0f, 1.0f);
      for (float& g : store.grads()) g = normal(rng);
      TrainConfig t;
      t.attn_gate_muon = in_muon;
      t.matrix_lr = matrix_lr_only ? 0.04 : 0.0;
      t.scalar_lr = matrix_lr_only ? 0.0 : 0.04;
      OptimizerSet opt(store, plan, t);
      opt.step(1.0, 0.95);
      bool moved = false;
      for (int64_t j = 0; j < n; ++j) moved |= store.value(gate)[j] != 0.0f;
      EXPECT_EQ(moved, in_muon == matrix_lr_only)
          << "attn_gate_muon " << in_muon << ", only " << (matrix_lr_only ? "matrix" : "scalar")
          << "_lr > 0";
    }
  }
}

// scalar_sharing="block" makes several virtual layers name one gate, and a repeat's set of
// untied matrices holds -1 for those it does not own: each tensor still goes in once.
TEST(OptimizerSet, SharedGatesAndPartialMatrixSetsGoInOnce) {
  ModelPlan plan = make_plan(gated_config());
  const int shared = plan.layers[1].gate_weight;
  const int orphan = plan.layers[2].gate_weight;
  plan.layers[2].gate_weight = shared;  // virtual layers 1 and 2: block 1's one gate
  plan.blocks.push_back(BlockParams{});  // a repeat's set with none of its own
  ParamStore<float> store(plan.layout);
  TrainConfig t;
  t.attn_gate_muon = true;
  std::unique_ptr<OptimizerSet> opt;
  ASSERT_NO_THROW(opt = std::make_unique<OptimizerSet>(store, plan, t));
  std::set<int> expected = block_matrices(plan);
  expected.insert(plan.layers[0].gate_weight);
  expected.insert(shared);
  EXPECT_EQ(muon_indices(*opt, store), expected);
  EXPECT_FALSE(expected.count(orphan));  // no layer names it any more: a scalar tensor
}
