#include "model/checkpoint.h"

#include <cmath>
#include <vector>

#include "core/error.h"

namespace pgolf {

template <typename T>
io::StFile to_safetensors(const ModelPlan& plan, const T* buffer) {
  io::StFile file;
  file.metadata[kConfigMetadataKey] = to_json(plan.cfg).dump();
  std::vector<float> tmp;
  for (const auto& p : plan.layout.infos()) {
    tmp.assign(buffer + p.offset, buffer + p.offset + p.numel);
    file.add_f32(p.name, p.shape, tmp.data());
  }
  return file;
}

ModelConfig checkpoint_config(const io::StFile& file, const std::string& path) {
  auto it = file.metadata.find(kConfigMetadataKey);
  PGOLF_CHECK(it != file.metadata.end(), path, " has no __metadata__.", kConfigMetadataKey,
              " entry, so the model it holds is unknown (was it written by pgolf?)");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(it->second);
  } catch (const nlohmann::json::parse_error& e) {
    fail(path, ": __metadata__.", kConfigMetadataKey, " is not valid JSON (", e.what(), ")");
  }
  return config_from_json(j, path + " config");
}

template <typename T>
void load_tensors(const io::StFile& file, const std::string& path, const ModelPlan& plan,
                  T* values) {
  for (const auto& p : plan.layout.infos()) {
    const io::StTensor* t = file.find(p.name);
    PGOLF_CHECK(t, path, " is missing tensor ", p.name, " (shape ", to_string(p.shape), ")");
    PGOLF_CHECK(t->shape == p.shape, path, ": tensor ", p.name, " has shape ",
                to_string(t->shape), " but the config needs ", to_string(p.shape));
    PGOLF_CHECK(t->dtype == io::DType::F32 || t->dtype == io::DType::F64, path, ": tensor ",
                p.name, " has dtype ", io::dtype_name(t->dtype), ", expected F32");
    std::vector<double> v = t->to_f64();
    for (int64_t i = 0; i < p.numel; ++i) {
      PGOLF_CHECK(std::isfinite(v[size_t(i)]), path, ": tensor ", p.name,
                  " holds a non-finite value (", v[size_t(i)], ") at element ", i);
      values[p.offset + i] = T(v[size_t(i)]);
    }
  }
  for (const auto& t : file.tensors)
    PGOLF_CHECK(plan.layout.find(t.name) >= 0, path, " holds tensor ", t.name,
                ", which the model of its config does not have");
}

template <typename T>
std::unique_ptr<Model<T>> load_checkpoint(const std::string& path) {
  io::StFile file = io::read_safetensors(path);
  auto model = std::make_unique<Model<T>>(make_plan(checkpoint_config(file, path)));
  load_tensors(file, path, model->plan(), model->params().values().data());
  return model;
}

template <typename T>
void save_checkpoint(const std::string& path, const Model<T>& model) {
  io::write_safetensors(path, to_safetensors(model.plan(), model.params().values().data()));
}

#define PGOLF_INSTANTIATE(T)                                                              \
  template io::StFile to_safetensors<T>(const ModelPlan&, const T*);                      \
  template void load_tensors<T>(const io::StFile&, const std::string&, const ModelPlan&, \
                                T*);                                                      \
  template std::unique_ptr<Model<T>> load_checkpoint<T>(const std::string&);              \
  template void save_checkpoint<T>(const std::string&, const Model<T>&);
PGOLF_INSTANTIATE(float)
PGOLF_INSTANTIATE(double)
#undef PGOLF_INSTANTIATE

}  // namespace pgolf
