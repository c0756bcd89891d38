// Weight averaging of SPEC §3, on flat spans of all weights (ParamStore::values()).
// EMA (decay 0.997, applied at the end): the caller starts it as a copy of the weights.
// SWA: snapshots summed while the LR multiplier < 0.2, then divided by their count; a sum
// that starts at zero makes the first accumulate the reference's clone.
// All element-wise: the bits do not depend on the thread count.
#pragma once
#include <cstdint>
#include <span>

namespace pgolf {

// ema = decay * ema + (1 - decay) * p   (the reference: ema.mul_(d).add_(p, alpha=1-d)).
void ema_update(std::span<float> ema, std::span<const float> params, double decay);
void ema_update(std::span<double> ema, std::span<const double> params, double decay);

// sum += p.
void swa_accumulate(std::span<float> sum, std::span<const float> params);
void swa_accumulate(std::span<double> sum, std::span<const double> params);

// out = sum / count   (the reference: t / swa_count). count must be positive.
void swa_average(std::span<const float> sum, int64_t count, std::span<float> out);
void swa_average(std::span<const double> sum, int64_t count, std::span<double> out);

}  // namespace pgolf
