// `pgolf eval --device cuda` (issue 7): the standard or sliding-window evaluation of a host
// model with a copy of it on GPU 0 (eval/cuda/device_scoring.h). A host-only header for the
// command line; core/device.h has decided that this build has CUDA and a GPU before any call.
#pragma once
#include <cstdint>
#include <vector>

#include "eval/evaluate.h"
#include "model/model.h"

namespace pgolf {

// stride 0: standard windows; else sliding windows of seq_len every stride (plan_windows,
// with the reference's tail when reference_tail). Temperature 1: the GPU forward has none.
EvalResult evaluate_on_gpu(const Model<float>& model, const std::vector<int32_t>& tokens,
                           int64_t seq_len, int64_t stride, int64_t batch_seqs,
                           const ByteLuts& luts, bool reference_tail);

}  // namespace pgolf
