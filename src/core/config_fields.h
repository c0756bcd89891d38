// Config structs (ModelConfig, TrainConfig) expose their keys through one field table,
// `for_each_field(f)` calling f(name, field). These helpers turn that table into JSON
// reading and writing, environment overrides and --set parsing, so every key behaves the
// same way and a key cannot be wired into one of them and forgotten in another.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace pgolf {

// Typed reads with one-sentence errors naming the key and `where` (the source).
void read_value(const nlohmann::json& v, int64_t& out, const std::string& key,
                const std::string& where);
void read_value(const nlohmann::json& v, double& out, const std::string& key,
                const std::string& where);
void read_value(const nlohmann::json& v, bool& out, const std::string& key,
                const std::string& where);
// Lists accept a JSON list, one integer, or the reference's "9,10" string.
void read_value(const nlohmann::json& v, std::vector<int64_t>& out, const std::string& key,
                const std::string& where);

// A string key (a mode name such as "block"); which names are valid is validate()'s job.
void read_value(const nlohmann::json& v, std::string& out, const std::string& key,
                const std::string& where);
// A list of numbers: a JSON list, one number, or a "0.4,0.65" string.
void read_value(const nlohmann::json& v, std::vector<double>& out, const std::string& key,
                const std::string& where);

// A --set or environment value: JSON when it parses, else the bare string.
nlohmann::json parse_setting(const std::string& value);

// The environment variable of a key: its name in upper case (the reference's spelling).
std::string env_name(const std::string& key);

// Sets `key` from `v` if cfg has that key; returns whether it did.
template <typename Cfg>
bool set_field(Cfg& cfg, const std::string& key, const nlohmann::json& v, const std::string& where) {
  bool known = false;
  cfg.for_each_field([&](const char* name, auto& field) {
    if (key == name) {
      read_value(v, field, key, where);
      known = true;
    }
  });
  return known;
}

// Adds every key of cfg to `out`.
template <typename Cfg>
void fields_to_json(const Cfg& cfg, nlohmann::json& out) {
  cfg.for_each_field([&](const char* name, const auto& field) { out[name] = field; });
}

// Adds to `out` every key of cfg whose environment variable is set.
template <typename Cfg>
void env_settings(const Cfg& cfg, nlohmann::json& out);

}  // namespace pgolf

#include <cstdlib>

template <typename Cfg>
void pgolf::env_settings(const Cfg& cfg, nlohmann::json& out) {
  cfg.for_each_field([&](const char* name, const auto&) {
    if (const char* value = std::getenv(env_name(name).c_str())) out[name] = parse_setting(value);
  });
}
