// The optimizer step on the GPU (SPEC §3; see device_optimizer_set.h).
#include "train/cuda/device_optimizer_set.h"

#include <algorithm>
#include <utility>

#include "kernels/cuda/newton_schulz.h"

namespace pgolf::cuda {

void DeviceOptimizerSet::DestroyEvent::operator()(cudaEvent_t e) const noexcept {
  cudaEventDestroy(e);
}

DeviceOptimizerSet::DeviceOptimizerSet(Context& ctx, const OptimizerSet& host,
                                       const ParamStore<float>& store, float* d_params,
                                       float* d_grads)
    : ctx_(ctx), t_(host.config()), d_grads_(d_grads), grads_numel_(int64_t(store.grads().size())) {
  PGOLF_CHECK(!host.distributed(),
              "DeviceOptimizerSet runs on one rank, but the host optimizer set is distributed "
              "(the NCCL optimizer step is not written yet)");
  PGOLF_CHECK(host.adam_groups().size() <= kMaxAdamGroups, "DeviceOptimizerSet holds at most ",
              kMaxAdamGroups, " AdamW groups, the host set has ", host.adam_groups().size());
  // A host tensor's value and gradient at the same offsets in the device buffers.
  const auto on_device = [&](const ParamRef<float>& p) {
    const int64_t v = p.value - store.values().data(), g = p.grad - store.grads().data();
    PGOLF_CHECK(v >= 0 && v + p.numel() <= int64_t(store.values().size()) && g >= 0 &&
                    g + p.numel() <= grads_numel_,
                "the optimizer set holds a tensor that is not in the parameter store");
    return std::pair{d_params + v, d_grads + g};
  };

  const Muon<float>& muon = host.muon();
  for (size_t i = 0; i < muon.params().size(); ++i) {
    const ParamRef<float>& p = muon.params()[i];
    auto batch = std::find_if(muon_.begin(), muon_.end(), [&](const MuonBatch& b) {
      return b.rows == p.rows && b.cols == p.cols;
    });
    if (batch == muon_.end())
      batch = muon_.insert(muon_.end(), MuonBatch{p.rows, p.cols, muon_scale(p.rows, p.cols), {}});
    const auto [w, g] = on_device(p);
    batch->matrices.push_back({w, g, muon.offset(i)});
  }
  int64_t gather = 0, ns = 0, most_matrices = 0;
  for (const MuonBatch& b : muon_) {
    const int64_t count = int64_t(b.matrices.size());
    gather = std::max(gather, count * b.rows * b.cols);
    ns = std::max(ns, newton_schulz5_workspace(count, b.rows, b.cols));
    most_matrices = std::max(most_matrices, count);
  }
  momentum_.resize(int64_t(muon.state().size()));
  nesterov_.resize(gather);
  update_.resize(gather);
  ns_workspace_.resize(ns);

  for (const OptimizerSet::AdamGroup& h : host.adam_groups()) {
    AdamGroup& group = adam_.emplace_back();
    group.lr = h.lr;
    group.weight_decay = h.weight_decay;
    const auto& params = h.opt->params();
    for (size_t i = 0; i < params.size(); ++i) {
      if (params[i].numel() == 0) continue;
      const auto [p, g] = on_device(params[i]);
      group.tensors.push_back({p, g, h.opt->offset(i), params[i].numel()});
    }
    group.moments.resize(int64_t(h.opt->state().size()));
  }

  sum_squares_.resize(1);
  scalars_.resize(1);
  // step() asks for no more scratch than this (the norm's partials, Newton–Schulz's norms),
  // so it never grows (and synchronises) there.
  ctx.scratch(std::max(grad_sum_squares_scratch(grads_numel_), most_matrices));
  pinned_.resize(1);
  *pinned_.data() = Scalars{};
  cudaEvent_t event = nullptr;
  PGOLF_CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
  copied_.reset(event);
  upload(host);
}

// No queued copy may read the pinned block once it is freed (status dropped: a destructor).
DeviceOptimizerSet::~DeviceOptimizerSet() { cudaEventSynchronize(copied_.get()); }

void DeviceOptimizerSet::set_step(double lr_scale, double muon_momentum) {
  // The copy of the previous step (an eager one or a graph replay) reads the block when the
  // stream reaches it: it must not see this step's values.
  PGOLF_CUDA_CHECK(cudaEventSynchronize(copied_.get()));
  Scalars& s = *pinned_.data();
  s.muon = muon_step(t_.matrix_lr * lr_scale, muon_momentum, t_.muon_wd);
  for (size_t i = 0; i < adam_.size(); ++i)
    s.adam[i] = adamw_step(++step_counts_[i], adam_[i].lr * lr_scale, adam_[i].weight_decay,
                           t_.beta1, t_.beta2, t_.adam_eps);
}

void DeviceOptimizerSet::step(double clip_norm) {
  const cudaStream_t stream = ctx_.stream();
  PGOLF_CUDA_CHECK(cudaMemcpyAsync(scalars_.data(), pinned_.data(), sizeof(Scalars),
                                   cudaMemcpyHostToDevice, stream));
  PGOLF_CUDA_CHECK(cudaEventRecordWithFlags(copied_.get(), stream, cudaEventRecordExternal));
  if (clip_norm > 0) {  // OptimizerSet::step's clip_grad_norm over the one gradient span
    PGOLF_CUDA_CHECK(cudaMemsetAsync(sum_squares_.data(), 0, sizeof(double), stream));
    grad_sum_squares(ctx_, d_grads_, grads_numel_, sum_squares_.data());
    clip_grads(ctx_, d_grads_, grads_numel_, sum_squares_.data(), clip_norm);
  }
  queue_muon();
  for (size_t i = 0; i < adam_.size(); ++i) queue_adam(i);
}

// Muon<float>::step, one shape at a time: each matrix's momentum writes its Nesterov gradient
// into the batch's slot, one batched Newton–Schulz, then each matrix's update from its slot.
void DeviceOptimizerSet::queue_muon() {
  const MuonStep* s = &scalars_.data()->muon;
  for (const MuonBatch& b : muon_) {
    const int64_t numel = b.rows * b.cols, count = int64_t(b.matrices.size());
    for (int64_t k = 0; k < count; ++k) {
      const MuonMatrix& m = b.matrices[size_t(k)];
      muon_momentum(ctx_, momentum_.data() + m.momentum, m.g, nesterov_.data() + k * numel, numel,
                    s);
    }
    newton_schulz5(ctx_, nesterov_.data(), update_.data(), count, b.rows, b.cols,
                   int(t_.muon_backend_steps), ns_workspace_.data());
    for (int64_t k = 0; k < count; ++k)
      muon_update(ctx_, b.matrices[size_t(k)].w, update_.data() + k * numel, numel, b.scale, s);
  }
}

// AdamW<float>::step of one group: m and v of a tensor at its offset in each half.
void DeviceOptimizerSet::queue_adam(size_t group) {
  AdamGroup& g = adam_[group];
  const AdamWStep* s = &scalars_.data()->adam[group];
  float* m = g.moments.data();
  float* v = m + g.moments.size() / 2;
  for (const AdamTensor& x : g.tensors)
    adamw_update(ctx_, x.p, x.g, m + x.offset, v + x.offset, x.n, s);
}

void DeviceOptimizerSet::download(OptimizerSet& host) const {
  const std::vector<OptimizerSet::StateTensor> state = host.state();
  PGOLF_CHECK(state.size() == 1 + adam_.size(), "the host optimizer set has ", state.size(),
              " state tensors, the device set ", 1 + adam_.size());
  momentum_.download(state[0].values, ctx_.stream());
  for (size_t i = 0; i < adam_.size(); ++i)
    adam_[i].moments.download(state[1 + i].values, ctx_.stream());
  host.set_step_counts(step_counts_);
}

void DeviceOptimizerSet::upload(const OptimizerSet& host) {
  const auto& groups = host.adam_groups();
  PGOLF_CHECK(groups.size() == adam_.size(), "the host optimizer set has ", groups.size(),
              " AdamW groups, the device set ", adam_.size());
  momentum_.upload(host.muon().state(), ctx_.stream());
  for (size_t i = 0; i < adam_.size(); ++i)
    adam_[i].moments.upload(groups[i].opt->state(), ctx_.stream());
  step_counts_ = host.step_counts();
}

}  // namespace pgolf::cuda
