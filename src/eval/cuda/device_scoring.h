// The standard and sliding-window evaluations of SPEC §4 with the model on the GPU: the loops
// of eval/evaluate.h and eval/sliding.h (the same windows, the same float64 sums in the same
// order) around DeviceModel's forward, whose per-token losses come back to the host. Unlike
// Model::forward_scored, the GPU forward runs the head on every row and has no temperature
// (the training run's evaluations use 1). A plain C++ header.
#pragma once
#include <cstdint>
#include <vector>

#include "eval/evaluate.h"
#include "model/cuda/device_model.h"

namespace pgolf::cuda {

EvalResult evaluate_standard(DeviceModel& model, const std::vector<int32_t>& tokens,
                             int64_t seq_len, int64_t batch_seqs, const ByteLuts& luts);

// plan_windows(reference_tail) as eval/sliding.h's evaluate_sliding.
EvalResult evaluate_sliding(DeviceModel& model, const std::vector<int32_t>& tokens,
                            int64_t seq_len, int64_t stride, int64_t batch_seqs,
                            const ByteLuts& luts, bool reference_tail = false);

}  // namespace pgolf::cuda
