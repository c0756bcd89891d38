#include "train/train_state.h"

#include <cstring>

#include "core/error.h"
#include "io/safetensors.h"

namespace pgolf {

using nlohmann::json;

namespace {

constexpr const char* kConfigKey = "pgolf_run_config";
constexpr const char* kProgressKey = "pgolf_progress";

std::vector<std::pair<std::string, std::span<float>>> named(const StateBuffers& b) {
  std::vector<std::pair<std::string, std::span<float>>> out{{"params", b.params}};
  if (!b.ema.empty()) out.push_back({"ema", b.ema});
  if (!b.swa.empty()) out.push_back({"swa", b.swa});
  for (auto& s : b.optimizers->state()) out.push_back({s.name, s.values});
  return out;
}

json metadata_json(const io::StFile& file, const char* key, const std::string& path) {
  auto it = file.metadata.find(key);
  PGOLF_CHECK(it != file.metadata.end(), path, " is not a pgolf training checkpoint (no ", key,
              " metadata)");
  try {
    return json::parse(it->second);
  } catch (const json::parse_error&) {
    fail(path, ": the ", key, " metadata is not valid JSON");
  }
}

}  // namespace

void save_train_state(const std::string& path, const RunConfig& cfg, const StateBuffers& buffers,
                      const TrainProgress& p) {
  io::StFile file;
  file.metadata[kConfigKey] = to_json(cfg).dump();
  file.metadata[kProgressKey] =
      json{{"step", p.step}, {"training_ms", p.training_ms}, {"data_file", p.data.file},
           {"data_offset", p.data.offset}, {"qat_active", p.qat_active},
           {"swa_count", p.swa_count}, {"adam_steps", buffers.optimizers->step_counts()},
           {"data_dir", p.data_dir}, {"tokenizer", p.tokenizer}}
          .dump();
  for (auto& [name, span] : named(buffers))
    file.add_f32(name, {int64_t(span.size())}, span.data());
  io::write_safetensors(path, file);
}

TrainStateHeader read_train_state_header(const std::string& path) {
  io::StFile file = io::read_safetensors(path);
  TrainStateHeader h;
  apply_json(h.cfg, metadata_json(file, kConfigKey, path), path);
  const json progress = metadata_json(file, kProgressKey, path);
  h.data_dir = progress.value("data_dir", "");
  h.tokenizer = progress.value("tokenizer", "");
  return h;
}

TrainProgress load_train_state(const std::string& path, const StateBuffers& buffers) {
  io::StFile file = io::read_safetensors(path);
  for (auto& [name, span] : named(buffers)) {
    const io::StTensor* t = file.find(name);
    PGOLF_CHECK(t, path, " is missing the training state tensor ", name);
    PGOLF_CHECK(t->dtype == io::DType::F32 && t->shape == Shape{int64_t(span.size())}, path,
                ": training state tensor ", name, " has shape ", to_string(t->shape),
                ", expected [", span.size(), "] F32");
    std::memcpy(span.data(), t->data.data(), span.size() * sizeof(float));
  }
  const json j = metadata_json(file, kProgressKey, path);
  TrainProgress p;
  try {
    p.step = j.at("step");
    p.training_ms = j.at("training_ms");
    p.data = {j.at("data_file"), j.at("data_offset")};
    p.qat_active = j.at("qat_active");
    p.swa_count = j.at("swa_count");
    p.data_dir = j.at("data_dir");
    p.tokenizer = j.at("tokenizer");
    buffers.optimizers->set_step_counts(j.at("adam_steps").get<std::vector<int64_t>>());
  } catch (const json::exception& e) {
    fail(path, ": the ", kProgressKey, " metadata is incomplete (", e.what(), ")");
  }
  return p;
}

}  // namespace pgolf
