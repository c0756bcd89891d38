// The train keys of the stages after training (train/stage_options.h): every quant_* / ttt_*
// key reaches QuantOptions / TttOptions, the new ones parse from --set and JSON, and bad
// values are one-sentence config errors.
#include "train/stage_options.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "train/run_config.h"

using namespace pgolf;

namespace {

// A RunConfig that validates (the default batch arithmetic holds), with `key=value` applied.
RunConfig with(std::initializer_list<std::pair<const char*, const char*>> settings) {
  RunConfig cfg;
  for (auto [k, v] : settings) apply_setting(cfg, k, v, "--set");
  return cfg;
}

std::string error_of(const RunConfig& cfg) {
  try {
    validate(cfg);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(StageOptions, EveryQuantKeyReachesQuantOptions) {
  const RunConfig cfg = with({{"quant_bits", "5"}, {"quant_mlp_bits", "4"},
                              {"quant_clip_per_row", "true"}, {"quant_passthrough_max", "7"},
                              {"gptq", "true"}, {"quant_prune", "0.02"}});
  EXPECT_EQ(error_of(cfg), "");
  const quant::QuantOptions q = quant_options(cfg.train);
  EXPECT_EQ(q.matrix_bits, 5);
  EXPECT_EQ(q.mlp_bits, 4);
  EXPECT_TRUE(q.per_row_clip);
  EXPECT_EQ(q.passthrough_max_elements, 7);
  EXPECT_TRUE(q.gptq);
  EXPECT_EQ(q.prune_fraction, 0.02);
  // Defaults: the reference's quantiser, no pruning.
  const quant::QuantOptions d = quant_options(TrainConfig{});
  const quant::QuantOptions ref;
  EXPECT_EQ(d.matrix_bits, ref.matrix_bits);
  EXPECT_EQ(d.mlp_bits, ref.mlp_bits);
  EXPECT_EQ(d.passthrough_max_elements, ref.passthrough_max_elements);
  EXPECT_EQ(d.prune_fraction, 0.0);
}

TEST(StageOptions, EveryTttKeyReachesTttOptions) {
  const RunConfig cfg = with({{"ttt_lr", "0.0001"}, {"ttt_epochs", "2"},
                              {"ttt_chunk_tokens", "131072"}, {"ttt_momentum", "0.5"},
                              {"ttt_batch_seqs", "16"}, {"ttt_grad_clip", "0.7"},
                              {"ttt_optimizer", "adamw"}, {"ttt_adapt_last", "2"},
                              {"ttt_temperature", "0.98"}, {"ttt_untie", "true"}});
  EXPECT_EQ(error_of(cfg), "");
  const TttOptions o = ttt_options(cfg.train);
  EXPECT_EQ(o.lr, 0.0001);
  EXPECT_EQ(o.epochs, 2);
  EXPECT_EQ(o.chunk_tokens, 131072);
  EXPECT_EQ(o.momentum, 0.5);
  EXPECT_EQ(o.batch_seqs, 16);
  EXPECT_EQ(o.grad_clip, 0.7);
  EXPECT_EQ(o.optimizer, "adamw");
  EXPECT_EQ(o.adapt_last, 2);
  EXPECT_EQ(o.freeze_blocks, 0);
  EXPECT_EQ(o.temperature, 0.98);
  EXPECT_TRUE(o.untie);
  EXPECT_EQ(ttt_options(with({{"ttt_freeze_blocks", "3"}}).train).freeze_blocks, 3);
  // Defaults: TttOptions' own (the reference's SGD recipe).
  const TttOptions d = ttt_options(TrainConfig{});
  const TttOptions ref;
  EXPECT_EQ(d.lr, ref.lr);
  EXPECT_EQ(d.chunk_tokens, ref.chunk_tokens);
  EXPECT_EQ(d.optimizer, ref.optimizer);
  EXPECT_EQ(d.adapt_last, ref.adapt_last);
  EXPECT_EQ(d.temperature, ref.temperature);
  EXPECT_EQ(d.micro_seqs, ref.micro_seqs);
  EXPECT_EQ(d.untie, ref.untie);
}

TEST(StageOptions, BadValuesAreConfigErrors) {
  auto expect_error = [](const RunConfig& cfg, const std::string& key) {
    const std::string e = error_of(cfg);
    EXPECT_NE(e.find(key), std::string::npos) << "expected an error naming " << key << ", got \""
                                              << e << "\"";
  };
  expect_error(with({{"ttt_optimizer", "adam"}}), "ttt_optimizer");
  expect_error(with({{"ttt_temperature", "0"}}), "ttt_temperature");
  expect_error(with({{"ttt_adapt_last", "-1"}}), "ttt_adapt_last");
  expect_error(with({{"ttt_adapt_last", "2"}, {"ttt_freeze_blocks", "1"}}), "ttt_freeze_blocks");
  expect_error(with({{"quant_prune", "1"}}), "quant_prune");
  expect_error(with({{"quant_prune", "-0.1"}}), "quant_prune");
  // A string key takes only a string, a bool key only a bool.
  RunConfig cfg;
  EXPECT_THROW(apply_json(cfg, {{"ttt_optimizer", 3}}, "test"), Error);
  EXPECT_THROW(apply_json(cfg, {{"attn_gate_muon", "yes"}}, "test"), Error);
  apply_json(cfg, {{"attn_gate_muon", true}}, "test");
  EXPECT_TRUE(cfg.train.attn_gate_muon);
  EXPECT_EQ(to_json(cfg)["ttt_optimizer"], "sgd");  // every key is written to config.json
  EXPECT_EQ(to_json(cfg)["quant_prune"], 0.0);
}
