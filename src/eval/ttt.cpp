#include "eval/ttt.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <numbers>
#include <span>

#include "core/error.h"
#include "eval/sliding.h"
#include "model/untie.h"
#include "optim/adamw.h"
#include "optim/grad_clip.h"
#include "optim/sgd.h"

namespace pgolf {
namespace {

// The layout indices of virtual layer v's tensors: its per-layer ones and its block's.
std::vector<int> layer_tensors(const ModelPlan& plan, int64_t v) {
  std::vector<int> out = plan.layers[size_t(v)].all();
  const std::vector<int> matrices = plan.layer_mats[size_t(v)].all();
  out.insert(out.end(), matrices.begin(), matrices.end());
  std::erase(out, -1);
  return out;
}

// The optimizer of the adapted tensors (TttOptions::optimizer).
class TttOptimizer {
 public:
  TttOptimizer(std::vector<ParamRef<float>> refs, const TttOptions& opt) {
    if (opt.optimizer == "sgd") {
      sgd_ = std::make_unique<SgdMomentum<float>>(std::move(refs), opt.momentum);
    } else {
      PGOLF_CHECK(opt.optimizer == "adamw", "unknown TTT optimizer \"", opt.optimizer,
                  "\" (sgd or adamw)");
      adam_ = std::make_unique<AdamW<float>>(std::move(refs), opt.adam_beta1, opt.adam_beta2,
                                             opt.adam_eps);
    }
  }
  void step(double lr) { sgd_ ? sgd_->step(lr) : adam_->step(lr, 0.0); }

 private:
  std::unique_ptr<SgdMomentum<float>> sgd_;
  std::unique_ptr<AdamW<float>> adam_;
};

// Each adapted tensor's gradient becomes its sum over the ranks, through one buffer and one
// all-reduce. A world of one has nothing to add.
void all_reduce_grads(std::span<const ParamRef<float>> refs, std::vector<float>& buffer,
                      const dist::Comm& comm) {
  if (!comm.distributed()) return;
  buffer.clear();
  for (const ParamRef<float>& r : refs) buffer.insert(buffer.end(), r.grad, r.grad + r.numel());
  comm.all_reduce_sum(std::span<float>(buffer));
  const float* sum = buffer.data();
  for (const ParamRef<float>& r : refs) {
    std::copy_n(sum, r.numel(), r.grad);
    sum += r.numel();
  }
}

void check_options(const TttOptions& o, int64_t seq_len) {
  PGOLF_CHECK(o.chunk_tokens > 0, "TTT chunk tokens must be positive, got ", o.chunk_tokens);
  PGOLF_CHECK(o.epochs >= 0, "TTT epochs must be 0 or more, got ", o.epochs);
  PGOLF_CHECK(o.lr >= 0 && std::isfinite(o.lr), "TTT learning rate must be >= 0, got ", o.lr);
  PGOLF_CHECK(o.momentum >= 0 && o.momentum < 1, "TTT momentum must be in [0, 1), got ",
              o.momentum);
  PGOLF_CHECK(o.grad_clip >= 0, "TTT grad clip must be >= 0 (0 = off), got ", o.grad_clip);
  PGOLF_CHECK(o.batch_seqs > 0 && o.micro_seqs > 0, "TTT batch and micro-batch sequences must "
              "be positive");
  PGOLF_CHECK(o.freeze_blocks >= 0 && o.adapt_last >= 0,
              "TTT frozen / adapted layer counts must be >= 0");
  PGOLF_CHECK(seq_len > 0, "TTT needs a positive sequence length");
  PGOLF_CHECK(o.temperature > 0, "the scoring temperature must be positive, got ", o.temperature);
}

}  // namespace

nlohmann::json to_json(const TttOptions& o) {
  return {{"chunk_tokens", o.chunk_tokens}, {"epochs", o.epochs}, {"lr", o.lr},
          {"momentum", o.momentum}, {"grad_clip", o.grad_clip}, {"batch_seqs", o.batch_seqs},
          {"freeze_blocks", o.freeze_blocks}, {"adapt_last", o.adapt_last},
          {"optimizer", o.optimizer}, {"temperature", o.temperature}, {"untie", o.untie}};
}

std::vector<bool> ttt_adapted(const ModelPlan& plan, const TttOptions& opt) {
  const int64_t L = int64_t(plan.wiring.size());
  const auto& infos = plan.layout.infos();
  std::vector<bool> adapted(infos.size(), true);
  if (opt.adapt_last > 0) {  // #490: the last k layers, norms/scales/gains, head, tok_emb
    std::fill(adapted.begin(), adapted.end(), false);
    for (int64_t v = std::max<int64_t>(0, L - opt.adapt_last); v < L; ++v)
      for (int i : layer_tensors(plan, v)) adapted[size_t(i)] = true;
    for (size_t i = 0; i < infos.size(); ++i) {
      const std::string& n = infos[i].name;
      if (n.find("norm") != std::string::npos || n.find("scale") != std::string::npos ||
          n.find("lm_head") != std::string::npos || n.find("gain") != std::string::npos)
        adapted[i] = true;
    }
    if (plan.tok_emb >= 0) adapted[size_t(plan.tok_emb)] = true;
    return adapted;
  }
  // SPEC §4: frozen are the first N layers' tensors, except a block matrix a later layer uses.
  const int64_t frozen = std::min(opt.freeze_blocks, L);
  for (int64_t v = 0; v < frozen; ++v)
    for (int i : layer_tensors(plan, v)) adapted[size_t(i)] = false;
  for (int64_t v = frozen; v < L; ++v)
    for (int i : layer_tensors(plan, v)) adapted[size_t(i)] = true;
  return adapted;
}

EvalResult evaluate_ttt(Model<float>& model, const std::vector<int32_t>& tokens,
                        int64_t seq_len, int64_t stride, int64_t score_batch,
                        const ByteLuts& luts, const TttOptions& opt, const TttHooks& hooks,
                        const dist::Comm& comm) {
  check_options(opt, seq_len);
  if (opt.untie) {
    const auto twin = untied_twin(model);
    TttOptions tied = opt;
    tied.untie = false;
    return evaluate_ttt(*twin, tokens, seq_len, stride, score_batch, luts, tied, hooks, comm);
  }
  const auto start = std::chrono::steady_clock::now();
  const int64_t n = int64_t(tokens.size()) - 1;
  PGOLF_CHECK(n > 0, "TTT needs at least 2 validation tokens");
  score_batch = std::max<int64_t>(1, score_batch);

  // Each window goes to the chunk of its first scored target.
  const std::vector<Window> windows = plan_windows(n, seq_len, stride);
  const int64_t chunks = (n + opt.chunk_tokens - 1) / opt.chunk_tokens;
  std::vector<std::vector<Window>> by_chunk(static_cast<size_t>(chunks));
  for (const Window& w : windows)
    by_chunk[size_t(std::min(w.score_from / opt.chunk_tokens, chunks - 1))].push_back(w);

  const ModelPlan& plan = model.plan();
  const std::vector<bool> adapted = ttt_adapted(plan, opt);
  std::vector<ParamRef<float>> refs;
  for (size_t i = 0; i < adapted.size(); ++i)
    if (adapted[i]) refs.push_back(param_ref(model.params(), int(i)));
  TttOptimizer optimizer(refs, opt);
  auto grads = model.params().grads();
  std::vector<float> grad_sum;  // all_reduce_grads' buffer

  ScoreSums sums, total;  // this rank's scores; everyone's (after each chunk)
  auto seconds = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  for (int64_t c = 0; c < chunks; ++c) {
    // 1. Score this rank's share of the chunk's windows with the current weights.
    const std::vector<Window>& chunk_windows = by_chunk[size_t(c)];
    const Share share = rank_share(int64_t(chunk_windows.size()), comm);
    for (int64_t w0 = share.begin; w0 < share.end; w0 += score_batch) {
      const int64_t count = std::min(score_batch, share.end - w0);
      std::span<const Window> batch(chunk_windows.data() + w0, size_t(count));
      score_windows(model, tokens, batch, seq_len, luts, sums, opt.temperature);
      if (hooks.on_event)
        for (const Window& w : batch) hooks.on_event({false, c, w.score_from, w.end});
    }
    // 2. Train on it (never on the last chunk): whole sequences of its targets.
    const int64_t chunk_begin = c * opt.chunk_tokens;
    const int64_t seqs = (std::min(chunk_begin + opt.chunk_tokens, n) - chunk_begin) / seq_len;
    if (c + 1 < chunks && opt.epochs > 0 && seqs > 0) {
      const double lr = opt.lr * 0.5 *
                        (1.0 + std::cos(std::numbers::pi * double(c) /
                                        double(std::max<int64_t>(chunks - 1, 1))));
      for (int64_t epoch = 0; epoch < opt.epochs; ++epoch) {
        for (int64_t s0 = 0; s0 < seqs; s0 += opt.batch_seqs) {
          const int64_t batch = std::min(opt.batch_seqs, seqs - s0);
          model.params().zero_grads();
          // Mean loss over the batch = Σ over micro-batches of (micro / batch) · micro mean;
          // this rank's micro-batches cover its share of the batch, and the ranks' gradients
          // add up to the whole (all_reduce_grads).
          const Share mine = rank_share(batch, comm);
          for (int64_t m0 = mine.begin; m0 < mine.end; m0 += opt.micro_seqs) {
            const int64_t micro = std::min(opt.micro_seqs, mine.end - m0);
            const int32_t* x = tokens.data() + chunk_begin + (s0 + m0) * seq_len;
            const double loss = model.forward(x, x + 1, micro, seq_len);
            PGOLF_CHECK(std::isfinite(loss), "the TTT loss became ", loss, " in chunk ", c + 1,
                        " of ", chunks, " (lower --ttt-lr)");
            model.backward(double(micro) / double(batch));
          }
          for (size_t i = 0; i < adapted.size(); ++i)  // frozen gradients: not in the norm
            if (!adapted[i]) {
              const ParamInfo& p = plan.layout.info(int(i));
              std::fill_n(grads.data() + p.offset, p.numel, 0.0f);
            }
          all_reduce_grads(refs, grad_sum, comm);
          if (opt.grad_clip > 0) clip_grad_norm(grads, opt.grad_clip);
          optimizer.step(lr);
          if (hooks.on_event) {
            const int64_t b = chunk_begin + s0 * seq_len;
            hooks.on_event({true, c, b, b + batch * seq_len});
          }
        }
      }
    }
    // Every rank sums after every chunk, hook or not, so no rank waits in a collective
    // another skips; after the last chunk `total` is the whole evaluation.
    total = sums;
    total.all_reduce(comm);
    if (hooks.on_chunk)
      hooks.on_chunk(c + 1, chunks, total.nll / std::log(2.0) / std::max(total.bytes, 1.0),
                     seconds());
  }
  return eval_result(total, seconds());
}

}  // namespace pgolf
