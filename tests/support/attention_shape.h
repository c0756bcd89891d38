// An attention test's shape (q, y: [B, T, H, hd]; k, v: [B, T, Hkv, hd]; lse: [B, H, T]),
// shared by the CPU kernel tests and the CUDA ones, which check the same layouts.
#pragma once
#include <cstdint>

namespace pgolf::test {

struct AttentionShape {
  int64_t B, T, H, Hkv, hd;
  int64_t q_size() const { return B * T * H * hd; }
  int64_t kv_size() const { return B * T * Hkv * hd; }
  int64_t lse_size() const { return B * H * T; }
};

}  // namespace pgolf::test
