// Logit softcap and cross-entropy on the GPU (SPEC §2, Head), the twin of
// kernels/cpu/cross_entropy.h: l = c tanh(z / c) (c <= 0: l = z), loss per row =
// logsumexp(l) - l[target]. z is [rows, V], the head's output: fp32, or bf16 as the
// reference's autocast head gives it; either way every step of the loss is fp32 (SPEC mixed
// precision: softmax and losses in fp32).
#pragma once
#include <cstdint>

#include "core/cuda/runtime.h"

namespace pgolf::cuda {

// losses[r] = CE(c tanh(z[r]/c) / temperature, targets[r]); the temperature (scoring only,
// #490: 0.98) divides the capped logits; training uses 1. Z is float or bf16.
template <typename Z>
void softcap_ce_forward(Context& ctx, const Z* z, const int32_t* targets, float* losses,
                        int64_t rows, int64_t V, float cap, float temperature = 1.0f);

// dz[r,:] (+)= dloss[r] (softmax(l) - onehot(target)) (1 - tanh²(z/c)), recomputed from z in
// fp32 and rounded to bf16 (the operand of the head's backward GEMMs). accumulate = false
// overwrites dz.
template <typename Z>
void softcap_ce_backward(Context& ctx, const Z* z, const int32_t* targets, const float* dloss,
                         bf16* dz, int64_t rows, int64_t V, float cap, bool accumulate = true);

// *total += (sum of losses[0..rows)) / rows in double: the mean loss added to a device
// accumulator, so that neither the per-token losses nor the sum leave the device (a CUDA graph
// can replay it). Deterministic: reduce.cuh's fixed-order two passes, fp32 partials of 64
// losses, a double total; the sum agrees with a sequential double sum to ~64 fp32 roundings.
void add_mean_loss(Context& ctx, const float* losses, int64_t rows, double* total);

}  // namespace pgolf::cuda
