// The reference's schedules (SPEC §3): the LR multiplier with its warmdown by iterations or
// by wall clock, and the linear Muon momentum warm-up.
#pragma once
#include <algorithm>
#include <cstdint>

#include "train/train_config.h"

namespace pgolf {

// 1 until warmdown, then linear to 0. Without a wall-clock cap the warmdown is the last
// warmdown_iters steps; with one, it starts when the remaining time is less than
// warmdown_iters average steps: remaining_ms / (warmdown_iters * elapsed_ms / step).
inline double lr_multiplier(const TrainConfig& t, int64_t step, double elapsed_ms) {
  if (t.warmdown_iters <= 0) return 1.0;
  if (t.max_wallclock_seconds <= 0) {
    const int64_t start = std::max<int64_t>(t.iterations - t.warmdown_iters, 0);
    if (step < start || step >= t.iterations) return 1.0;
    return std::max(double(t.iterations - step) / double(std::max<int64_t>(t.warmdown_iters, 1)),
                    0.0);
  }
  const double step_ms = elapsed_ms / double(std::max<int64_t>(step, 1));
  const double warmdown_ms = double(t.warmdown_iters) * step_ms;
  const double remaining_ms = std::max(t.max_wallclock_seconds * 1000.0 - elapsed_ms, 0.0);
  return remaining_ms <= warmdown_ms ? remaining_ms / std::max(warmdown_ms, 1e-9) : 1.0;
}

// Linear from muon_momentum_warmup_start to muon_momentum over the warm-up steps.
inline double muon_momentum_at(const TrainConfig& t, int64_t step) {
  const double frac =
      t.muon_momentum_warmup_steps > 0
          ? std::min(double(step) / double(t.muon_momentum_warmup_steps), 1.0)
          : 1.0;
  return (1 - frac) * t.muon_momentum_warmup_start + frac * t.muon_momentum;
}

}  // namespace pgolf
