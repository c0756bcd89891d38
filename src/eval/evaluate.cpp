#include "eval/evaluate.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "core/error.h"

namespace pgolf {

template <typename T>
EvalResult evaluate_standard(Model<T>& model, const std::vector<int32_t>& tokens, int64_t seq_len,
                             int64_t batch_seqs, const ByteLuts& luts) {
  const auto start = std::chrono::steady_clock::now();
  const int64_t windows = (int64_t(tokens.size()) - 1) / seq_len;
  PGOLF_CHECK(windows > 0, "evaluation needs at least ", seq_len + 1, " tokens");
  batch_seqs = std::max<int64_t>(1, std::min(batch_seqs, windows));
  EvalResult r;
  double nll = 0;
  for (int64_t w0 = 0; w0 < windows; w0 += batch_seqs) {
    const int64_t B = std::min(batch_seqs, windows - w0), n = B * seq_len;
    const int32_t* x = tokens.data() + w0 * seq_len;  // targets are x shifted by one
    model.forward(x, x + 1, B, seq_len);
    const T* losses = model.token_losses();
    for (int64_t i = 0; i < n; ++i) nll += double(losses[i]);
    r.bytes += count_bytes(luts, x, x + 1, n);
    r.tokens += n;
  }
  r.val_loss = nll / double(r.tokens);
  r.val_bpb = nll / std::log(2.0) / r.bytes;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

template EvalResult evaluate_standard<float>(Model<float>&, const std::vector<int32_t>&, int64_t,
                                             int64_t, const ByteLuts&);
template EvalResult evaluate_standard<double>(Model<double>&, const std::vector<int32_t>&,
                                              int64_t, int64_t, const ByteLuts&);

}  // namespace pgolf
