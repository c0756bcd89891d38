#include "train/cuda/cuda_step_runner.h"

#include <cstdio>

#include "core/cuda/graph.h"
#include "core/cuda/runtime.h"
#include "eval/cuda/device_scoring.h"
#include "kernels/cuda/fake_quant.h"
#include "kernels/cuda/optimizer.h"
#include "model/cuda/device_model.h"
#include "train/cuda/device_optimizer_set.h"

namespace pgolf::cuda {

namespace {

// A unit of GPU work that runs eagerly the first time (and the first time after
// invalidate(): whatever it sizes lazily then exists), is captured into a CUDA graph the
// second time, and is replayed from then on.
class Replayed {
 public:
  template <typename Work>
  void run(Context& ctx, Work&& work) {
    if (!warm_) {
      work();
      warm_ = true;
      return;
    }
    if (!graph_.ready()) graph_.capture(ctx, work);
    graph_.launch(ctx);
  }
  void invalidate() {
    graph_.reset();
    warm_ = false;
  }

 private:
  Graph graph_;
  bool warm_ = false;
};

class CudaStepRunner final : public StepRunner {
 public:
  explicit CudaStepRunner(TrainTensors t)
      : t_(t),
        model_(ctx_, t.model.plan()),
        optimizers_(ctx_, t.optimizers, t.model.params(), model_.params_data(),
                    model_.grads_data()),
        ema_(t.ema.size()),
        swa_(t.swa.size()) {
    const auto& layout = t.model.plan().layout;
    int64_t saved = 0;
    for (int i : t.qat.matrices()) {
      const ParamInfo& p = layout.info(i);
      qat_.push_back({p.offset, saved, p.shape[0], p.shape[1]});
      saved += p.numel;
    }
    qat_saved_.resize(saved);
  }

  std::string describe() const override {
    cudaDeviceProp prop{};
    PGOLF_CUDA_CHECK(cudaGetDeviceProperties(&prop, ctx_.device()));
    char size[64];
    std::snprintf(size, sizeof size, " (%.1f GiB, sm_%d%d), CUDA graphs",
                  double(prop.totalGlobalMem) / double(1 << 30), prop.major, prop.minor);
    return "cuda:" + std::to_string(ctx_.device()) + " " + prop.name + size;
  }

  void begin_step(bool qat) override {
    qat_on_ = qat;
    micro_steps_ = 0;
    model_.zero_grads();
    model_.zero_loss_total();
    if (qat_on_) quantise();
  }

  // The micro-step's graph holds the activations' addresses and grad_scale (baked into its
  // dloss fill): a re-planned model or another scale re-captures it.
  void micro_step(const std::vector<int32_t>& x, const std::vector<int32_t>& y, int64_t seq,
                  double grad_scale) override {
    model_.stage_batch(x.data(), y.data(), int64_t(x.size()) / seq, seq);
    if (model_.generation() != generation_ || grad_scale != micro_scale_) micro_.invalidate();
    generation_ = model_.generation();
    micro_scale_ = grad_scale;
    micro_.run(ctx_, [&] {
      model_.forward_staged();
      model_.backward(micro_scale_);
    });
    ++micro_steps_;
  }

  double end_step() override {
    if (qat_on_) restore();
    return model_.read_loss_total() / double(micro_steps_);
  }

  void optimizer_step(double lr_scale, double muon_momentum, double clip_norm) override {
    optimizers_.set_step(lr_scale, muon_momentum);
    // The graph holds clip_norm (the warm-up's 0, then the run's) and the scratch's address,
    // which an evaluation at a new shape may have moved.
    if (clip_norm != clip_norm_ || ctx_.scratch_generation() != step_scratch_) step_.invalidate();
    clip_norm_ = clip_norm;
    step_scratch_ = ctx_.scratch_generation();
    step_.run(ctx_, [&] { optimizers_.step(clip_norm_); });
  }

  void ema_update(double decay) override {
    cuda::ema_update(ctx_, ema_.data(), model_.params_data(), ema_.size(), decay);
  }
  void swa_accumulate() override {
    cuda::swa_accumulate(ctx_, swa_.data(), model_.params_data(), swa_.size());
  }

  EvalResult evaluate(const std::vector<int32_t>& tokens, int64_t seq_len, int64_t batch_seqs,
                      const ByteLuts& luts) override {
    return cuda::evaluate_standard(model_, tokens, seq_len, batch_seqs, luts);
  }
  EvalResult evaluate_sliding(const std::vector<int32_t>& tokens, int64_t seq_len,
                              int64_t stride, int64_t batch_seqs, const ByteLuts& luts) override {
    return cuda::evaluate_sliding(model_, tokens, seq_len, stride, batch_seqs, luts);
  }

  void to_host() override {
    model_.download(t_.model.params());
    optimizers_.download(t_.optimizers);
    if (ema_.size()) ema_.download(t_.ema.span(), ctx_.stream());
    if (swa_.size()) swa_.download(t_.swa.span(), ctx_.stream());
  }

  void from_host() override {
    model_.set_active_repeats(t_.model.active_repeats());
    model_.upload(t_.model.params());
    optimizers_.upload(t_.optimizers);
    if (ema_.size()) ema_.upload(t_.ema.span(), ctx_.stream());
    if (swa_.size()) swa_.upload(t_.swa.span(), ctx_.stream());
  }

  int64_t peak_device_bytes() const override { return cuda::peak_allocated_bytes(); }

 private:
  // A late-QAT matrix (SPEC §3): its offset in the parameters and in qat_saved_, its shape.
  struct QatMatrix {
    int64_t offset, saved, rows, cols;
  };

  // The QatShadow of the CPU runner on the device: save each matrix, then write its int6
  // fake-quantised rows in its place (bitwise the CPU's, kernels/cuda/fake_quant.h).
  void quantise() {
    float* w = model_.params_data();
    for (const QatMatrix& m : qat_) {
      copy(qat_saved_.data() + m.saved, w + m.offset, m.rows * m.cols);
      fake_quant_int6_rows(ctx_, qat_saved_.data() + m.saved, w + m.offset, m.rows, m.cols);
    }
  }
  void restore() {
    float* w = model_.params_data();
    for (const QatMatrix& m : qat_) copy(w + m.offset, qat_saved_.data() + m.saved, m.rows * m.cols);
  }
  void copy(float* dst, const float* src, int64_t n) {
    PGOLF_CUDA_CHECK(cudaMemcpyAsync(dst, src, size_t(n) * sizeof(float),
                                     cudaMemcpyDeviceToDevice, ctx_.stream()));
  }

  TrainTensors t_;
  Context ctx_;
  DeviceModel model_;
  DeviceOptimizerSet optimizers_;
  DeviceBuffer<float> ema_, swa_;
  std::vector<QatMatrix> qat_;
  DeviceBuffer<float> qat_saved_;
  bool qat_on_ = false;
  int64_t micro_steps_ = 0;
  uint64_t generation_ = 0, step_scratch_ = 0;
  double micro_scale_ = 0, clip_norm_ = -1;
  Replayed micro_, step_;
};

}  // namespace

std::unique_ptr<StepRunner> make_cuda_step_runner(TrainTensors tensors) {
  return std::make_unique<CudaStepRunner>(tensors);
}

}  // namespace pgolf::cuda
