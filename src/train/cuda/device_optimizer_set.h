// The optimizer step of SPEC §3 resident on one GPU: the twin of OptimizerSet
// (train/optimizer_set.h) on DeviceModel's fp32 parameters and gradients (one buffer each,
// laid out as ParamStore<float>'s values and grads spans), with Muon's momentum and the AdamW
// moments in device buffers laid out as OptimizerSet::state()'s spans (one copy each way).
//
// Made to be captured once into a CUDA graph and replayed every step: step() queues work
// only (no host synchronisation, no allocation), and every scalar that changes from step to
// step (learning rates, Muon's momentum, AdamW's bias corrections) is read by the kernels
// from one device block, which the captured work fills first by copying a pinned host block
// that set_step() writes before each launch.
//
// Precision: as OptimizerSet in fp32, except Newton–Schulz, which runs in bf16 as the
// reference's (kernels/cuda/newton_schulz.h). Same-shaped matrices (every layer's Wq, ...)
// are orthogonalised in one batched call. One rank only: the NCCL step is not written yet.
#pragma once
#include <cstdint>
#include <memory>
#include <type_traits>
#include <vector>

#include "core/cuda/runtime.h"
#include "core/param_store.h"
#include "kernels/cuda/adamw.h"
#include "kernels/cuda/optimizer.h"
#include "train/optimizer_set.h"

namespace pgolf::cuda {

class DeviceOptimizerSet {
 public:
  // Mirrors `host` (its groups, hyperparameters, state and step counts) on ctx's device.
  // d_params / d_grads: the fp32 device buffers laid out exactly like store.values() /
  // store.grads() (DeviceModel keeps its parameters that way), so host pointer p maps to
  // d_params + (p - store.values().data()). ctx and both buffers must outlive this set.
  // Reserves the ctx.scratch step() uses; a graph captured from step() holds that scratch's
  // address, so capture it after every user of ctx has reserved its largest scratch.
  DeviceOptimizerSet(Context& ctx, const OptimizerSet& host, const ParamStore<float>& store,
                     float* d_params, float* d_grads);
  ~DeviceOptimizerSet();
  DeviceOptimizerSet(const DeviceOptimizerSet&) = delete;
  DeviceOptimizerSet& operator=(const DeviceOptimizerSet&) = delete;

  // Host only, never captured: the next step's scalars (OptimizerSet::step's, in double and
  // rounded to float as the CPU does) into the pinned block, counting one AdamW step. Call it
  // exactly once before every step() or graph launch. Waits until the previous step has
  // copied the block (only that copy, which the step starts with).
  void set_step(double lr_scale, double muon_momentum);

  // Queues one optimizer step on ctx.stream(), as OptimizerSet::step: global-norm clipping
  // of all gradients to clip_norm when clip_norm > 0 (coefficient on the device), Muon on
  // every matrix, AdamW on every group. Capturable: the same work for every step, the
  // scalars from the device block (clip_norm, a run constant, is baked in).
  void step(double clip_norm);

  // Checkpoints: the state (one copy per OptimizerSet::state() span) and the AdamW step
  // counts, to and from a host set of the same model. Synchronous.
  void download(OptimizerSet& host) const;
  void upload(const OptimizerSet& host);

 private:
  // At most OptimizerSet's three AdamW groups: embed, scalar, head.
  static constexpr size_t kMaxAdamGroups = 3;
  // What set_step writes and step() copies to the device in one piece.
  struct Scalars {
    MuonStep muon;
    AdamWStep adam[kMaxAdamGroups];
  };
  struct DestroyEvent {
    void operator()(cudaEvent_t e) const noexcept;
  };

  // Matrices of one shape: their Nesterov gradients gathered into [count, rows, cols] for one
  // batched Newton–Schulz.
  struct MuonMatrix {
    float* w;
    const float* g;
    int64_t momentum;  // offset into momentum_ (Muon<float>::offset)
  };
  struct MuonBatch {
    int64_t rows, cols;
    float scale;  // muon_scale(rows, cols)
    std::vector<MuonMatrix> matrices;
  };
  struct AdamTensor {
    float* p;
    const float* g;
    int64_t offset, n;  // m at moments + offset, v at moments + moments.size()/2 + offset
  };
  struct AdamGroup {
    double lr, weight_decay;
    std::vector<AdamTensor> tensors;
    DeviceBuffer<float> moments;  // as AdamW<float>::state()
  };

  void queue_muon();
  void queue_adam(size_t group);

  Context& ctx_;
  const TrainConfig t_;  // the host set's hyperparameters
  float* d_grads_;
  int64_t grads_numel_;
  std::vector<MuonBatch> muon_;
  std::vector<AdamGroup> adam_;
  std::vector<int64_t> step_counts_;  // AdamW's, per group, counted by set_step
  DeviceBuffer<float> momentum_;      // Muon's, as Muon<float>::state()
  DeviceBuffer<float> nesterov_;      // the largest batch's [count, rows, cols] gather
  DeviceBuffer<bf16> update_;         // its orthogonalised update
  DeviceBuffer<bf16> ns_workspace_;
  DeviceBuffer<double> sum_squares_;  // the square of the gradient norm
  DeviceBuffer<Scalars> scalars_;
  PinnedBuffer<Scalars> pinned_;  // one Scalars
  // Recorded after step()'s copy of pinned_; captured as an event node (cudaEventRecordExternal,
  // which runtime.h's Event does not use), so that every replay records it too.
  std::unique_ptr<std::remove_pointer_t<cudaEvent_t>, DestroyEvent> copied_;
};

}  // namespace pgolf::cuda
