// Building a run config from the command line: --preset, --config, the reference's
// environment variables, then --set key=value (later ones win, in that order).
#pragma once
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "train/run_config.h"

namespace pgolf {

struct ConfigOptions {
  std::string preset;
  std::string config_file;
  std::vector<std::string> settings;

  void add_to(CLI::App& cmd);
  RunConfig resolve() const;
};

}  // namespace pgolf
