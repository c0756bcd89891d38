// `pgolf eval --tokens` and `pgolf grad`: score the first B*T+1 tokens of a shard as B
// contiguous sequences (x = tokens[i*T, i*T+T), y = x shifted by one) with a checkpoint,
// and for grad also write d(loss)/d(param) under the parameter names (SPEC §6).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/error.h"
#include "io/shard.h"
#include "model/checkpoint.h"

namespace pgolf {
namespace {

struct ScoreOptions {
  std::string checkpoint, tokens, out;
  int64_t seq_len = 1024, batch = 1;
  bool json = false, fp64 = false;
};

void add_score_options(CLI::App* cmd, ScoreOptions& o) {
  cmd->add_option("--checkpoint", o.checkpoint, "Model checkpoint (.safetensors)")->required();
  cmd->add_option("--tokens", o.tokens, "Token shard whose first B*T+1 tokens are scored")
      ->required();
  cmd->add_option("--seq-len", o.seq_len, "Sequence length T")->capture_default_str();
  cmd->add_option("--batch", o.batch, "Number of sequences B")->capture_default_str();
  cmd->add_flag("--json", o.json, "Print one JSON object instead of a line of text");
  cmd->add_flag("--fp64", o.fp64, "Compute in double precision (for checking)");
}

template <typename T>
void run_score(const ScoreOptions& o, bool with_grad) {
  PGOLF_CHECK(o.seq_len > 0 && o.batch > 0, "--seq-len and --batch must be positive");
  auto model = load_checkpoint<T>(o.checkpoint);
  const int64_t n = o.batch * o.seq_len;
  std::vector<uint16_t> tokens = io::read_shard(o.tokens, n + 1);
  const int64_t V = model->config().vocab_size;
  std::vector<int32_t> x(static_cast<size_t>(n)), y(static_cast<size_t>(n));
  for (int64_t i = 0; i <= n; ++i)
    PGOLF_CHECK(tokens[size_t(i)] < V, o.tokens, ": token ", tokens[size_t(i)], " at position ", i,
                " is outside the checkpoint's vocabulary of ", V);
  for (int64_t i = 0; i < n; ++i) {
    x[size_t(i)] = tokens[size_t(i)];
    y[size_t(i)] = tokens[size_t(i + 1)];
  }

  auto start = std::chrono::steady_clock::now();
  double loss = model->forward(x.data(), y.data(), o.batch, o.seq_len);
  PGOLF_CHECK(std::isfinite(loss), "the loss of ", o.checkpoint, " on ", o.tokens, " is ", loss,
              " (the weights overflow in the forward pass)");
  if (with_grad) {
    model->params().zero_grads();
    model->backward();
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (with_grad)
    io::write_safetensors(o.out, to_safetensors(model->plan(), model->params().grads().data()));

  if (o.json) {
    nlohmann::json j = {{"val_loss", loss}, {"tokens", n}, {"seconds", seconds}};
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("val_loss %.6f over %lld tokens (%.3f s)%s%s\n", loss, (long long)n, seconds,
                with_grad ? ", gradients written to " : "", with_grad ? o.out.c_str() : "");
  }
}

}  // namespace

void add_score_commands(CLI::App& app) {
  auto eval_opt = std::make_shared<ScoreOptions>();
  auto* eval = app.add_subcommand(
      "eval", "Score a checkpoint on the first B*T+1 tokens of a shard (mean cross-entropy)");
  add_score_options(eval, *eval_opt);
  eval->callback([eval_opt] {
    eval_opt->fp64 ? run_score<double>(*eval_opt, false) : run_score<float>(*eval_opt, false);
  });

  auto grad_opt = std::make_shared<ScoreOptions>();
  auto* grad = app.add_subcommand(
      "grad", "Like eval, and write d(loss)/d(param) for every parameter to --out");
  add_score_options(grad, *grad_opt);
  grad->add_option("--out", grad_opt->out, "Gradients file to write (.safetensors)")->required();
  grad->callback([grad_opt] {
    grad_opt->fp64 ? run_score<double>(*grad_opt, true) : run_score<float>(*grad_opt, true);
  });
}

}  // namespace pgolf
