// The optimizer groups of SPEC §3 for one model:
//   Muon   every 2-D block matrix (Wq, Wk, Wv, Wo, Wup, Wdown)       matrix_lr, muon_wd
//   AdamW  tok_emb, bigram.embed, ve_shared.embed                    tied_embed_lr (embed_lr
//                                                                    when untied), adam_wd
//   AdamW  every other tensor: scalars, vectors, bigram.proj,        scalar_lr, adam_wd
//          ve_shared.proj, attention gates (in Muon with the train key
//          attn_gate_muon, as #490's optimizer split puts them)
//   Adam   lm_head (untied only)                                     head_lr, no decay
// Each group runs at base_lr * the step's LR multiplier.
#pragma once
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "model/plan.h"
#include "optim/adamw.h"
#include "optim/muon.h"
#include "train/train_config.h"

namespace pgolf {

class OptimizerSet {
 public:
  OptimizerSet(ParamStore<float>& store, const ModelPlan& plan, const TrainConfig& t);

  void step(double lr_scale, double muon_momentum);

  // Every piece of state, named, for resumable checkpoints (restore by writing into the
  // spans), and the AdamW step counts.
  struct StateTensor {
    std::string name;
    std::span<float> values;
  };
  std::vector<StateTensor> state();
  std::vector<int64_t> step_counts() const;
  // The Muon group's tensors, in the order Muon holds them.
  const std::vector<ParamRef<float>>& muon_params() const { return muon_->params(); }
  void set_step_counts(const std::vector<int64_t>& counts);

 private:
  struct AdamGroup {
    std::string name;
    std::unique_ptr<AdamW<float>> opt;
    double lr, weight_decay;
  };
  const TrainConfig& t_;
  std::unique_ptr<Muon<float>> muon_;
  std::vector<AdamGroup> adam_;
};

}  // namespace pgolf
