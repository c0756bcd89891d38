#include "eval/evaluate.h"

#include <cmath>
#include <span>

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
  return evaluate_standard_with(
      [&](const int32_t* x, int64_t B) {
        model.forward(x, x + 1, B, seq_len);
        return model.token_losses();
      },
      tokens, seq_len, batch_seqs, luts, comm);
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
