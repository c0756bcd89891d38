// Score-first test-time training (SPEC §4, SEEDS.md §2 "Eval and TTT", PR #461's recipe):
// the validation targets are cut into chunks of chunk_tokens; each sliding window
// (eval/sliding.h) belongs to the chunk of its first scored target. For chunk c = 0..C-1:
//   1. score: every window of chunk c is scored with the current weights (no update);
//   2. train (c < C-1 only): `epochs` passes over the chunk's whole seq_len sequences
//      (targets [c·chunk, c·chunk + k·seq_len) for the k sequences that fit), batch_seqs
//      sequences per step, mean cross-entropy, gradient clipping, then SGD with momentum
//      (or AdamW) at lr_c = lr · ½(1 + cos(π c / max(C-1, 1))).
// Legality by construction: a target of chunk c is scored by a window whose first scored
// target is ≤ it, so that window's chunk is ≤ c and was scored before chunk c trains; the
// last chunk is never trained on; scoring never changes weights.
// Data parallel (issue 8): every rank holds the same weights. A chunk's windows are split
// into contiguous rank shares (rank_share) and its scores all-reduced; each optimizer step's
// batch of sequences is split the same way, each rank's backward gives its share of the
// batch-mean gradient (its sequences' losses over the whole batch's count), the adapted
// gradients are summed over the ranks, and every rank takes the same step (clipped on the
// sum): the single-process run up to float summation order.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dist/comm.h"
#include "eval/byte_luts.h"
#include "eval/evaluate.h"
#include "model/model.h"

namespace pgolf {

struct TttOptions {
  int64_t chunk_tokens = 32768;
  int64_t epochs = 3;
  double lr = 0.002;
  double momentum = 0.9;         // SGD
  double grad_clip = 1.0;        // max global norm of the adapted gradients; 0 = off
  int64_t batch_seqs = 32;       // sequences per optimizer step
  int64_t micro_seqs = 8;        // sequences per forward/backward (memory), averaged exactly
  int64_t freeze_blocks = 0;     // the first N virtual layers stay fixed (SPEC §4 rule)
  int64_t adapt_last = 0;        // > 0: #490's rule instead (see ttt_adapted)
  std::string optimizer = "sgd";  // "sgd" (momentum, no dampening) or "adamw" (#490)
  double adam_beta1 = 0.9, adam_beta2 = 0.999, adam_eps = 1e-8;  // no weight decay
  double temperature = 1.0;      // divides the capped logits when scoring (#490 tried 0.98)
  // Untied TTT (#686's TTT_UNTIE): adapt the model's untied twin (model/untie.h), each
  // virtual layer its own matrices, leaving `model` as it was; tied (default): shared
  // matrices adapt once for all their uses, in place.
  bool untie = false;
};

// The options as JSON (summary.json, eval --json).
nlohmann::json to_json(const TttOptions& opt);

// Which parameters adapt, per layout index.
//   default (adapt_last == 0): all but the first freeze_blocks virtual layers: their
//     per-layer tensors, and every physical block matrix all of whose uses are among them;
//   #490 (adapt_last = k > 0): the tensors of the last k virtual layers (per-layer tensors,
//     and block matrices with a use among them), every tensor whose name contains "norm",
//     "scale" or "lm_head", and tok_emb.
std::vector<bool> ttt_adapted(const ModelPlan& plan, const TttOptions& opt);

// One step of the procedure, for instrumentation: targets [begin, end) scored or trained on.
struct TttEvent {
  bool train = false;
  int64_t chunk = 0, begin = 0, end = 0;
};

struct TttHooks {
  std::function<void(const TttEvent&)> on_event;  // every score batch and train step
  // After each chunk: chunks done, total, running val_bpb, seconds so far.
  std::function<void(int64_t, int64_t, double, double)> on_chunk;
};

// Score-first TTT over `tokens` (n + 1 tokens) with sliding windows of seq_len / stride,
// score_batch windows per forward. Adapts `model` in place (fp32; an artifact's decoded
// weights work the same way). Returns the score of every target, each scored once, the same
// on every rank of `comm` (all call it alike). The hooks run on every rank: on_event for
// this rank's score batches and for every train step (the whole batch, which every rank's
// weights have learnt from); on_chunk with the running val_bpb summed over the ranks.
EvalResult evaluate_ttt(Model<float>& model, const std::vector<int32_t>& tokens,
                        int64_t seq_len, int64_t stride, int64_t score_batch,
                        const ByteLuts& luts, const TttOptions& opt, const TttHooks& hooks = {},
                        const dist::Comm& comm = dist::world());

}  // namespace pgolf
