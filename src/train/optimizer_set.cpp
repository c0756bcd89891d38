#include "train/optimizer_set.h"

#include <set>

#include "optim/param_ref.h"

namespace pgolf {

OptimizerSet::OptimizerSet(ParamStore<float>& store, const ModelPlan& plan, const TrainConfig& t)
    : t_(t) {
  std::vector<ParamRef<float>> matrices, embeds, scalars, head;
  std::set<int> taken;
  for (const auto& b : plan.blocks)
    for (int i : b.all()) {
      if (i < 0) continue;  // a repeat's set holds only its own matrices
      matrices.push_back(param_ref(store, i));
      taken.insert(i);
    }
  // #490 (train key attn_gate_muon): the attention gates' [H, d] weights join Muon; SPEC §3
  // keeps them in the scalar group. With block scalars several layers name one gate: once.
  if (t.attn_gate_muon)
    for (const auto& l : plan.layers)
      if (l.gate_weight >= 0 && taken.insert(l.gate_weight).second)
        matrices.push_back(param_ref(store, l.gate_weight));
  std::vector<int> embeddings = {plan.tok_emb, plan.bigram_embed, plan.ve_embed};
  embeddings.insert(embeddings.end(), plan.value_embeds.begin(), plan.value_embeds.end());
  for (int i : embeddings)  // #784: its residual VE tables train with tok_emb
    if (i >= 0) {
      embeds.push_back(param_ref(store, i));
      taken.insert(i);
    }
  if (plan.lm_head >= 0) {
    head.push_back(param_ref(store, plan.lm_head));
    taken.insert(plan.lm_head);
  }
  for (int i = 0; i < int(plan.layout.infos().size()); ++i)
    if (!taken.count(i)) scalars.push_back(param_ref(store, i));

  muon_ = std::make_unique<Muon<float>>(std::move(matrices));
  auto adam = [&](const char* name, std::vector<ParamRef<float>> refs, double lr, double wd) {
    if (refs.empty()) return;
    adam_.push_back({name, std::make_unique<AdamW<float>>(std::move(refs), t.beta1, t.beta2,
                                                         t.adam_eps),
                     lr, wd});
  };
  adam("embed", std::move(embeds), plan.cfg.tie_embeddings ? t.tied_embed_lr : t.embed_lr,
       t.adam_wd);
  adam("scalar", std::move(scalars), t.scalar_lr, t.adam_wd);
  adam("head", std::move(head), t.head_lr, 0.0);
}

void OptimizerSet::step(double lr_scale, double muon_momentum) {
  muon_->step(t_.matrix_lr * lr_scale, muon_momentum, t_.muon_wd, int(t_.muon_backend_steps));
  for (auto& g : adam_) g.opt->step(g.lr * lr_scale, g.weight_decay);
}

std::vector<OptimizerSet::StateTensor> OptimizerSet::state() {
  std::vector<StateTensor> out{{"optim.muon.momentum", muon_->state()}};
  for (auto& g : adam_) out.push_back({"optim.adam." + g.name + ".moments", g.opt->state()});
  return out;
}

std::vector<int64_t> OptimizerSet::step_counts() const {
  std::vector<int64_t> out;
  for (const auto& g : adam_) out.push_back(g.opt->step_count());
  return out;
}

void OptimizerSet::set_step_counts(const std::vector<int64_t>& counts) {
  PGOLF_CHECK(counts.size() == adam_.size(), "the checkpoint has ", counts.size(),
              " AdamW step counts, the model has ", adam_.size(), " AdamW groups");
  for (size_t i = 0; i < adam_.size(); ++i) adam_[i].opt->set_step_count(counts[i]);
}

}  // namespace pgolf
