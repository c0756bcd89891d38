// `pgolf eval` and `pgolf grad` (SPEC §6), on the weights of a --checkpoint or of an
// --artifact (decoded, as the challenge scores them). With --data, eval scores the whole
// validation split (SPEC §4: val_loss, val_bpb): in standard windows, in sliding ones with
// --stride, or with score-first TTT over the sliding windows with --ttt. With --tokens, both
// score the first B*T+1 tokens of a shard as B contiguous sequences (x = tokens[i*T, i*T+T),
// y = x shifted by one), and grad also writes d(loss)/d(param) under the parameter names;
// eval --tokens --stride (or --ttt) scores the whole shard in sliding windows (val_loss only:
// a shard comes without a tokenizer to count bytes).
//
// Under mpirun (docs/distributed.md) eval --data and the sliding / TTT evaluations of a shard
// split their windows across the ranks (eval/evaluate.h); eval --tokens without --stride
// (one forward) runs whole on every rank. Only rank 0 prints. (cli/main.cpp refuses grad
// under several ranks.)
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/error.h"
#include "data/data_dir.h"
#include "data/token_stream.h"
#include "data/tokenizer.h"
#include "dist/comm.h"
#include "core/device.h"
#include "eval/evaluate.h"
#include "eval/scoring_on_gpu.h"
#include "eval/sliding.h"
#include "eval/ttt.h"
#include "io/shard.h"
#include "model/checkpoint.h"
#include "quant/artifact_model.h"

namespace pgolf {
namespace {

struct ScoreOptions {
  std::string checkpoint, artifact, tokens, data, tokenizer, out;
  int64_t seq_len = 1024, batch = 1;
  bool json = false, fp64 = false;
  int64_t active_repeats = 0;  // 0 = every layer; else the depth stage (docs/recurrence.md)
  // eval only: sliding windows (SPEC §4) when --stride is given.
  bool sliding = false, reference_tail = false;
  int64_t stride = 0;
  // eval only: score-first TTT (SPEC §4) over the sliding windows when --ttt is given.
  bool ttt = false;
  TttOptions ttt_opt;
  // eval only: --device; the standard and sliding evaluations of float weights run on it.
  std::string device = "auto";
  bool on_gpu = false;
};

// Sliding windows without --batch go 32 to a forward, as the reference's; --ttt without
// --stride uses the reference's stride 64.
constexpr int64_t kSlidingBatch = 32;
constexpr int64_t kTttStride = 64;

// --ttt and its settings (SPEC §6), defaults the reference's (eval/ttt.h).
CLI::Option* add_ttt_options(CLI::App& cmd, ScoreOptions& o) {
  TttOptions& t = o.ttt_opt;
  auto* ttt = cmd.add_flag("--ttt", o.ttt,
                           "Score-first test-time training over the sliding windows (SPEC §4): "
                           "score each chunk, then train on it; never the last");
  auto opt = [&](const char* name, auto& field, const char* help) {
    cmd.add_option(name, field, help)->capture_default_str()->needs(ttt);
  };
  opt("--ttt-lr", t.lr, "TTT learning rate (cosine decay across chunks)");
  opt("--ttt-epochs", t.epochs, "TTT passes over each chunk");
  opt("--ttt-chunk-tokens", t.chunk_tokens, "TTT chunk size in tokens");
  opt("--ttt-freeze-blocks", t.freeze_blocks, "TTT: the first N virtual layers stay fixed");
  opt("--ttt-momentum", t.momentum, "TTT SGD momentum");
  opt("--ttt-batch-seqs", t.batch_seqs, "TTT sequences per optimizer step");
  opt("--ttt-micro-seqs", t.micro_seqs, "TTT sequences per forward/backward (memory)");
  opt("--ttt-grad-clip", t.grad_clip, "TTT gradient-norm clip (0 = off)");
  opt("--ttt-optimizer", t.optimizer, "TTT optimizer: sgd or adamw (#490: lr 1e-4)");
  opt("--ttt-adapt-last", t.adapt_last,
      "TTT: adapt only the last K layers plus norms/scales/gains, the head and tok_emb (#490)");
  cmd.add_flag("--ttt-untie", t.untie,
               "TTT: every virtual layer adapts its own copy of the matrices it shares "
               "(#686's TTT_UNTIE; default: shared matrices adapt once for all uses)")
      ->needs(ttt);
  return ttt;
}

CLI::Option* add_score_options(CLI::App* cmd, ScoreOptions& o) {
  auto* checkpoint =
      cmd->add_option("--checkpoint", o.checkpoint, "Model checkpoint (.safetensors)");
  auto* artifact = cmd->add_option("--artifact", o.artifact,
                                   "Artifact (pgolf pack): the decoded, quantised weights");
  checkpoint->excludes(artifact);
  auto* tokens = cmd->add_option("--tokens", o.tokens,
                                 "Token shard whose first B*T+1 tokens are scored");
  cmd->add_option("--seq-len", o.seq_len, "Sequence length T")->capture_default_str();
  cmd->add_option("--batch", o.batch, "Number of sequences B (with --data: windows per forward)")
      ->capture_default_str();
  cmd->add_flag("--json", o.json, "Print one JSON object instead of a line of text");
  cmd->add_flag("--fp64", o.fp64, "Compute in double precision (for checking)");
  cmd->add_option("--active-repeats", o.active_repeats,
                  "Run only the virtual layers of repeat index < K, as training does before a "
                  "recurrence switch or in a progressive phase (docs/recurrence.md)")
      ->check(CLI::PositiveNumber);
  return tokens;
}

// The model of --checkpoint or --artifact, and the file's name for messages.
template <typename T>
std::unique_ptr<Model<T>> load_model(const ScoreOptions& o) {
  PGOLF_CHECK(o.checkpoint.empty() != o.artifact.empty(),
              "give the model as --checkpoint FILE or --artifact FILE");
  auto model = o.artifact.empty() ? load_checkpoint<T>(o.checkpoint)
                                  : quant::load_artifact_model<T>(o.artifact);
  if (o.active_repeats > 0) model->set_active_repeats(o.active_repeats);
  return model;
}

const std::string& model_file(const ScoreOptions& o) {
  return o.artifact.empty() ? o.checkpoint : o.artifact;
}

// SPEC §4's standard or sliding evaluation of `tokens`, printed (val_bpb and bytes only
// when the byte tables come from a tokenizer).
template <typename T>
EvalResult evaluate(const ScoreOptions& o, Model<T>& model, const std::vector<int32_t>& tokens,
                    const ByteLuts& luts, bool with_bytes) {
  if constexpr (std::is_same_v<T, float>) {
    if (o.on_gpu)
      return evaluate_on_gpu(model, tokens, o.seq_len, o.sliding ? o.stride : 0, o.batch, luts,
                             o.reference_tail);
  }
  if (!o.ttt) {
    return o.sliding ? evaluate_sliding(model, tokens, o.seq_len, o.stride, o.batch, luts,
                                        o.reference_tail, o.ttt_opt.temperature)
                     : evaluate_standard(model, tokens, o.seq_len, o.batch, luts);
  }
  if constexpr (std::is_same_v<T, float>) {
    TttHooks hooks;
    // A progress line on a terminal, from rank 0 only (the hook runs on every rank).
    const bool progress = isatty(fileno(stderr)) && dist::world().root();
    hooks.on_chunk = [&](int64_t done, int64_t chunks, double bpb, double seconds) {
      if (!progress) return;
      std::fprintf(stderr, "\r\033[Kttt chunk %lld/%lld", (long long)done, (long long)chunks);
      if (with_bytes) std::fprintf(stderr, " running val_bpb %.4f", bpb);
      std::fprintf(stderr, " %.0f s%s", seconds, done == chunks ? "\r\033[K" : "");
    };
    return evaluate_ttt(model, tokens, o.seq_len, o.stride, o.batch, luts, o.ttt_opt, hooks);
  } else {
    fail("--ttt trains the model in float32; drop --fp64");
  }
}

template <typename T>
void evaluate_and_print(const ScoreOptions& o, Model<T>& model, const std::vector<int32_t>& tokens,
                        const ByteLuts& luts, bool with_bytes) {
  const EvalResult r = evaluate(o, model, tokens, luts, with_bytes);
  if (!dist::world().root()) return;  // every rank has r; one prints it
  const char* mode = o.ttt ? "ttt" : o.sliding ? "sliding" : "standard";
  if (o.json) {
    nlohmann::json j = {{"eval", mode}, {"val_loss", r.val_loss}, {"tokens", r.tokens},
                        {"seconds", r.seconds}, {"device", o.on_gpu ? "cuda" : "cpu"}};
    if (with_bytes) j.update({{"val_bpb", r.val_bpb}, {"bytes", r.bytes}});
    if (o.sliding)
      j.update({{"stride", o.stride}, {"reference_tail", o.reference_tail},
                {"temperature", o.ttt_opt.temperature}});
    if (o.ttt) j["ttt"] = to_json(o.ttt_opt);
    std::printf("%s\n", j.dump().c_str());
    return;
  }
  std::printf("val_loss %.6f", r.val_loss);
  if (with_bytes) std::printf(" val_bpb %.6f", r.val_bpb);
  std::printf(" over %lld tokens", (long long)r.tokens);
  if (with_bytes) std::printf(", %.0f bytes", r.bytes);
  if (o.sliding) std::printf(", sliding windows of %lld, stride %lld", (long long)o.seq_len,
                             (long long)o.stride);
  if (o.ttt) std::printf(", score-first TTT");
  std::printf(" (%.1f s)\n", r.seconds);
}

// The whole validation split of a data directory.
template <typename T>
void run_data_eval(const ScoreOptions& o) {
  auto model = load_model<T>(o);
  const int64_t V = model->config().vocab_size;
  const DataDir data = find_data(o.data, o.tokenizer);
  const Tokenizer tok = Tokenizer::load(data.tokenizer);
  PGOLF_CHECK(tok.vocab_size() == V, "tokenizer ", data.tokenizer, " has ", tok.vocab_size(),
              " pieces but ", model_file(o), " has a vocabulary of ", V);
  const auto tokens = load_validation_tokens(data.val_files, V, o.seq_len);
  evaluate_and_print(o, *model, tokens, build_byte_luts(tok, V), true);
}

// The whole of a --tokens shard in sliding windows.
template <typename T>
void run_sliding_shard(const ScoreOptions& o) {
  auto model = load_model<T>(o);
  const int64_t V = model->config().vocab_size;
  const std::vector<uint16_t> shard = load_checked_shard(o.tokens, V);
  PGOLF_CHECK(shard.size() >= 2, o.tokens, " holds ", shard.size(),
              " tokens, too few for one target");
  // No tokenizer comes with a shard: every token counts 0 bytes, and none are reported.
  const ByteLuts no_bytes{std::vector<int16_t>(size_t(V), 0), std::vector<uint8_t>(size_t(V), 0),
                          std::vector<uint8_t>(size_t(V), 1)};
  evaluate_and_print(o, *model, std::vector<int32_t>(shard.begin(), shard.end()), no_bytes, false);
}

template <typename T>
void run_score(const ScoreOptions& o, bool with_grad) {
  PGOLF_CHECK(o.seq_len > 0 && o.batch > 0, "--seq-len and --batch must be positive");
  auto model = load_model<T>(o);
  const int64_t n = o.batch * o.seq_len;
  std::vector<uint16_t> tokens = io::read_shard(o.tokens, n + 1);
  const int64_t V = model->config().vocab_size;
  std::vector<int32_t> x(static_cast<size_t>(n)), y(static_cast<size_t>(n));
  for (int64_t i = 0; i <= n; ++i)
    PGOLF_CHECK(tokens[size_t(i)] < V, o.tokens, ": token ", tokens[size_t(i)], " at position ", i,
                " is outside the model's vocabulary of ", V);
  for (int64_t i = 0; i < n; ++i) {
    x[size_t(i)] = tokens[size_t(i)];
    y[size_t(i)] = tokens[size_t(i + 1)];
  }

  auto start = std::chrono::steady_clock::now();
  double loss = model->forward(x.data(), y.data(), o.batch, o.seq_len);
  PGOLF_CHECK(std::isfinite(loss), "the loss of ", model_file(o), " on ", o.tokens, " is ", loss,
              " (the weights overflow in the forward pass)");
  if (with_grad) {
    model->params().zero_grads();
    model->backward();
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!dist::world().root()) return;  // every rank computed the same; one reports it
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

// --device for eval: the GPU scores float weights in standard or sliding windows, at
// temperature 1, in one process. `auto` takes it where it can and says so only on a
// terminal (stdout holds the result, stderr errors alone).
void choose_device(ScoreOptions& o, bool temperature) {
  const char* cpu_only = o.ttt                               ? "--ttt"
                         : o.fp64                            ? "--fp64"
                         : temperature                       ? "--temperature"
                         : !o.tokens.empty() && !o.sliding   ? "--tokens without --stride"
                         : dist::world().distributed()       ? "several ranks (mpirun)"
                                                             : nullptr;
  if (o.device == "cuda")
    PGOLF_CHECK(!cpu_only, "--device cuda scores standard and sliding windows in one process; ",
                cpu_only, " runs on the CPU only (--device cpu)");
  if (cpu_only && o.device == "auto") o.device = "cpu";
  const DeviceChoice choice = resolve_device(o.device);
  o.on_gpu = choice.device == Device::kCuda;
  if (!choice.notice.empty() && isatty(fileno(stderr)))
    std::fprintf(stderr, "pgolf: %s\n", choice.notice.c_str());
}

}  // namespace

void add_score_commands(CLI::App& app) {
  auto eval_opt = std::make_shared<ScoreOptions>();
  auto* eval = app.add_subcommand(
      "eval",
      "Evaluate a checkpoint or an artifact: the validation split of --data (val_bpb), or the first "
              "B*T+1 tokens of a --tokens shard; --stride N for sliding windows");
  eval->footer("Data parallel: mpirun -np N pgolf eval ... splits the windows (standard, "
               "sliding, TTT) across N ranks; rank 0 prints (docs/distributed.md).");
  auto* tokens = add_score_options(eval, *eval_opt);
  auto* data = eval->add_option("--data", eval_opt->data,
                                "Data directory whose validation split is scored");
  eval->add_option("--tokenizer", eval_opt->tokenizer,
                   "SentencePiece model (default DATA/tokenizer.model)");
  tokens->excludes(data);
  auto* stride = eval->add_option(
      "--stride", eval_opt->stride,
      "Sliding windows (SPEC §4): a window of T tokens every N; the first scores all its "
      "targets, the others their last N, every target once (N in 1..T; T = standard windows). "
      "--batch windows per forward (default 32). With --tokens: the whole shard, val_loss only");
  eval->add_flag("--reference-tail", eval_opt->reference_tail,
                 "With --stride: re-score the tail as the reference does (windows that run past "
                 "the end each score the last N targets again), for comparisons")
      ->needs(stride);
  auto* ttt = add_ttt_options(*eval, *eval_opt);
  auto* temperature = eval->add_option(
      "--temperature", eval_opt->ttt_opt.temperature,
      "Divide the capped logits by this when scoring sliding windows or TTT (#490 tried 0.98)");
  eval->add_option("--device", eval_opt->device,
                   "Where to score --data or sliding windows: auto (a CUDA GPU when this build "
                   "has CUDA and one is present), cpu, or cuda. TTT, --fp64, --temperature and "
                   "--tokens without --stride always run on the CPU")
      ->capture_default_str();
  eval->callback([eval, eval_opt, stride, ttt, temperature] {
    ScoreOptions& o = *eval_opt;
    PGOLF_CHECK(!o.data.empty() || !o.tokens.empty(), "eval needs --data DIR or --tokens SHARD");
    PGOLF_CHECK(o.seq_len > 0 && o.batch > 0, "--seq-len and --batch must be positive");
    o.ttt = ttt->count() > 0;
    PGOLF_CHECK(!o.ttt || !o.reference_tail,
                "--ttt scores each target once; drop --reference-tail");
    if (o.ttt && stride->count() == 0) o.stride = std::min(kTttStride, o.seq_len);
    o.sliding = stride->count() > 0 || o.ttt;
    PGOLF_CHECK(temperature->count() == 0 || o.sliding,
                "--temperature applies to sliding windows: give --stride N or --ttt");
    PGOLF_CHECK(o.ttt_opt.temperature > 0, "--temperature must be positive, got ",
                o.ttt_opt.temperature);
    if (o.sliding) {
      PGOLF_CHECK(o.stride >= 1 && o.stride <= o.seq_len, "--stride must lie in 1..", o.seq_len,
                  " (the window length --seq-len), not ", o.stride);
      if (eval->get_option("--batch")->count() == 0) o.batch = kSlidingBatch;
    }
    choose_device(o, temperature->count() > 0);
    if (!o.data.empty()) {
      o.fp64 ? run_data_eval<double>(o) : run_data_eval<float>(o);
    } else if (o.sliding) {
      o.fp64 ? run_sliding_shard<double>(o) : run_sliding_shard<float>(o);
    } else {
      o.fp64 ? run_score<double>(o, false) : run_score<float>(o, false);
    }
  });

  auto grad_opt = std::make_shared<ScoreOptions>();
  auto* grad = app.add_subcommand(
      "grad", "Like eval, and write d(loss)/d(param) for every parameter to --out");
  add_score_options(grad, *grad_opt)->required();
  grad->add_option("--out", grad_opt->out, "Gradients file to write (.safetensors)")->required();
  grad->callback([grad_opt] {
    grad_opt->fp64 ? run_score<double>(*grad_opt, true) : run_score<float>(*grad_opt, true);
  });
}

}  // namespace pgolf
