#include "eval/evaluate.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <span>

#include "core/error.h"

namespace pgolf {

void ScoreSums::all_reduce(const dist::Comm& comm) {
  double sums[2] = {nll, bytes};
  comm.all_reduce_sum(std::span<double>(sums));
  comm.all_reduce_sum(std::span<int64_t>(&tokens, 1));
  nll = sums[0];
  bytes = sums[1];
}

Share rank_share(int64_t n, const dist::Comm& comm) {
  const int64_t r = comm.rank(), N = comm.size();
  return {r * n / N, (r + 1) * n / N};
}

template <typename T>
EvalResult evaluate_standard(Model<T>& model, const std::vector<int32_t>& tokens, int64_t seq_len,
                             int64_t batch_seqs, const ByteLuts& luts, const dist::Comm& comm) {
  const auto start = std::chrono::steady_clock::now();
  const int64_t windows = (int64_t(tokens.size()) - 1) / seq_len;
  PGOLF_CHECK(windows > 0, "evaluation needs at least ", seq_len + 1, " tokens");
  batch_seqs = std::max<int64_t>(1, std::min(batch_seqs, windows));
  const Share share = rank_share(windows, comm);
  ScoreSums sums;
  for (int64_t w0 = share.begin; w0 < share.end; w0 += batch_seqs) {
    const int64_t B = std::min(batch_seqs, share.end - w0), n = B * seq_len;
    const int32_t* x = tokens.data() + w0 * seq_len;  // targets are x shifted by one
    model.forward(x, x + 1, B, seq_len);
    sums.add(model.token_losses(), x, n, luts);
  }
  sums.all_reduce(comm);
  return eval_result(
      sums, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

EvalResult eval_result(const ScoreSums& sums, double seconds) {
  EvalResult r;
  r.tokens = sums.tokens;
  r.bytes = sums.bytes;
  r.val_loss = sums.nll / double(sums.tokens);
  r.val_bpb = sums.nll / std::log(2.0) / sums.bytes;
  r.seconds = seconds;
  return r;
}

template EvalResult evaluate_standard<float>(Model<float>&, const std::vector<int32_t>&, int64_t,
                                             int64_t, const ByteLuts&, const dist::Comm&);
template EvalResult evaluate_standard<double>(Model<double>&, const std::vector<int32_t>&,
                                              int64_t, int64_t, const ByteLuts&,
                                              const dist::Comm&);

}  // namespace pgolf
