// Standard evaluation (SPEC §4): the validation tokens in non-overlapping windows of
// seq_len, every target scored once; val_loss = mean NLL (nats), val_bpb = (Σ NLL / ln 2) /
// Σ bytes with bytes from the tokenizer's look-up tables; sums in float64.
//
// Data parallel (issue 8): under mpirun each rank scores a contiguous share of the windows
// (rank_share) and the ranks' ScoreSums are all-reduced, so every rank returns the same
// EvalResult; a world of one is the single-process evaluation, bit for bit.
#pragma once
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "dist/comm.h"
#include "eval/byte_luts.h"
#include "model/model.h"

namespace pgolf {

struct EvalResult {
  double val_loss = 0, val_bpb = 0;
  int64_t tokens = 0;
  double bytes = 0;
  double seconds = 0;
};

// Σ NLL (nats) and Σ bytes of some scored targets, in float64, and how many (SPEC §4).
struct ScoreSums {
  double nll = 0, bytes = 0;
  int64_t tokens = 0;

  // Adds n scored targets prev[1..n] (after prev[0..n-1]) and their losses.
  template <typename T>
  void add(const T* losses, const int32_t* prev, int64_t n, const ByteLuts& luts) {
    for (int64_t i = 0; i < n; ++i) nll += double(losses[i]);
    bytes += count_bytes(luts, prev, prev + 1, n);
    tokens += n;
  }

  // Each field becomes its sum over the ranks of `comm` (float64 sums, int64 count); the
  // same bits on every rank, and no change in a world of one.
  void all_reduce(const dist::Comm& comm);
};

// Rank r's contiguous share [r·n/N, (r+1)·n/N) of n items among N ranks (the reference's
// split of its evaluation windows): the shares tile [0, n) in rank order, sizes differing
// by at most one; a world of one gets [0, n).
struct Share {
  int64_t begin = 0, end = 0;
  int64_t size() const { return end - begin; }
};
Share rank_share(int64_t n, const dist::Comm& comm);

// val_loss = Σ NLL / tokens and val_bpb = Σ NLL / ln 2 / Σ bytes of the sums.
EvalResult eval_result(const ScoreSums& sums, double seconds);

// `tokens` holds windows * seq_len + 1 tokens (load_validation_tokens); `batch_seqs`
// windows go through the model at a time. Every rank of `comm` must call it with the same
// arguments; each scores its rank_share of the windows.
template <typename T>
EvalResult evaluate_standard(Model<T>& model, const std::vector<int32_t>& tokens, int64_t seq_len,
                             int64_t batch_seqs, const ByteLuts& luts,
                             const dist::Comm& comm = dist::world());

// evaluate_standard's loop for any backend: score(x, B) runs the B windows starting at
// tokens pointer x (targets x + 1) and returns a pointer to their B * seq_len per-token
// losses (float or double), valid until the next call.
template <typename Score>
EvalResult evaluate_standard_with(Score&& score, const std::vector<int32_t>& tokens,
                                  int64_t seq_len, int64_t batch_seqs, const ByteLuts& luts,
                                  const dist::Comm& comm = dist::world()) {
  const auto start = std::chrono::steady_clock::now();
  const int64_t windows = (int64_t(tokens.size()) - 1) / seq_len;
  PGOLF_CHECK(windows > 0, "evaluation needs at least ", seq_len + 1, " tokens");
  batch_seqs = std::max<int64_t>(1, std::min(batch_seqs, windows));
  const Share share = rank_share(windows, comm);
  ScoreSums sums;
  for (int64_t w0 = share.begin; w0 < share.end; w0 += batch_seqs) {
    const int64_t B = std::min(batch_seqs, share.end - w0);
    const int32_t* x = tokens.data() + w0 * seq_len;  // targets are x shifted by one
    sums.add(score(x, B), x, B * seq_len, luts);
  }
  sums.all_reduce(comm);
  return eval_result(
      sums, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

}  // namespace pgolf
