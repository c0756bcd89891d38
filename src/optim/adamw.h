// AdamW (SPEC §3): the optimizer of embeddings, scalars, vectors, small matrices and (with
// weight_decay 0, i.e. Adam) lm_head. One instance per parameter group. Per element, in the
// order of torch's fused AdamW kernel (the reference passes fused=True):
//   step += 1
//   p *= 1 - lr * weight_decay                     (skipped when weight_decay == 0)
//   m  = beta1 * m + (1 - beta1) * g
//   v  = beta2 * v + (1 - beta2) * g * g
//   bc1 = 1 - beta1^step;  bc2 = 1 - beta2^step    (in double)
//   denom = sqrt(v) / sqrt(bc2) + eps
//   p -= (lr / bc1) * m / denom
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "core/buffer.h"
#include "optim/param_ref.h"

namespace pgolf {

template <typename T>
class AdamW {
 public:
  // The parameters of one group; their value/grad pointers must outlive the optimizer.
  explicit AdamW(std::vector<ParamRef<T>> params, double beta1 = 0.9, double beta2 = 0.95,
                 double eps = 1e-8);

  // One update of every parameter from its current gradient, at this step's lr (the
  // schedule is the caller's) and decoupled weight decay. Element-wise, so the bits do not
  // depend on the thread count.
  void step(double lr, double weight_decay);

  // State for checkpoints: m of every parameter, then v of every parameter, in one buffer
  // (parameter i's m at offset(i), its v at size()/2 + offset(i)), and the step count.
  std::span<T> state() { return state_.span(); }
  std::span<const T> state() const { return state_.span(); }
  int64_t offset(size_t i) const { return offsets_[i]; }
  int64_t step_count() const { return step_; }
  void set_step_count(int64_t step) { step_ = step; }
  const std::vector<ParamRef<T>>& params() const { return params_; }

 private:
  struct Chunk {
    size_t param;
    int64_t begin, end;
  };
  std::vector<ParamRef<T>> params_;
  std::vector<int64_t> offsets_;
  std::vector<Chunk> chunks_;  // all elements cut into pieces for one parallel loop
  Buffer<T> state_;
  double beta1_, beta2_, eps_;
  int64_t step_ = 0;
};

}  // namespace pgolf
