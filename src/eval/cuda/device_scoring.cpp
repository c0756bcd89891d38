#include "eval/cuda/device_scoring.h"

#include <algorithm>

#include "eval/sliding.h"

namespace pgolf::cuda {

EvalResult evaluate_standard(DeviceModel& model, const std::vector<int32_t>& tokens,
                             int64_t seq_len, int64_t batch_seqs, const ByteLuts& luts) {
  std::vector<float> losses;
  return evaluate_standard_with(
      [&](const int32_t* x, int64_t B) {
        model.forward(x, x + 1, B, seq_len);
        losses = model.token_losses();
        return losses.data();
      },
      tokens, seq_len, batch_seqs, luts);
}

// Every row is scored on the device; rows [first_row, seq_len) of each window are kept, the
// layout score_windows_with reads.
EvalResult evaluate_sliding(DeviceModel& model, const std::vector<int32_t>& tokens,
                            int64_t seq_len, int64_t stride, int64_t batch_seqs,
                            const ByteLuts& luts, bool reference_tail) {
  std::vector<float> kept;
  return evaluate_sliding_with(
      [&](const int32_t* x, const int32_t* y, int64_t B, int64_t first_row) {
        model.forward(x, y, B, seq_len);
        const std::vector<float> all = model.token_losses();
        kept.resize(size_t(B * (seq_len - first_row)));
        for (int64_t b = 0; b < B; ++b)
          std::copy(all.begin() + b * seq_len + first_row, all.begin() + (b + 1) * seq_len,
                    kept.begin() + b * (seq_len - first_row));
        return kept.data();
      },
      tokens, seq_len, stride, batch_seqs, luts, reference_tail);
}

}  // namespace pgolf::cuda
