// `pgolf train` (SPEC §6): --preset/--config/--set build the run config; --data names the
// data directory; --out the run directory. Ctrl-C saves a resumable checkpoint.
#include "cli/commands.h"
#include "cli/config_options.h"
#include "core/error.h"
#include "train/trainer.h"

namespace pgolf {

void add_train_command(CLI::App& app) {
  struct Options {
    ConfigOptions config;
    TrainOptions train;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = app.add_subcommand(
      "train",
      "Train a model; writes RUN_DIR: config.json, log.txt, metrics.jsonl, model.safetensors, "
      "model.pgolf (the artifact, scored after decoding), summary.json");
  cmd->footer("Data parallel: mpirun -np N pgolf train ... runs N ranks over the same global "
              "batch; only rank 0 prints and writes (docs/distributed.md).");
  opt->config.add_to(*cmd);
  cmd->add_option("--data", opt->train.data_dir,
                  "Data directory: *_train_*.bin, *_val_*.bin, tokenizer.model (pgolf data)");
  cmd->add_option("--tokenizer", opt->train.tokenizer,
                  "SentencePiece model (default DATA/tokenizer.model)");
  cmd->add_option("--out", opt->train.out_dir, "Run directory to write")->required();
  cmd->add_option("--init", opt->train.init_checkpoint,
                  "Start from these weights (a checkpoint of the same model config)");
  cmd->add_flag("--resume", opt->train.resume,
                "Continue the run in --out from its checkpoint.safetensors");
  cmd->add_option("--stop-at-step", opt->train.stop_at_step,
                  "Save a resumable checkpoint at this step and exit");
  cmd->add_option("--device", opt->train.device,
                  "Where to train: auto (a CUDA GPU when this build has CUDA and one is "
                  "present, else the CPU), cpu, or cuda")
      ->capture_default_str();
  cmd->callback([opt] {
    const bool has_config = !opt->config.preset.empty() || !opt->config.config_file.empty() ||
                            !opt->config.settings.empty();
    if (opt->train.resume) {
      PGOLF_CHECK(!has_config && opt->train.init_checkpoint.empty(),
                  "--resume continues a run with its own config; drop --preset/--config/--set/"
                  "--init");
    } else {
      PGOLF_CHECK(!opt->train.data_dir.empty(), "--data is required (make one with pgolf data)");
    }
    const TrainOutcome outcome =
        train(opt->train.resume ? RunConfig{} : opt->config.resolve(), opt->train);
    if (outcome == TrainOutcome::kInterrupted) throw CLI::RuntimeError(130);
  });
}

}  // namespace pgolf
