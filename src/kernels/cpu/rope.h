// Partial rotary position embedding (SPEC §2, Block): the first `rdims` dims of each head
// (rdims even; 0 means all of hd) rotate in halves x1 = z[:r/2], x2 = z[r/2:r]:
// out = [x1 cos + x2 sin, -x1 sin + x2 cos], angle = t * inv_freq_j, inv_freq_j =
// 1/base^(2j/r); when seq_len > train_seq_len the base becomes
// base * (seq_len/train_seq_len)^(r/(r-2)). Dims past r pass through.
#pragma once
#include <cstdint>

namespace pgolf::cpu {

// cos, sin: [seq_len, rdims/2], computed in T. Here rdims must already be resolved (> 0, even;
// rdims = 2 cannot take the long-sequence rescale): a pgolf::Error otherwise.
template <typename T>
void rope_tables(int64_t seq_len, int64_t rdims, double base, int64_t train_seq_len, T* cos,
                 T* sin);

// x, out: [B, seq_len, heads, hd]; out may alias x.
template <typename T>
void rope_forward(const T* x, T* out, const T* cos, const T* sin, int64_t B, int64_t seq_len,
                  int64_t heads, int64_t hd, int64_t rdims);

// dx += R^T dout (the inverse rotation; pass-through dims add dout). dx may not alias dout.
template <typename T>
void rope_backward(const T* dout, T* dx, const T* cos, const T* sin, int64_t B, int64_t seq_len,
                   int64_t heads, int64_t hd, int64_t rdims);

}  // namespace pgolf::cpu
