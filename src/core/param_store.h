// ParamStore<T>: every parameter of a model in ONE contiguous buffer, carved into
// named views by a layout table (llm.c's fill_in_parameter_sizes), with a twin
// buffer for gradients. Optimizers, EMA, checkpoints and all-reduce each work on
// the single span values()/grads().
#pragma once
#include <map>
#include <span>
#include <string>
#include <vector>

#include "core/buffer.h"
#include "core/error.h"
#include "core/shape.h"

namespace pgolf {

struct ParamInfo {
  std::string name;
  Shape shape;
  int64_t offset = 0;  // elements from the start of the buffer
  int64_t numel = 0;
};

// The type-independent table: names, shapes and offsets. Offsets are padded to
// 16 elements so every view starts 64-byte aligned in float.
class ParamLayout {
 public:
  int add(const std::string& name, const Shape& shape) {
    PGOLF_CHECK(!index_.count(name), "parameter ", name, " is declared twice");
    ParamInfo info{name, shape, total_, pgolf::numel(shape)};
    total_ += (info.numel + 15) / 16 * 16;
    index_[name] = int(infos_.size());
    infos_.push_back(info);
    return int(infos_.size()) - 1;
  }
  int find(const std::string& name) const {
    auto it = index_.find(name);
    return it == index_.end() ? -1 : it->second;
  }
  const std::vector<ParamInfo>& infos() const { return infos_; }
  const ParamInfo& info(int i) const { return infos_[i]; }
  int64_t total() const { return total_; }
  int64_t count_elements() const {
    int64_t n = 0;
    for (auto& p : infos_) n += p.numel;
    return n;
  }

 private:
  std::vector<ParamInfo> infos_;
  std::map<std::string, int> index_;
  int64_t total_ = 0;
};

template <typename T>
class ParamStore {
 public:
  explicit ParamStore(ParamLayout layout)
      : layout_(std::move(layout)), values_(layout_.total()), grads_(layout_.total()) {}

  const ParamLayout& layout() const { return layout_; }
  T* value(int i) { return i < 0 ? nullptr : values_.data() + layout_.info(i).offset; }
  const T* value(int i) const { return i < 0 ? nullptr : values_.data() + layout_.info(i).offset; }
  T* grad(int i) { return i < 0 ? nullptr : grads_.data() + layout_.info(i).offset; }
  const T* grad(int i) const { return i < 0 ? nullptr : grads_.data() + layout_.info(i).offset; }

  std::span<T> values() { return values_.span(); }
  std::span<const T> values() const { return values_.span(); }
  std::span<T> grads() { return grads_.span(); }
  std::span<const T> grads() const { return grads_.span(); }
  void zero_grads() { grads_.zero(); }

 private:
  ParamLayout layout_;
  Buffer<T> values_;
  Buffer<T> grads_;
};

}  // namespace pgolf
