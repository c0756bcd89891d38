// Building a model config from the command line: --preset, --config, the reference's
// environment variables, then --set key=value (later ones win, in that order).
#pragma once
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "model/config.h"

namespace pgolf {

struct ConfigOptions {
  std::string preset;
  std::string config_file;
  std::vector<std::string> settings;

  void add_to(CLI::App& cmd);
  ModelConfig resolve() const;
};

}  // namespace pgolf
