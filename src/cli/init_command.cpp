// `pgolf init`: a freshly initialised checkpoint (SPEC §2 Init) from a preset or config.
#include <cstdio>

#include "cli/commands.h"
#include "cli/config_options.h"
#include "model/checkpoint.h"
#include "model/init.h"

namespace pgolf {

void add_init_command(CLI::App& app) {
  struct Options {
    ConfigOptions config;
    uint64_t seed = 1337;
    std::string out;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("init", "Write a freshly initialised checkpoint");
  opt->config.add_to(*cmd);
  cmd->add_option("--seed", opt->seed, "Initialisation seed")->capture_default_str();
  cmd->add_option("--out", opt->out, "Checkpoint to write (.safetensors)")->required();
  cmd->callback([opt] {
    Model<float> model(make_plan(opt->config.resolve().model));
    init_params(model.plan(), model.params(), opt->seed);
    save_checkpoint(opt->out, model);
    std::printf("wrote %s: %lld parameters in %zu tensors\n", opt->out.c_str(),
                (long long)model.plan().layout.count_elements(),
                model.plan().layout.infos().size());
  });
}

}  // namespace pgolf
