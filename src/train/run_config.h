// RunConfig: the model keys and the training keys together, as the reference keeps its
// hyperparameters in one flat namespace. A config file, preset, environment variable or
// --set names any key of either; a key of neither is an error.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "model/config.h"
#include "train/train_config.h"

namespace pgolf {

struct RunConfig {
  ModelConfig model;
  TrainConfig train;
};

void apply_json(RunConfig& cfg, const nlohmann::json& j, const std::string& where);
// One flat object with every key (what RUN_DIR/config.json holds).
nlohmann::json to_json(const RunConfig& cfg);
// `key=value` from --set; the value is JSON, or a bare string ("9,10").
void apply_setting(RunConfig& cfg, const std::string& key, const std::string& value,
                   const std::string& where);
// The reference's environment variables (NUM_LAYERS=11, MATRIX_LR=0.025, ...).
void apply_env_overrides(RunConfig& cfg);
// The model's checks plus the training keys' ranges and the batch arithmetic.
void validate(const RunConfig& cfg, int64_t world_size = 1);

// Micro-steps per optimizer step: the key, or 8 / world_size as the reference.
int64_t grad_accum_steps(const TrainConfig& t, int64_t world_size);

}  // namespace pgolf
