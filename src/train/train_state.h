// Resumable training state: RUN_DIR/checkpoint.safetensors holds the weights, every
// optimizer buffer, the EMA and SWA buffers (all as flat F32 tensors, bit-exact), and in
// its metadata the run config and where the run stands (step, training time, data stream
// position, QAT switch, AdamW step counts). Restoring it continues a run bitwise as if it
// had never stopped (same seed, same thread count).
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "data/token_stream.h"
#include "train/optimizer_set.h"
#include "train/run_config.h"

namespace pgolf {

struct TrainProgress {
  int64_t step = 0;
  double training_ms = 0;
  TokenStream::Position data;
  bool qat_active = false;
  int64_t swa_count = 0;
  std::string data_dir, tokenizer;
};

// The buffers that make up the state, by name (each saved and restored whole).
struct StateBuffers {
  std::span<float> params, ema, swa;  // ema / swa empty when off
  OptimizerSet* optimizers;
};

void save_train_state(const std::string& path, const RunConfig& cfg, const StateBuffers& buffers,
                      const TrainProgress& progress);

// What a checkpoint was written with (to rebuild the run before restoring it).
struct TrainStateHeader {
  RunConfig cfg;
  std::string data_dir, tokenizer;
};
TrainStateHeader read_train_state_header(const std::string& path);

// Restores every buffer; the sizes must match the ones saved.
TrainProgress load_train_state(const std::string& path, const StateBuffers& buffers);

}  // namespace pgolf
