// Causal grouped-query attention (SPEC §2, Block): y = softmax(q k^T / sqrt(hd) + causal) v,
// query head h reads kv head h / (H/Hkv). Forward is fused with an online softmax over key
// tiles and keeps only the row log-sum-exp; the backward recomputes the probabilities
// tile by tile, so no T×T matrix per head is ever kept.
#pragma once
#include <cstdint>

namespace pgolf::cpu {

// q, y: [B, T, H, hd]; k, v: [B, T, Hkv, hd]; lse: [B, H, T] (natural log, scaled logits).
template <typename T>
void attention_forward(const T* q, const T* k, const T* v, T* y, T* lse, int64_t B, int64_t T_,
                       int64_t H, int64_t Hkv, int64_t hd);

// dq += ∂/∂q, dk += ∂/∂k, dv += ∂/∂v given dy, the forward's inputs, y and lse.
// Deterministic: one thread owns a (batch, kv head) pair with all its query heads.
template <typename T>
void attention_backward(const T* dy, const T* q, const T* k, const T* v, const T* y, const T* lse,
                        T* dq, T* dk, T* dv, int64_t B, int64_t T_, int64_t H, int64_t Hkv,
                        int64_t hd);

}  // namespace pgolf::cpu
