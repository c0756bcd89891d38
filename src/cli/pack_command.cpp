// `pgolf pack` (SPEC §6): checkpoint → artifact (SPEC §5), printing its size against the
// 16,000,000-byte cap. The quantiser's choices are options; the defaults are the reference's
// (SEEDS.md §1 "Quantisation and export").
#include <chrono>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/error.h"
#include "data/data_dir.h"
#include "io/size_budget.h"
#include "model/checkpoint.h"
#include "quant/artifact_model.h"
#include "quant/calibration.h"

namespace pgolf {

void add_pack_command(CLI::App& app) {
  struct Options {
    std::string checkpoint, out, data;
    quant::QuantOptions quant;
    int64_t calib_seqs = 32, calib_seq_len = 1024;
    bool json = false;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = app.add_subcommand(
      "pack", "Quantise a checkpoint into an artifact (int6 GPTQ-lite + int8 embeddings, "
              "zstd-22) and print its size against the 16,000,000-byte cap");
  cmd->add_option("--checkpoint", opt->checkpoint, "Checkpoint to pack (.safetensors)")
      ->required();
  cmd->add_option("--out", opt->out, "Artifact to write")->required();
  cmd->add_option("--bits", opt->quant.matrix_bits, "Bits of the block matrices (2..8)")
      ->check(CLI::Range(2, 8))
      ->capture_default_str();
  cmd->add_option("--mlp-bits", opt->quant.mlp_bits,
                  "Bits of mlp.fc / mlp.proj (0 = --bits)")
      ->check(CLI::Range(0, 8))
      ->capture_default_str();
  cmd->add_flag("--per-row-clip", opt->quant.per_row_clip,
                "Choose GPTQ-lite's clip per row instead of per matrix");
  cmd->add_option("--passthrough-max", opt->quant.passthrough_max_elements,
                  "Tensors of at most this many elements are stored as fp16, unquantised")
      ->capture_default_str();
  cmd->add_option("--prune", opt->quant.prune_fraction,
                  "#490's magnitude pruning: in every quantised matrix of more than 65,536 "
                  "elements, zero the weights whose |w| lies below this quantile of |w| "
                  "(0.02 = 2%; 0 = off)")
      ->capture_default_str();
  cmd->add_flag("--gptq", opt->quant.gptq,
                "Full GPTQ for the block matrices, calibrated on the --data training split");
  cmd->add_option("--data", opt->data, "Data directory whose training split calibrates --gptq");
  cmd->add_option("--calib-seqs", opt->calib_seqs, "GPTQ calibration sequences")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--calib-seq-len", opt->calib_seq_len, "GPTQ calibration sequence length")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_flag("--json", opt->json, "Print one JSON object instead of text");
  cmd->callback([opt] {
    const auto t0 = std::chrono::steady_clock::now();
    PGOLF_CHECK(opt->quant.prune_fraction >= 0 && opt->quant.prune_fraction < 1,
                "--prune is a fraction in [0, 1), got ", opt->quant.prune_fraction);
    PGOLF_CHECK(opt->quant.gptq == !opt->data.empty(),
                "--gptq calibrates on a training split: give both --gptq and --data DIR");
    auto model = load_checkpoint<float>(opt->checkpoint);
    quant::LayerHessians hessians;
    if (opt->quant.gptq)
      hessians = quant::collect_hessians_on_split(*model, find_data(opt->data).train_files,
                                                  opt->calib_seqs, opt->calib_seq_len);
    quant::write_model_artifact(opt->out, *model, opt->quant, &hessians);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const io::SizeBudget size = io::measure_size_budget(opt->out);
    if (opt->json) {
      nlohmann::json j = io::to_json(size);
      j["artifact"] = opt->out;
      j["seconds"] = seconds;
      std::printf("%s\n", j.dump().c_str());
    } else {
      std::printf("wrote %s: %s; packed in %.1f s\n", opt->out.c_str(),
                  io::describe(size).c_str(), seconds);
    }
  });
}

}  // namespace pgolf
