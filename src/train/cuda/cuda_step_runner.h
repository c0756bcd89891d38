// The training step on one GPU (issue 7; train/step_runner.h): the weights, their gradients,
// the optimizer state, EMA and SWA live on the device for the whole run, and the host copies
// are refreshed only at to_host(). Each micro-step (forward + backward of one micro-batch) and
// each optimizer step is captured once in a CUDA graph and replayed; a graph is captured
// anew when the model's activations were re-planned (model/cuda/device_model.h generation()),
// and the first run of each is eager, so every lazily sized buffer exists before a capture.
// A plain C++ header.
#pragma once
#include <memory>

#include "train/step_runner.h"

namespace pgolf::cuda {

// A runner on CUDA device 0 (the first in CUDA_VISIBLE_DEVICES). Throws pgolf::Error when the
// model has a feature the CUDA kernels cannot run (model/cuda/device_model.h).
std::unique_ptr<StepRunner> make_cuda_step_runner(TrainTensors tensors);

}  // namespace pgolf::cuda
