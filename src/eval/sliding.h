// Sliding-window evaluation (SPEC §4): windows of seq_len tokens start every `stride`
// tokens; the first window scores all its targets, every later one only its last `stride`,
// so that every target is scored once with at least seq_len - stride tokens of context
// (fewer only where the split begins). Score-first TTT scores its chunks with the same
// plan and scorer.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

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
