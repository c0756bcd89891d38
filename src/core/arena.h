// Arena<T>: activations planned once per (batch, seq) and reused every step.
// Planning hands out offsets (slots); allocate() then makes one buffer that
// holds them all. No allocation happens inside a forward or backward pass.
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
    PGOLF_CHECK(!allocated_, "internal: arena planned after allocation");
    Slot s = used_;
    used_ += (n + 15) / 16 * 16;
    return s;
  }
  void allocate() {
    buffer_.resize(used_);
    allocated_ = true;
  }
  T* at(Slot s) { return buffer_.data() + s; }
  int64_t size() const { return used_; }

 private:
  Buffer<T> buffer_;
  int64_t used_ = 0;
  bool allocated_ = false;
};

}  // namespace pgolf
