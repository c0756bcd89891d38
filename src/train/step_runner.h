// The work of a training step on one device (issue 7): the trainer (train/trainer.cpp) owns the
// loop, the schedule, the files and the host copies of every tensor; a StepRunner does the
// per-step arithmetic where the run computes. The CPU runner works on the host copies
// themselves. The CUDA runner (train/cuda/cuda_step_runner.h) keeps its own copies resident on
// the GPU between steps and exchanges them with the host ones only at to_host()/from_host():
// checkpoints, depth switches, the warm-up's roll-back and the end of training.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/buffer.h"
#include "core/device.h"
#include "eval/evaluate.h"
#include "model/model.h"
#include "train/optimizer_set.h"
#include "train/qat.h"

namespace pgolf {

// The run's host tensors (each must outlive the runner). ema / swa are empty when off.
struct TrainTensors {
  Model<float>& model;
  OptimizerSet& optimizers;
  QatShadow& qat;
  Buffer<float>& ema;
  Buffer<float>& swa;
};

class StepRunner {
 public:
  virtual ~StepRunner() = default;

  // One line for the log: the device and its size.
  virtual std::string describe() const = 0;

  // A step: begin_step (gradients and loss to zero; with qat, the matrices fake-quantised,
  // SPEC §3 late QAT), one micro_step per micro-batch (forward, then backward scaled by
  // grad_scale), end_step (the full-precision matrices back; returns the mean of the
  // micro-batches' losses), then optimizer_step.
  virtual void begin_step(bool qat) = 0;
  virtual void micro_step(const std::vector<int32_t>& x, const std::vector<int32_t>& y,
                          int64_t seq_len, double grad_scale) = 0;
  virtual double end_step() = 0;
  virtual void optimizer_step(double lr_scale, double muon_momentum, double clip_norm) = 0;

  // Weight averaging after a step (SPEC §3; optim/averaging.h).
  virtual void ema_update(double decay) = 0;
  virtual void swa_accumulate() = 0;

  // The standard and sliding-window evaluations (SPEC §4) of the runner's current weights.
  virtual EvalResult evaluate(const std::vector<int32_t>& tokens, int64_t seq_len,
                              int64_t batch_seqs, const ByteLuts& luts) = 0;
  virtual EvalResult evaluate_sliding(const std::vector<int32_t>& tokens, int64_t seq_len,
                                      int64_t stride, int64_t batch_seqs,
                                      const ByteLuts& luts) = 0;

  // Device → host: the weights, the optimizer state and step counts, EMA and SWA into the
  // TrainTensors; host → device: the other way, after the host copies changed (a resume, a
  // depth switch, a roll-back, decoded weights). The depth stage follows the host model's.
  virtual void to_host() = 0;
  virtual void from_host() = 0;

  // The most device memory the run held at once, in bytes (0 on the CPU).
  virtual int64_t peak_device_bytes() const { return 0; }
};

// The runner for `device`; the CUDA one needs a CUDA build (core/device.h resolves that).
std::unique_ptr<StepRunner> make_step_runner(Device device, TrainTensors tensors);

}  // namespace pgolf
