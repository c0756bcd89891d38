// Sliding-window evaluation (SPEC §4): windows of seq_len tokens start every `stride`
// tokens; the first window scores all its targets, every later one only its last `stride`,
// so that every target is scored once with at least seq_len - stride tokens of context
// (fewer only where the split begins). Score-first TTT scores its chunks with the same
// plan and scorer.
#pragma once
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <span>
#include <vector>

#include "core/error.h"
#include "eval/byte_luts.h"
#include "eval/evaluate.h"
#include "model/model.h"

namespace pgolf {

// Target i is tokens[i + 1] predicted from tokens[..i]; a split of n + 1 tokens has targets
// 0..n-1. A window's inputs are tokens[start, end), its targets [start, end) (at most
// seq_len of them), and it scores targets [score_from, end). Target i's context in its
// window is i - start earlier tokens.
struct Window {
  int64_t start, score_from, end;
};

// The windows over n targets, in order. pgolf's rule (SPEC §4): every target is scored by
// exactly one window. A window that would run past the end is not made; instead one last
// window lies flush with the end, [n - seq_len, n), and scores the r < stride targets no
// window has scored yet, so they keep at least seq_len - r tokens of context, more than
// anywhere else. n <= seq_len gives one window of n targets.
// reference_tail reproduces the reference's eval_val_sliding for comparisons: windows
// start at every multiple of stride below n, a window running past the end is cut there,
// and each scores its last min(stride, length) targets, so the last `stride` targets are
// scored again by every cut window (seq_len - stride extra targets when stride divides
// seq_len and n is a multiple of it; 1,984 on the challenge's split at 2048/64).
std::vector<Window> plan_windows(int64_t n, int64_t seq_len, int64_t stride,
                                 bool reference_tail = false);

// Runs `windows` through the model as one batch [windows.size(), seq_len] and adds their
// scored targets to `sums`, one target at a time in window order (a running float64 sum:
// the order evaluate_standard adds in, so stride = seq_len reproduces it bit for bit). A
// window shorter than seq_len is padded at its end with token 0; attention is causal, so
// padding never reaches a scored target, and every forward has the seq_len the RoPE base
// depends on. The head runs only on rows from the earliest scored one (forward_scored).
// No windows, nothing added.
// `temperature` divides the capped logits before scoring (1 = none; #490 tried 0.98).
template <typename T>
void score_windows(Model<T>& model, const std::vector<int32_t>& tokens,
                   std::span<const Window> windows, int64_t seq_len, const ByteLuts& luts,
                   ScoreSums& sums, double temperature = 1.0);

// score_windows and evaluate_sliding for any backend: forward(x, y, B, first_row) runs the B
// windows x, y ([B, seq_len] each) and returns a pointer to the per-token losses (float or
// double) of rows [first_row, seq_len) of every window, window after window, valid until
// the next call.
template <typename Forward>
void score_windows_with(Forward&& forward, const std::vector<int32_t>& tokens,
                        std::span<const Window> windows, int64_t seq_len, const ByteLuts& luts,
                        ScoreSums& sums) {
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
  const auto* losses = forward(x.data(), y.data(), B, first_row);
  const int64_t rows = seq_len - first_row;  // losses holds rows [first_row, seq_len) per window
  for (int64_t b = 0; b < B; ++b) {
    const Window& w = windows[size_t(b)];
    sums.add(losses + b * rows + (w.score_from - w.start - first_row),
             tokens.data() + w.score_from, w.end - w.score_from, luts);
  }
}

template <typename Forward>
EvalResult evaluate_sliding_with(Forward&& forward, const std::vector<int32_t>& tokens,
                                 int64_t seq_len, int64_t stride, int64_t batch_seqs,
                                 const ByteLuts& luts, bool reference_tail = false,
                                 const dist::Comm& comm = dist::world()) {
  const auto start = std::chrono::steady_clock::now();
  const std::vector<Window> windows =
      plan_windows(int64_t(tokens.size()) - 1, seq_len, stride, reference_tail);
  const Share share = rank_share(int64_t(windows.size()), comm);
  const std::span<const Window> mine =
      std::span<const Window>(windows).subspan(size_t(share.begin), size_t(share.size()));
  batch_seqs = std::max<int64_t>(1, batch_seqs);
  ScoreSums sums;
  for (size_t i = 0; i < mine.size(); i += size_t(batch_seqs))
    score_windows_with(forward, tokens,
                       mine.subspan(i, std::min(mine.size() - i, size_t(batch_seqs))), seq_len,
                       luts, sums);
  sums.all_reduce(comm);
  return eval_result(
      sums, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

// The sliding evaluation of `tokens` (n + 1 tokens, n targets): plan_windows, then
// batch_seqs windows per forward. val_loss = Σ NLL / tokens, val_bpb = Σ NLL / ln 2 / Σ bytes.
// Every rank of `comm` calls it alike; each scores its rank_share of the planned windows and
// the sums are all-reduced (eval/evaluate.h).
template <typename T>
EvalResult evaluate_sliding(Model<T>& model, const std::vector<int32_t>& tokens, int64_t seq_len,
                            int64_t stride, int64_t batch_seqs, const ByteLuts& luts,
                            bool reference_tail = false, double temperature = 1.0,
                            const dist::Comm& comm = dist::world());

}  // namespace pgolf
