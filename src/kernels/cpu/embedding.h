// Embedding gather / scatter-add and the BigramHash index (SPEC §2, Embedding 1–2).
#pragma once
#include <cstdint>

namespace pgolf::cpu {

// out[i, :] = table[ids[i], :]  for i < n.
template <typename T>
void embedding_forward(const int32_t* ids, const T* table, T* out, int64_t n, int64_t dim);

// dtable[ids[i], :] += dout[i, :]. Deterministic: threads own column ranges, never rows.
template <typename T>
void embedding_backward(const int32_t* ids, const T* dout, T* dtable, int64_t n, int64_t dim);

// BigramHash index over B sequences of length T (SPEC §2 step 2):
// idx[b,0] = Bv-1; idx[b,t] = ((36313*x_t) XOR (27191*x_{t-1})) mod (Bv-1), products wrap
// as int32 and mod is floor-mod (non-negative), as torch computes it on int32 tensors.
void bigram_hash(const int32_t* tokens, int32_t* idx, int64_t B, int64_t T, int64_t bigram_vocab);

}  // namespace pgolf::cpu
