// Late QAT (SPEC §3): once the LR multiplier falls below late_qat_threshold, every step runs
// its forward and backward on int6 fake-quantised matrices and applies the update to the
// full-precision weights (the straight-through estimator). The matrices are the reference's
// CastedLinear weights: every block matrix, bigram.proj and ve_shared.proj.
#pragma once
#include <vector>

#include "core/buffer.h"
#include "model/plan.h"

namespace pgolf {

class QatShadow {
 public:
  QatShadow(ParamStore<float>& store, const ModelPlan& plan);
  // Saves the full-precision matrices and replaces them by their fake-quantised values.
  void quantise();
  // Puts the full-precision matrices back (before the optimizer step).
  void restore();
  // The fake-quantised parameters (indices into the plan's layout), for the GPU's twin.
  const std::vector<int>& matrices() const { return matrices_; }

 private:
  ParamStore<float>& store_;
  std::vector<int> matrices_;
  Buffer<float> saved_;
};

}  // namespace pgolf
