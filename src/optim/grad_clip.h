// Global gradient-norm clipping (SPEC §3, grad_clip_norm; 0 = off, which is the caller's
// to skip), on the one span of all gradients (ParamStore::grads(); its zero padding adds
// nothing to the norm).
#pragma once
#include <span>

namespace pgolf {

// sqrt(sum g^2), accumulated in double in fixed chunks and lanes: the same bits for any
// thread count.
double global_grad_norm(std::span<const float> grads);
double global_grad_norm(std::span<const double> grads);

// torch.nn.utils.clip_grad_norm_'s factor for a gradient of this norm: max_norm / (norm +
// 1e-6) when that is below 1, else 1 (no change). max_norm must be positive.
double clip_coefficient(double norm, double max_norm);

// torch.nn.utils.clip_grad_norm_: coef = max_norm / (norm + 1e-6); when coef < 1 every
// gradient is multiplied by coef (rounded to the gradients' type). Returns the norm before
// clipping. max_norm must be positive.
double clip_grad_norm(std::span<float> grads, double max_norm);
double clip_grad_norm(std::span<double> grads, double max_norm);

}  // namespace pgolf
