// DeviceModel: the forward and backward of SPEC §2 on one GPU (issue 7), op for op
// Model<float>::forward and ::backward (model/model.cpp) with the kernels of kernels/cuda.
// Precision as SPEC's mixed precision: fp32 master parameters and parameter gradients, bf16
// activations, activation gradients and GEMM operands, fp32 math and accumulation.
//
// Memory (llm.c style): the fp32 parameters in ONE device buffer laid out exactly as
// ParamStore<float>'s values span (upload/download are one copy each), their fp32 gradients
// in another laid out as its grads span; bf16 shadows of the
// matrices the GEMMs read, in one buffer, cast from the fp32 values before every forward;
// activations and the backward's scratch (DeviceActivations) in one buffer planned once per
// (batch, seq), which only grows. The forward keeps every activation the backward will read.
//
// CUDA graphs (core/cuda/graph.h): a micro-step, zero_loss_total(), forward_staged() and
// backward(), queues device work only (no host synchronisation, no allocation, no host array
// read), on addresses fixed between stage_batch() calls of the same shape; the batch's tokens
// are copied in by stage_batch(), outside the graph, into the same device buffers each time.
// So: stage_batch; run the micro-step once eagerly (it sizes the Context's scratch, which a
// capture may not grow, and loads every kernel); capture it; then stage_batch and launch per
// micro-step, capturing again whenever generation() has changed.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "core/cuda/runtime.h"
#include "core/param_store.h"
#include "kernels/cuda/rope.h"
#include "model/plan.h"

namespace pgolf::cuda {

struct DeviceActivations;

// A pgolf::Error naming the first feature of `cfg` the CUDA kernels cannot run (today: an
// attention head dim outside 16..256 in steps of 8). Host only; the constructor calls it
// before touching the device.
void check_device_support(const ModelConfig& cfg);

class DeviceModel {
 public:
  // Allocates the parameters (zero) and their bf16 shadows on ctx's device; ctx must outlive
  // the model, and every call queues on ctx.stream().
  DeviceModel(Context& ctx, ModelPlan plan);
  ~DeviceModel();
  DeviceModel(const DeviceModel&) = delete;
  DeviceModel& operator=(const DeviceModel&) = delete;

  const ModelPlan& plan() const { return plan_; }

  // The depth stage, as Model::set_active_repeats (docs/recurrence.md "Switching depth").
  void set_active_repeats(int64_t k);
  int64_t active_repeats() const { return stage_.repeats; }

  // The fp32 parameters: one copy of ParamStore<float>::values() each way (same layout).
  void upload(const ParamStore<float>& params);
  void download(ParamStore<float>& params) const;

  // The device fp32 parameter and gradient buffers, laid out as ParamStore<float>::values()
  // and grads(), for the optimizer, EMA/SWA and QAT kernels working in place. Their addresses
  // never change.
  float* params_data() { return params_.data(); }
  const float* params_data() const { return params_.data(); }
  float* grads_data() { return grads_.data(); }
  const float* grads_data() const { return grads_.data(); }

  // Host, never captured: checks the token ids (model/token_ids.h), plans and binds the
  // activations for (B, seq) when the shape changed (generation() then changes), and queues
  // the copy of the batch (host arrays, row-major [B, seq]) into the model's device batch
  // buffers on ctx.stream(), through pinned staging memory. Returns once the arrays may be
  // reused; waits only for the previous stage_batch's copies, not for the micro-step queued
  // since.
  void stage_batch(const int32_t* inputs, const int32_t* targets, int64_t B, int64_t seq);

  // Capturable: the forward of the staged batch, as Model<float>::forward, adding its mean
  // loss (Σ per-token losses) / N to the device accumulator (kernels/cuda/cross_entropy.h
  // add_mean_loss: deterministic, fp32 partials of 64 losses and a double total).
  void forward_staged();

  // Capturable: accumulates loss_scale * d(mean loss of the last forward)/d(parameter) into
  // the device gradients, as Model<float>::backward. Parameters of inactive layers get no
  // gradient. loss_scale is baked into a captured launch (a run's 1/accumulation steps).
  void backward(double loss_scale = 1.0);

  // The mean-loss accumulator: zeroed (queued, capturable), or read (host: waits for the
  // stream).
  void zero_loss_total();
  double read_loss_total() const;

  // Host convenience: stage_batch, zero_loss_total, forward_staged, read_loss_total; the mean
  // cross-entropy of `targets` given `inputs`, as Model<float>::forward.
  double forward(const int32_t* inputs, const int32_t* targets, int64_t B, int64_t seq_len);

  // Per-token losses of the last forward, [B * seq_len], downloaded from the device (host:
  // waits for the stream).
  std::vector<float> token_losses() const;

  // Changes whenever a captured micro-step would be invalid: the (B, seq) shape changed (the
  // activations re-planned and rebound, the RoPE tables remade), the depth stage changed, or
  // the Context's scratch was reallocated (Context::scratch_generation; it is added in, so the
  // value only ever grows). A caller captures again when it differs from the captured one.
  uint64_t generation() const { return generation_ + ctx_.scratch_generation(); }

  // The fp32 gradients: set to zero, or one copy into ParamStore<float>::grads() (same layout).
  void zero_grads();
  void download_grads(ParamStore<float>& params) const;

  // Device bytes of the activations for (B, seq_len) (host only: nothing is allocated).
  static int64_t activation_bytes(const ModelPlan& plan, int64_t B, int64_t seq_len);

 private:
  // A contiguous piece of the fp32 parameter buffer whose bf16 copy the GEMMs read.
  struct ShadowRun {
    int64_t src, dst, n;
  };
  void plan_shadows();
  void refresh_shadows();
  void prepare(int64_t B, int64_t seq);
  const float* W(int i) const;  // fp32 value of parameter i (null when absent)
  const bf16* S(int i) const;   // its bf16 shadow (a matrix a GEMM reads)
  float* G(int i);              // its fp32 gradient (null when absent)
  void block_forward(int64_t v);
  void block_backward(int64_t v, bf16*& dcur, bf16*& dnext);
  void pre_add_forward(int64_t v, const bf16* in);
  void pre_add_backward(int64_t v, const bf16* dx);
  void head_forward();
  const bf16* final_stream() const;

  Context& ctx_;
  ModelPlan plan_;
  DepthStage stage_;  // the current depth stage
  DeviceBuffer<float> params_;
  DeviceBuffer<float> grads_;
  std::vector<int64_t> shadow_offset_;  // per parameter: its offset in shadows_, or -1
  std::vector<ShadowRun> shadow_runs_;
  DeviceBuffer<bf16> shadows_;
  DeviceBuffer<unsigned char> arena_storage_;  // shared by every (batch, seq) shape
  std::unique_ptr<DeviceActivations> acts_;
  RopeTables rope_;  // [seq, r/2] each, remade when seq changes
  DeviceBuffer<double> loss_total_{1};
  PinnedBuffer<int32_t> staging_;  // inputs then targets of the last staged batch
  Event staged_;                   // recorded after the copies out of staging_
  uint64_t generation_ = 0;
  bool backward_ready_ = false;  // the last forward ran on the staged batch at this depth stage
};

}  // namespace pgolf::cuda
