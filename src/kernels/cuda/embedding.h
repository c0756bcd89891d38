// Embedding gather / scatter-add and the BigramHash index on the GPU (SPEC §2, Embedding
// 1–2), the twin of kernels/cpu/embedding.h. Tables are fp32 master weights with fp32
// gradients; the gathered rows are bf16 activations.
#pragma once
#include <cstdint>

#include "core/cuda/runtime.h"

namespace pgolf::cuda {

// out[i, :] = bf16(table[ids[i], :]) for i < n.
void embedding_forward(Context& ctx, const int32_t* ids, const float* table, bf16* out,
                       int64_t n, int64_t dim);

// dtable[ids[i], :] += dout[i, :] in fp32 with atomicAdd: repeated ids add in no fixed order,
// so the low bits of such rows may differ between runs (unlike the CPU kernel).
void embedding_backward(Context& ctx, const int32_t* ids, const bf16* dout, float* dtable,
                        int64_t n, int64_t dim);

// BigramHash index over B sequences of length T (SPEC §2 step 2), exactly as cpu::bigram_hash:
// idx[b,0] = Bv-1; idx[b,t] = ((36313 x_t) XOR (27191 x_{t-1})) floor-mod (Bv-1), int32 wrap.
void bigram_hash(Context& ctx, const int32_t* tokens, int32_t* idx, int64_t B, int64_t T,
                 int64_t bigram_vocab);

}  // namespace pgolf::cuda
