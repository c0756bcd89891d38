// Buffer<T>: an owned, 64-byte aligned, zero-initialised array. Every parameter,
// gradient and activation in pgolf lives in one of these; tensors are views into it.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <span>

namespace pgolf {

template <typename T>
class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(int64_t n) { resize(n); }

  void resize(int64_t n) {
    size_ = n;
    if (n == 0) { data_.reset(); return; }
    size_t bytes = ((size_t(n) * sizeof(T) + 63) / 64) * 64;
    void* p = std::aligned_alloc(64, bytes);
    if (!p) throw std::bad_alloc();
    std::memset(p, 0, bytes);
    data_.reset(static_cast<T*>(p));
  }
  void zero() { if (size_) std::memset(data_.get(), 0, size_t(size_) * sizeof(T)); }

  T* data() { return data_.get(); }
  const T* data() const { return data_.get(); }
  int64_t size() const { return size_; }
  std::span<T> span() { return {data(), size_t(size_)}; }
  std::span<const T> span() const { return {data(), size_t(size_)}; }
  T& operator[](int64_t i) { return data_.get()[i]; }
  const T& operator[](int64_t i) const { return data_.get()[i]; }

 private:
  struct Free { void operator()(T* p) const { std::free(p); } };
  std::unique_ptr<T, Free> data_;
  int64_t size_ = 0;
};

}  // namespace pgolf
