#include "eval/sliding.h"

#include <algorithm>
#include <chrono>
#include <cmath>

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
  if (windows.empty()) return;
  const auto B = int64_t(windows.size());
  std::vector<int32_t> x(size_t(B * seq_len), 0), y(size_t(B * seq_len), 0);
  int64_t first_row = seq_len;
  for (int64_t b = 0; b < B; ++b) {
    const Window& w = windows[size_t(b)];
    PGOLF_CHECK(w.start >= 0 && w.start <= w.score_from && w.score_from < w.end &&
                    w.end - w.start <= seq_len && w.end < int64_t(tokens.size()),
                "internal: window [", w.start, ", ", w.end, ") scoring from ", w.score_from,
                " does not fit ", tokens.size(), " tokens and windows of ", seq_len);
    std::copy(tokens.begin() + w.start, tokens.begin() + w.end, x.begin() + b * seq_len);
    std::copy(tokens.begin() + w.start + 1, tokens.begin() + w.end + 1, y.begin() + b * seq_len);
    first_row = std::min(first_row, w.score_from - w.start);
  }
  const T* losses = model.forward_scored(x.data(), y.data(), B, seq_len, first_row, temperature);
  const int64_t rows = seq_len - first_row;  // losses holds rows [first_row, seq_len) per window
  for (int64_t b = 0; b < B; ++b) {
    const Window& w = windows[size_t(b)];
    sums.add(losses + b * rows + (w.score_from - w.start - first_row),
             tokens.data() + w.score_from, w.end - w.score_from, luts);
  }
}

template <typename T>
EvalResult evaluate_sliding(Model<T>& model, const std::vector<int32_t>& tokens, int64_t seq_len,
                            int64_t stride, int64_t batch_seqs, const ByteLuts& luts,
                            bool reference_tail, double temperature, const dist::Comm& comm) {
  const auto start = std::chrono::steady_clock::now();
  const std::vector<Window> windows =
      plan_windows(int64_t(tokens.size()) - 1, seq_len, stride, reference_tail);
  const Share share = rank_share(int64_t(windows.size()), comm);
  const std::span<const Window> mine =
      std::span<const Window>(windows).subspan(size_t(share.begin), size_t(share.size()));
  batch_seqs = std::max<int64_t>(1, batch_seqs);
  ScoreSums sums;
  for (size_t i = 0; i < mine.size(); i += size_t(batch_seqs))
    score_windows(model, tokens, mine.subspan(i, std::min(mine.size() - i, size_t(batch_seqs))),
                  seq_len, luts, sums, temperature);
  sums.all_reduce(comm);
  return eval_result(
      sums, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
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
