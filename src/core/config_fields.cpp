#include "core/config_fields.h"

#include <cctype>
#include <sstream>

#include "core/error.h"

namespace pgolf {

using nlohmann::json;

void read_value(const json& v, int64_t& out, const std::string& key, const std::string& where) {
  if (v.is_number_integer()) {
    out = v.get<int64_t>();
    return;
  }
  if (v.is_number_float() && v.get<double>() == double(int64_t(v.get<double>()))) {
    out = int64_t(v.get<double>());
    return;
  }
  fail(where, ": key ", key, " must be an integer, got ", v.dump());
}

void read_value(const json& v, double& out, const std::string& key, const std::string& where) {
  PGOLF_CHECK(v.is_number(), where, ": key ", key, " must be a number, got ", v.dump());
  out = v.get<double>();
}

void read_value(const json& v, bool& out, const std::string& key, const std::string& where) {
  if (v.is_boolean()) {
    out = v.get<bool>();
    return;
  }
  // The reference's environment variables spell switches as 0/1.
  if (v.is_number_integer() && (v.get<int64_t>() == 0 || v.get<int64_t>() == 1)) {
    out = v.get<int64_t>() == 1;
    return;
  }
  fail(where, ": key ", key, " must be true or false, got ", v.dump());
}

namespace {
// A list key: a JSON list, one number, or the reference's comma-separated string form
// ("9,10"); `parse` reads one item of that string with std::stoll / std::stod.
template <typename X, typename Parse>
void read_list(const json& v, std::vector<X>& out, const std::string& key,
               const std::string& where, const char* what, Parse parse) {
  out.clear();
  if (v.is_number()) {  // one entry: "--set ve_layers=9", VE_LAYERS=9
    X x{};
    read_value(v, x, key, where);
    out.push_back(x);
    return;
  }
  if (v.is_string()) {
    std::stringstream ss(v.get<std::string>());
    std::string item;
    while (std::getline(ss, item, ',')) {
      if (item.find_first_not_of(" \t") == std::string::npos) continue;
      size_t used = 0;
      X x{};
      try {
        x = parse(item, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      PGOLF_CHECK(used > 0 && item.find_first_not_of(" \t", used) == std::string::npos, where,
                  ": key ", key, " must be a list of ", what, ", got \"", v.get<std::string>(),
                  "\"");
      out.push_back(x);
    }
    return;
  }
  PGOLF_CHECK(v.is_array(), where, ": key ", key, " must be a list of ", what, ", got ",
              v.dump());
  for (const auto& e : v) {
    X x{};
    read_value(e, x, key, where);
    out.push_back(x);
  }
}
}  // namespace

void read_value(const json& v, std::vector<int64_t>& out, const std::string& key,
                const std::string& where) {
  read_list(v, out, key, where, "integers",
            [](const std::string& s, size_t* used) { return int64_t(std::stoll(s, used)); });
}

void read_value(const json& v, std::vector<double>& out, const std::string& key,
                const std::string& where) {
  read_list(v, out, key, where, "numbers",
            [](const std::string& s, size_t* used) { return std::stod(s, used); });
}

void read_value(const json& v, std::string& out, const std::string& key,
                const std::string& where) {
  PGOLF_CHECK(v.is_string(), where, ": key ", key, " must be a string, got ", v.dump());
  out = v.get<std::string>();
}

json parse_setting(const std::string& value) {
  try {
    return json::parse(value);
  } catch (const json::parse_error&) {
    return value;  // not JSON: a bare string such as "9,10"
  }
}

std::string env_name(const std::string& key) {
  std::string env;
  for (char c : key) env += char(std::toupper(static_cast<unsigned char>(c)));
  return env;
}

}  // namespace pgolf
