// Config keys, defaults and overrides (SPEC §5) and the plan's names and shapes.
#include <gtest/gtest.h>

#include <cstdlib>

#include "core/error.h"
#include "model/plan.h"
#include "train/run_config.h"

namespace pgolf {
namespace {

using nlohmann::json;

TEST(Config, JsonRoundTripKeepsEveryKey) {
  ModelConfig c;
  c.ve_layers = {9, 10};
  c.layer_schedule = {0, 1, 1};
  c.mlp_mult = 2.5;
  json j = to_json(c);
  EXPECT_EQ(j.size(), 36u);
  EXPECT_EQ(to_json(config_from_json(j, "test")), j);
}

TEST(Config, UnknownKeyAndWrongTypeAreErrorsNamingTheKey) {
  try {
    config_from_json(json{{"num_layerz", 3}}, "cfg.json");
    FAIL() << "unknown key accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("num_layerz"), std::string::npos) << e.what();
  }
  EXPECT_THROW(config_from_json(json{{"num_layers", "eleven"}}, "x"), Error);
  EXPECT_THROW(config_from_json(json{{"num_layers", 2.5}}, "x"), Error);
  EXPECT_THROW(config_from_json(json{{"tie_embeddings", 3}}, "x"), Error);
  EXPECT_THROW(config_from_json(json::array(), "x"), Error);
}

TEST(Config, ReferenceStringListsAndSwitchesAsNumbers) {
  ModelConfig c = config_from_json(json{{"ve_layers", "9,10"}, {"ln_scale", 1}}, "x");
  EXPECT_EQ(c.ve_layers, (std::vector<int64_t>{9, 10}));
  EXPECT_TRUE(c.ln_scale);
  EXPECT_THROW(config_from_json(json{{"ve_layers", "9,x"}}, "x"), Error);
}

TEST(Config, EnvironmentAndSetOverrides) {
  RunConfig c;
  setenv("NUM_LAYERS", "11", 1);
  setenv("VE_LAYERS", "9,10", 1);
  setenv("MATRIX_LR", "0.025", 1);
  setenv("ITERATIONS", "77", 1);
  apply_env_overrides(c);
  for (const char* v : {"NUM_LAYERS", "VE_LAYERS", "MATRIX_LR", "ITERATIONS"}) unsetenv(v);
  EXPECT_EQ(c.model.num_layers, 11);
  EXPECT_EQ(c.model.ve_layers, (std::vector<int64_t>{9, 10}));
  EXPECT_EQ(c.train.matrix_lr, 0.025);
  EXPECT_EQ(c.train.iterations, 77);
  apply_setting(c, "layer_schedule", "[0,1,2,1]", "--set");
  apply_setting(c, "ve_layers", "7", "--set");
  EXPECT_EQ(c.model.ve_layers, (std::vector<int64_t>{7}));
  apply_setting(c, "ve_layers", "1,2", "--set");
  apply_setting(c, "ema_enabled", "1", "--set");
  EXPECT_EQ(c.model.layer_schedule, (std::vector<int64_t>{0, 1, 2, 1}));
  EXPECT_EQ(c.model.ve_layers, (std::vector<int64_t>{1, 2}));
  EXPECT_TRUE(c.train.ema_enabled);
  EXPECT_THROW(apply_setting(c, "nope", "1", "--set"), Error);
}

TEST(Config, RunConfigHoldsBothKeySetsAndChecksTheBatch) {
  RunConfig c;
  apply_json(c, json{{"num_layers", 3}, {"iterations", 5}, {"train_seq_len", 128},
                     {"train_batch_tokens", 1024}, {"grad_accum_steps", 2}},
             "x");
  EXPECT_EQ(c.model.num_layers, 3);
  EXPECT_EQ(c.train.iterations, 5);
  EXPECT_NO_THROW(validate(c));
  json j = to_json(c);
  EXPECT_EQ(j["num_layers"], 3);
  EXPECT_EQ(j["matrix_lr"], 0.04);
  c.train.train_batch_tokens = 1000;  // not a multiple of 2 * 128
  EXPECT_THROW(validate(c), Error);
  c.train.train_batch_tokens = 1024;
  c.train.beta2 = 1.0;
  EXPECT_THROW(validate(c), Error);
  EXPECT_THROW(apply_json(c, json{{"num_layerz", 3}}, "x"), Error);
  EXPECT_EQ(grad_accum_steps(TrainConfig{}, 1), 8);
  EXPECT_EQ(grad_accum_steps(TrainConfig{}, 8), 1);
}

TEST(Config, ValidationRejectsBadShapesAndSchedules) {
  auto bad = [](auto edit) {
    ModelConfig c;
    edit(c);
    EXPECT_THROW(validate(c), Error);
  };
  bad([](ModelConfig& c) { c.model_dim = 500; });           // not divisible by heads
  bad([](ModelConfig& c) { c.num_kv_heads = 3; });          // heads % kv
  bad([](ModelConfig& c) { c.rope_dims = 7; });             // odd
  bad([](ModelConfig& c) { c.layer_schedule = {0, 9}; });   // block out of range
  bad([](ModelConfig& c) { c.num_layers = 3; c.layer_schedule = {0, 1, 1}; });  // block 2 unused
  bad([](ModelConfig& c) { c.ve_layers = {9}; });           // beyond 9 virtual layers
  bad([](ModelConfig& c) { c.vocab_size = 70000; });        // does not fit uint16 shards
  ModelConfig ok;
  EXPECT_NO_THROW(validate(ok));
}

int64_t count_params(const ModelConfig& c) { return make_plan(c).layout.count_elements(); }

// #686 (SEEDS.md §2): 11 blocks, layers 4,5 repeated, BigramHash 2048, VE128 at virtual
// 9,10, per-virtual-layer scalars; its log reports 26,998,380 parameters.
TEST(Plan, Seed686ShapeHasTheReferenceParameterCount) {
  ModelConfig c;
  c.num_layers = 11;
  c.layer_schedule = {0, 1, 2, 3, 4, 5, 4, 5, 6, 7, 8, 9, 10};
  c.mlp_mult = 3;
  c.bigram_vocab_size = 2048;
  c.ve_enabled = true;
  c.ve_layers = {9, 10};
  EXPECT_EQ(count_params(c), 26998380);
}

TEST(Plan, NamesShapesAndWiring) {
  ModelConfig c;
  c.num_layers = 3;
  c.layer_schedule = {0, 1, 2, 1, 2};
  c.model_dim = 64;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.value_residual = true;
  c.gated_attention = true;
  c.tie_embeddings = false;
  ModelPlan p = make_plan(c);
  auto shape = [&](const std::string& n) { return p.layout.info(p.layout.find(n)).shape; };
  EXPECT_EQ(shape("blocks.2.attn.c_k.weight"), (Shape{32, 64}));
  EXPECT_EQ(shape("blocks.4.attn.vr_lambda"), (Shape{2}));
  EXPECT_EQ(shape("blocks.4.attn.attn_gate.weight"), (Shape{4, 64}));
  EXPECT_EQ(shape("skip_weights"), (Shape{2, 64}));
  EXPECT_EQ(shape("lm_head.weight"), (Shape{1024, 64}));
  EXPECT_EQ(p.layout.find("blocks.3.attn.c_q.weight"), -1);  // only 3 physical blocks
  // 5 virtual layers: enc = 2, decoder layers 2 and 3 take encoders 1 and 0; 4 takes none.
  EXPECT_EQ(p.wiring[2].skip_from, 1);
  EXPECT_EQ(p.wiring[3].skip_from, 0);
  EXPECT_EQ(p.wiring[4].skip_in, -1);
  EXPECT_EQ(p.wiring[0].skip_out, 1);
  EXPECT_EQ(p.wiring[3].physical, 1);
  EXPECT_FALSE(p.wiring[0].value_residual);
  EXPECT_TRUE(p.wiring[1].value_residual);
}

// #686's form (SEEDS.md §2): RECUR_LAYERS=4,5 on 11 blocks gives
// v2p = [0,1,2,3,4,5,4,5,6,7,8,9,10].
TEST(Config, RecurLayersBuildTheScheduleOf686) {
  ModelConfig c;
  c.num_layers = 11;
  apply_json(c, json{{"recur_layers", "4,5"}}, "test");
  ASSERT_EQ(c.num_virtual(), 13);
  std::vector<int64_t> v2p;
  for (int64_t v = 0; v < c.num_virtual(); ++v) v2p.push_back(c.physical(v));
  EXPECT_EQ(v2p, (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 4, 5, 6, 7, 8, 9, 10}));
  const ModelPlan plan = make_plan(c);
  EXPECT_EQ(plan.wiring.size(), 13u);
  EXPECT_EQ(plan.wiring[7].physical, 5);
  c.recur_layers = {5};  // "recur layer 5 only"
  EXPECT_EQ(c.num_virtual(), 12);
  EXPECT_EQ(c.physical(6), 5);
  EXPECT_EQ(c.physical(7), 6);
  c.layer_schedule = {0, 1};
  EXPECT_THROW(validate(c), Error);  // not both
  c.layer_schedule.clear();
  c.recur_layers = {11};
  EXPECT_THROW(validate(c), Error);
}

}  // namespace
}  // namespace pgolf

