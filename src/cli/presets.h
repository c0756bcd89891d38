// Presets (SPEC §7): the JSON files of configs/, embedded at build time.
#pragma once
#include <string>
#include <vector>

namespace pgolf {

struct Preset {
  const char* name;
  const char* json;
};

const std::vector<Preset>& presets();

}  // namespace pgolf
