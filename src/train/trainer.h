// `pgolf train` (SPEC §3, §6): the reference's training loop, on the CPU or one GPU
// (train/step_runner.h), with its outputs in RUN_DIR (config.json, log.txt, metrics.jsonl,
// checkpoint.safetensors while running, model.safetensors and summary.json at the end).
#pragma once
#include <cstdint>
#include <string>

#include "train/run_config.h"

namespace pgolf {

struct TrainOptions {
  std::string data_dir;        // SPEC §5 layout
  std::string tokenizer;       // default DATA_DIR/tokenizer.model
  std::string out_dir;         // RUN_DIR
  std::string init_checkpoint; // start from these weights instead of the seeded init
  bool resume = false;         // continue RUN_DIR/checkpoint.safetensors
  int64_t stop_at_step = 0;    // save a resumable checkpoint and stop there (0 = run on)
  std::string device = "auto"; // auto | cpu | cuda (core/device.h)
};

enum class TrainOutcome { kFinished, kStopped, kInterrupted };

// Runs (or resumes) a run. Throws pgolf::Error on bad input or a non-finite loss.
TrainOutcome train(RunConfig cfg, const TrainOptions& opt);

}  // namespace pgolf
