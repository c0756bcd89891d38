// The optimizer groups of SPEC §3 for one model:
//   Muon   every 2-D block matrix (Wq, Wk, Wv, Wo, Wup, Wdown)       matrix_lr, muon_wd
//   AdamW  tok_emb, bigram.embed, ve_shared.embed                    tied_embed_lr (embed_lr
//                                                                    when untied), adam_wd
//   AdamW  every other tensor: scalars, vectors, bigram.proj,        scalar_lr, adam_wd
//          ve_shared.proj, attention gates (in Muon with the train key
//          attn_gate_muon, as #490's optimizer split puts them)
//   Adam   lm_head (untied only)                                     head_lr, no decay
// Each group runs at base_lr * the step's LR multiplier. With several ranks (issue 8) a step
// first sums the ranks' gradients: the Muon group's by reduce-scatter into parallel Muon
// (optim/muon_shards.h), the AdamW groups' by one all-reduce; the AdamW update of the
// replicated tensors runs while the updated matrices are gathered. Clipping then needs
// ‖g‖² = Σ_AdamW g² (the same on every rank) + Σ_ranks Σ_own matrices g².
#pragma once
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "dist/comm.h"
#include "model/plan.h"
#include "optim/adamw.h"
#include "optim/muon.h"
#include "optim/muon_shards.h"
#include "train/train_config.h"

namespace pgolf {

class OptimizerSet {
 public:
  OptimizerSet(ParamStore<float>& store, const ModelPlan& plan, const TrainConfig& t,
               const dist::Comm& comm = dist::world());

  // One step from this rank's gradients (each already scaled so that their sum over ranks
  // is the global batch's mean gradient): sum them across ranks, clip the global gradient
  // norm to clip_norm when clip_norm > 0 (SPEC §3), update every group. Returns the norm
  // before clipping (0 when not clipping).
  double step(double lr_scale, double muon_momentum, double clip_norm = 0);

  // Completes every rank's copy of the Muon momentum (each rank updates only its shard's);
  // a collective, for checkpoints.
  void gather_state() { shards_->gather_momentum(); }

  // Every piece of state, named, for resumable checkpoints (restore by writing into the
  // spans): Muon's momentum, then each AdamW group's moments in adam_groups() order; and
  // the AdamW step counts, in the same order.
  struct StateTensor {
    std::string name;
    std::span<float> values;
  };
  std::vector<StateTensor> state();
  std::vector<int64_t> step_counts() const;
  // The Muon group's tensors, in the order Muon holds them.
  const std::vector<ParamRef<float>>& muon_params() const { return muon_->params(); }
  void set_step_counts(const std::vector<int64_t>& counts);

  // What the GPU twin (train/cuda/device_optimizer_set.h) mirrors: the groups, their base
  // learning rates and decays, the hyperparameters, and whether the gradients are summed
  // across ranks.
  struct AdamGroup {
    std::string name;
    std::unique_ptr<AdamW<float>> opt;
    double lr, weight_decay;
  };
  const Muon<float>& muon() const { return *muon_; }
  const std::vector<AdamGroup>& adam_groups() const { return adam_; }
  const TrainConfig& config() const { return t_; }
  bool distributed() const { return comm_.distributed(); }

 private:
  // The AdamW groups' gradients, packed into adam_grads_ and summed across ranks; then
  // written back.
  void sum_adam_gradients();
  void unpack_adam_gradients();

  ParamStore<float>& store_;
  const TrainConfig& t_;
  const dist::Comm& comm_;
  std::unique_ptr<Muon<float>> muon_;
  std::unique_ptr<MuonShards> shards_;
  std::vector<AdamGroup> adam_;
  std::vector<float> adam_grads_;  // every AdamW gradient packed, for the all-reduce
};

}  // namespace pgolf
