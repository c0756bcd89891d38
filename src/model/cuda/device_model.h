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
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "core/cuda/runtime.h"
#include "core/param_store.h"
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

  // Mean cross-entropy of `targets` given `inputs` (host arrays, row-major [B, seq_len]),
  // as Model<float>::forward: the per-token losses summed in double on the host.
  double forward(const int32_t* inputs, const int32_t* targets, int64_t B, int64_t seq_len);

  // Per-token losses of the last forward, [B * seq_len], downloaded from the device.
  std::vector<float> token_losses() const;

  // Accumulates loss_scale * d(mean loss of the last forward)/d(parameter) into the device
  // gradients, as Model<float>::backward. Parameters of inactive layers get no gradient.
  void backward(double loss_scale = 1.0);

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
  bool backward_ready_ = false;  // the last forward ran at the current depth stage
};

}  // namespace pgolf::cuda
