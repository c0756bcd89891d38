#include "cli/config_options.h"

#include <fstream>
#include <sstream>

#include "cli/presets.h"
#include "core/error.h"

namespace pgolf {

void ConfigOptions::add_to(CLI::App& cmd) {
  std::string names;
  for (const auto& p : presets()) names += (names.empty() ? "" : ", ") + std::string(p.name);
  cmd.add_option("--preset", preset, "Start from a built-in preset (" + names + ")");
  cmd.add_option("--config", config_file, "Start from (or apply) a JSON config file");
  cmd.add_option("--set", settings, "Override one key: --set key=value (repeatable)");
}

RunConfig ConfigOptions::resolve() const {
  RunConfig cfg;
  if (!preset.empty()) {
    const Preset* found = nullptr;
    for (const auto& p : presets())
      if (preset == p.name) found = &p;
    PGOLF_CHECK(found, "unknown preset \"", preset, "\" (see pgolf init --help for the list)");
    apply_json(cfg, nlohmann::json::parse(found->json), "preset " + preset);
  }
  if (!config_file.empty()) {
    std::ifstream in(config_file);
    PGOLF_CHECK(in, "cannot open config file ", config_file);
    std::stringstream text;
    text << in.rdbuf();
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(text.str());
    } catch (const nlohmann::json::parse_error& e) {
      fail(config_file, " is not valid JSON (", e.what(), ")");
    }
    apply_json(cfg, j, config_file);
  }
  apply_env_overrides(cfg);
  for (const auto& s : settings) {
    auto eq = s.find('=');
    PGOLF_CHECK(eq != std::string::npos && eq > 0, "--set expects key=value, got \"", s, "\"");
    apply_setting(cfg, s.substr(0, eq), s.substr(eq + 1), "--set");
  }
  validate(cfg);
  return cfg;
}

}  // namespace pgolf
