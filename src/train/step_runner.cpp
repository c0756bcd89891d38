#include "train/step_runner.h"

#include <thread>

#include "core/error.h"
#include "eval/sliding.h"
#include "optim/averaging.h"
#ifdef PGOLF_HAVE_CUDA
#include "train/cuda/cuda_step_runner.h"
#endif

namespace pgolf {

namespace {

// The CPU runner: the host tensors are the run's only copy.
class CpuStepRunner final : public StepRunner {
 public:
  explicit CpuStepRunner(TrainTensors t) : t_(t) {}

  std::string describe() const override {
    return "cpu (" + std::to_string(std::thread::hardware_concurrency()) + " hardware threads)";
  }

  void begin_step(bool qat) override {
    qat_ = qat;
    loss_ = 0;
    micro_steps_ = 0;
    t_.model.params().zero_grads();
    if (qat_) t_.qat.quantise();
  }
  void micro_step(const std::vector<int32_t>& x, const std::vector<int32_t>& y, int64_t seq,
                  double grad_scale) override {
    loss_ += t_.model.forward(x.data(), y.data(), int64_t(x.size()) / seq, seq);
    t_.model.backward(grad_scale);
    ++micro_steps_;
  }
  double end_step() override {
    if (qat_) t_.qat.restore();
    return loss_ / double(micro_steps_);
  }
  void optimizer_step(double lr_scale, double muon_momentum, double clip_norm) override {
    t_.optimizers.step(lr_scale, muon_momentum, clip_norm);
  }

  void ema_update(double decay) override {
    pgolf::ema_update(t_.ema.span(), t_.model.params().values(), decay);
  }
  void swa_accumulate() override {
    pgolf::swa_accumulate(t_.swa.span(), t_.model.params().values());
  }

  EvalResult evaluate(const std::vector<int32_t>& tokens, int64_t seq_len, int64_t batch_seqs,
                      const ByteLuts& luts) override {
    return evaluate_standard(t_.model, tokens, seq_len, batch_seqs, luts);
  }
  EvalResult evaluate_sliding(const std::vector<int32_t>& tokens, int64_t seq_len,
                              int64_t stride, int64_t batch_seqs, const ByteLuts& luts) override {
    return pgolf::evaluate_sliding(t_.model, tokens, seq_len, stride, batch_seqs, luts);
  }

  void to_host() override {}
  void from_host() override {}

 private:
  TrainTensors t_;
  bool qat_ = false;
  double loss_ = 0;
  int64_t micro_steps_ = 0;
};

}  // namespace

std::unique_ptr<StepRunner> make_step_runner(Device device, TrainTensors tensors) {
  if (device == Device::kCpu) return std::make_unique<CpuStepRunner>(tensors);
#ifdef PGOLF_HAVE_CUDA
  return cuda::make_cuda_step_runner(tensors);
#else
  fail("internal: a CUDA runner asked of a pgolf built without CUDA");
#endif
}

}  // namespace pgolf
