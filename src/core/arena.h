// Arena<T>: activations planned once per (batch, seq) and reused every step. Planning hands
// out offsets (slots); bind() then points them into one storage buffer, which only grows, so
// switching between the training and the evaluation shape re-plans without reallocating.
// No allocation happens inside a forward or backward pass.
#pragma once
#include <cstdint>

#include "core/buffer.h"
#include "core/error.h"

namespace pgolf {

template <typename T>
class Arena {
 public:
  using Slot = int64_t;

  Slot plan(int64_t n) {
    PGOLF_CHECK(!base_, "internal: arena planned after it was bound");
    Slot s = used_;
    used_ += (n + 15) / 16 * 16;
    return s;
  }
  // Grows `storage` to the planned size if needed and carves the slots from it.
  void bind(Buffer<T>& storage) {
    if (storage.size() < used_) {
      storage.resize(0);  // free the old one first: peak memory stays at one arena
      storage.resize(used_);
    }
    base_ = storage.data();
  }
  T* at(Slot s) { return base_ + s; }
  int64_t size() const { return used_; }

 private:
  T* base_ = nullptr;
  int64_t used_ = 0;
};

}  // namespace pgolf
