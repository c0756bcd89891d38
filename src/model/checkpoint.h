// Checkpoints (SPEC §5): safetensors with the reference's tensor names and the model config
// as JSON in __metadata__.pgolf_config, so a checkpoint alone rebuilds the model. Loading
// checks names, shapes and dtypes and reports the first mismatch in one sentence.
#pragma once
#include <memory>
#include <string>

#include "io/safetensors.h"
#include "model/model.h"

namespace pgolf {

inline constexpr const char* kConfigMetadataKey = "pgolf_config";

// The tensors of one buffer laid out by `plan` (parameters or their gradients), F32,
// with the config in the metadata.
template <typename T>
io::StFile to_safetensors(const ModelPlan& plan, const T* buffer);

// The config stored in a checkpoint's metadata; `path` names the file in errors.
ModelConfig checkpoint_config(const io::StFile& file, const std::string& path);

// Copies every parameter of `plan` from `file` into `values` (the ParamStore's value
// buffer). Every name must be present with its shape and a float dtype, and no other
// tensor may be present.
template <typename T>
void load_tensors(const io::StFile& file, const std::string& path, const ModelPlan& plan,
                  T* values);

// Reads a checkpoint and builds the model it describes.
template <typename T>
std::unique_ptr<Model<T>> load_checkpoint(const std::string& path);

// Writes the model's parameters (atomically).
template <typename T>
void save_checkpoint(const std::string& path, const Model<T>& model);

}  // namespace pgolf
