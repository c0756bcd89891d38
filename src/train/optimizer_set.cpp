#include "train/optimizer_set.h"

#include <cmath>
#include <set>

#include "optim/grad_clip.h"
#include "optim/param_ref.h"

namespace pgolf {

namespace {

// The tensors of each group (the table in optimizer_set.h).
struct Groups {
  std::vector<ParamRef<float>> matrices, embeds, scalars, head;
};

Groups split_groups(ParamStore<float>& store, const ModelPlan& plan, const TrainConfig& t) {
  Groups g;
  auto& [matrices, embeds, scalars, head] = g;
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
  return g;
}

}  // namespace

OptimizerSet::OptimizerSet(ParamStore<float>& store, const ModelPlan& plan, const TrainConfig& t,
                           const dist::Comm& comm)
    : store_(store), t_(t), comm_(comm) {
  Groups g = split_groups(store, plan, t);
  muon_ = std::make_unique<Muon<float>>(std::move(g.matrices));
  shards_ = std::make_unique<MuonShards>(*muon_, comm);
  auto adam = [&](const char* name, std::vector<ParamRef<float>> refs, double lr, double wd) {
    if (refs.empty()) return;
    adam_.push_back({name, std::make_unique<AdamW<float>>(std::move(refs), t.beta1, t.beta2,
                                                         t.adam_eps),
                     lr, wd});
  };
  adam("embed", std::move(g.embeds), plan.cfg.tie_embeddings ? t.tied_embed_lr : t.embed_lr,
       t.adam_wd);
  adam("scalar", std::move(g.scalars), t.scalar_lr, t.adam_wd);
  adam("head", std::move(g.head), t.head_lr, 0.0);
  int64_t adam_numel = 0;
  for (const auto& a : adam_)
    for (const auto& p : a.opt->params()) adam_numel += p.numel();
  if (comm.distributed()) adam_grads_.resize(size_t(adam_numel));
}

double OptimizerSet::step(double lr_scale, double muon_momentum, double clip_norm) {
  const double muon_lr = t_.matrix_lr * lr_scale;
  const int ns_steps = int(t_.muon_backend_steps);
  if (!comm_.distributed()) {
    const double norm = clip_norm > 0 ? clip_grad_norm(store_.grads(), clip_norm) : 0.0;
    muon_->step(muon_lr, muon_momentum, t_.muon_wd, ns_steps);
    for (auto& g : adam_) g.opt->step(g.lr * lr_scale, g.weight_decay);
    return norm;
  }
  shards_->start_gradients();
  sum_adam_gradients();  // while the matrices' gradients are reduce-scattered
  const std::span<float> matrix_grads = shards_->finish_gradients();
  double norm = 0;
  if (clip_norm > 0) {  // clip_grad_norm on a gradient now held in pieces (see top)
    double square = std::pow(global_grad_norm(matrix_grads), 2);
    comm_.all_reduce_sum(std::span<double>(&square, 1));
    square += std::pow(global_grad_norm(adam_grads_), 2);
    norm = std::sqrt(square);
    const float c = float(clip_coefficient(norm, clip_norm));
    if (c < 1.0f) {
      for (float& g : matrix_grads) g *= c;
      for (float& g : adam_grads_) g *= c;
    }
  }
  shards_->write_gradients();
  unpack_adam_gradients();
  muon_->step(muon_lr, muon_momentum, t_.muon_wd, ns_steps, shards_->owned());
  shards_->start_weights();
  for (auto& g : adam_) g.opt->step(g.lr * lr_scale, g.weight_decay);  // while they gather
  shards_->finish_weights();
  return norm;
}

void OptimizerSet::sum_adam_gradients() {
  float* at = adam_grads_.data();
  for (const auto& a : adam_)
    for (const auto& p : a.opt->params()) at = std::copy_n(p.grad, p.numel(), at);
  comm_.all_reduce_sum(std::span<float>(adam_grads_));
}

void OptimizerSet::unpack_adam_gradients() {
  const float* at = adam_grads_.data();
  for (const auto& a : adam_)
    for (const auto& p : a.opt->params()) {
      std::copy_n(at, p.numel(), p.grad);
      at += p.numel();
    }
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
