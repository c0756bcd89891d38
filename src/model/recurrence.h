// Switching depth during training (docs/recurrence.md "Switching depth"): which depth
// stage a step runs, and how the layers a switch turns on start.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/model.h"

namespace pgolf {

// The depth schedule of a run: recur_start_step (#1204: the plain stack first) or
// progressive repeats (#1384: k grows at fractions of training); neither = all layers.
struct DepthSchedule {
  int64_t recur_start_step = 0;
  std::vector<int64_t> progressive_repeats;   // active repeats per phase
  std::vector<double> progressive_fractions;  // where phases 2.. start, in (0, 1)
  std::string recur_init = "copy";            // "copy" or "identity"

  // Active repeats at training fraction `frac` (step / iterations or elapsed / budget) and
  // step `step`, for a model with `num_repeats` repeats.
  int64_t active_repeats(int64_t step, double frac, int64_t num_repeats) const;
};

// Throws a one-sentence error when the schedule does not fit the model config.
void validate(const DepthSchedule& s, const ModelConfig& cfg);

// Turns on the layers with repeat index in [from, to) of `model` (set_active_repeats(to))
// and starts them per `recur_init`: "copy" sets their per-layer scalars (scalar_sharing
// "layer") and their own matrices to their first use's / block's values; "identity" also
// copies the matrices, and sets attn_scale and mlp_scale to 0 and resid_mix to [1, 0], so
// each new layer passes its input through unchanged.
template <typename T>
void switch_on_repeats(Model<T>& model, int64_t from, int64_t to, const std::string& recur_init);

}  // namespace pgolf
