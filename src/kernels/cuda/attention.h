// Causal grouped-query attention on the GPU (SPEC §2, Block), the twin of
// kernels/cpu/attention.h: y = softmax(q k^T / sqrt(hd) + causal) v, query head h reads kv
// head h / (H/Hkv). FlashAttention-2: the forward keeps only the row log-sum-exp, the
// backward recomputes the probabilities tile by tile; nothing of size T×T is ever stored.
// q, k, v, y and the gradients in bf16 (16-byte aligned); scores, softmax, lse and every
// accumulator in fp32, products on the tensor cores (bf16 × bf16 → fp32).
// Head dims: multiples of 8 from 16 to 256 (attention_check).
#pragma once
#include <cstdint>

#include "core/cuda/runtime.h"

namespace pgolf::cuda {

// A pgolf::Error unless the kernels support this shape: H a multiple of Hkv > 0 and hd one
// of 16, 24, ..., 256. Host only (no device call), so a model can check its config early;
// both wrappers call it first.
void attention_check(int64_t H, int64_t Hkv, int64_t hd);

// q, y: [B, T, H, hd]; k, v: [B, T, Hkv, hd]; lse: [B, H, T] (fp32, natural log of the sum of
// exp of the scaled logits, as cpu::attention_forward). y is overwritten.
void attention_forward(Context& ctx, const bf16* q, const bf16* k, const bf16* v, bf16* y,
                       float* lse, int64_t B, int64_t T, int64_t H, int64_t Hkv, int64_t hd);

// dq += ∂/∂q, dk += ∂/∂k, dv += ∂/∂v given dy, the forward's inputs, y and lse (the CPU
// kernel's contract: every gradient accumulates, each element rounded to bf16 once, after its
// whole fp32 sum is added). Deterministic, no atomics: dk/dv are owned per (key tile, kv head)
// and dq per (query tile, head). Uses ctx.scratch for D = rowsum(dy ∘ y) (B·H·T floats).
void attention_backward(Context& ctx, const bf16* dy, const bf16* q, const bf16* k, const bf16* v,
                        const bf16* y, const float* lse, bf16* dq, bf16* dk, bf16* dv, int64_t B,
                        int64_t T, int64_t H, int64_t Hkv, int64_t hd);

}  // namespace pgolf::cuda
