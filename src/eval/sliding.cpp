#include "eval/sliding.h"

#include <algorithm>

#include "core/error.h"

namespace pgolf {

std::vector<Window> plan_windows(int64_t n, int64_t seq_len, int64_t stride, bool reference_tail) {
  PGOLF_CHECK(n > 0, "sliding evaluation needs at least one target");
  PGOLF_CHECK(seq_len > 0 && stride >= 1 && stride <= seq_len, "the stride must lie in 1..",
              seq_len, " (the window length), not ", stride);
  std::vector<Window> w;
  if (reference_tail) {  // the reference: for ws in range(0, n, stride), cut at n
    for (int64_t s = 0; s < n; s += stride) {
      const int64_t end = std::min(s + seq_len, n);
      w.push_back({s, s == 0 ? 0 : std::max(end - stride, s), end});
    }
    return w;
  }
  w.push_back({0, 0, std::min(seq_len, n)});
  for (int64_t s = stride; s + seq_len <= n; s += stride)
    w.push_back({s, s + seq_len - stride, s + seq_len});
  const int64_t scored = w.back().end;
  if (scored < n) w.push_back({n - seq_len, scored, n});  // flush with the end (see header)
  return w;
}

template <typename T>
void score_windows(Model<T>& model, const std::vector<int32_t>& tokens,
                   std::span<const Window> windows, int64_t seq_len, const ByteLuts& luts,
                   ScoreSums& sums, double temperature) {
  score_windows_with(
      [&](const int32_t* x, const int32_t* y, int64_t B, int64_t first_row) {
        return model.forward_scored(x, y, B, seq_len, first_row, temperature);
      },
      tokens, windows, seq_len, luts, sums);
}

template <typename T>
EvalResult evaluate_sliding(Model<T>& model, const std::vector<int32_t>& tokens, int64_t seq_len,
                            int64_t stride, int64_t batch_seqs, const ByteLuts& luts,
                            bool reference_tail, double temperature, const dist::Comm& comm) {
  return evaluate_sliding_with(
      [&](const int32_t* x, const int32_t* y, int64_t B, int64_t first_row) {
        return model.forward_scored(x, y, B, seq_len, first_row, temperature);
      },
      tokens, seq_len, stride, batch_seqs, luts, reference_tail, comm);
}

#define PGOLF_INSTANTIATE(T)                                                                      \
  template void score_windows<T>(Model<T>&, const std::vector<int32_t>&, std::span<const Window>, \
                                 int64_t, const ByteLuts&, ScoreSums&, double);                   \
  template EvalResult evaluate_sliding<T>(Model<T>&, const std::vector<int32_t>&, int64_t,        \
                                          int64_t, int64_t, const ByteLuts&, bool, double,        \
                                          const dist::Comm&);
PGOLF_INSTANTIATE(float)
PGOLF_INSTANTIATE(double)
#undef PGOLF_INSTANTIATE

}  // namespace pgolf
