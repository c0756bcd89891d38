// TrainConfig: the training keys (SPEC §3, §6), named as the reference's hyperparameters in
// lower case, each with the reference's default (the challenge's train_gpt.py baseline)
// when absent. Like ModelConfig, one field table drives JSON, environment and --set.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace pgolf {

struct TrainConfig {
  int64_t seed = 1337;
  int64_t iterations = 20000;
  int64_t warmdown_iters = 1200;
  int64_t warmup_steps = 20;  // run, then rolled back (weights, optimizer state, data)
  int64_t train_batch_tokens = 524288;
  int64_t train_seq_len = 1024;
  int64_t grad_accum_steps = 0;  // 0 = 8 / world_size, as the reference
  int64_t eval_seq_len = 0;      // 0 = train_seq_len
  int64_t val_batch_size = 524288;
  int64_t val_loss_every = 1000;  // 0 = only at the end
  int64_t train_log_every = 200;
  double max_wallclock_seconds = 600.0;  // 0 = no cap; warmdown by iterations
  double matrix_lr = 0.04;
  double scalar_lr = 0.04;
  double tied_embed_lr = 0.05;
  double embed_lr = 0.6;
  double head_lr = 0.008;
  double muon_momentum = 0.95;
  double muon_momentum_warmup_start = 0.85;
  int64_t muon_momentum_warmup_steps = 500;
  int64_t muon_backend_steps = 5;
  double muon_wd = 0.0;
  double adam_wd = 0.0;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double adam_eps = 1e-8;
  double grad_clip_norm = 0.0;  // 0 = off
  bool ema_enabled = false;
  double ema_decay = 0.997;
  bool swa_enabled = false;
  int64_t swa_every = 50;
  double swa_lr_scale = 0.2;  // snapshots once the LR multiplier is below this (#784: 0.4)
  double late_qat_threshold = 0.0;  // 0 = off
  // Depth stages (docs/recurrence.md "Switching depth"; model/recurrence.h DepthSchedule).
  int64_t recur_start_step = 0;              // #1204: the plain stack before this step
  std::string recur_init = "copy";           // how switched-on repeats start: copy / identity
  std::vector<int64_t> progressive_repeats;  // #1384: active repeats per phase
  std::vector<double> progressive_fractions;  // where phases 2.. start (fraction of training)
  bool attn_gate_muon = false;  // #490: the attention gates' weights in Muon, not scalar AdamW
  int64_t checkpoint_every = 0;     // steps between resumable checkpoints; 0 = at the end only
  // The artifact written at the end (quant/quantize.h; SEEDS.md §1 "Quantisation and export").
  int64_t quant_bits = 6;             // block matrices, int-N per row
  int64_t quant_mlp_bits = 0;         // mlp.fc / mlp.proj; 0 = quant_bits
  bool quant_clip_per_row = false;    // GPTQ-lite's clip chosen per row, not per matrix
  int64_t quant_passthrough_max = 65536;  // tensors this small stay fp16
  bool gptq = false;                  // full GPTQ, calibrated on the training split's start
  int64_t gptq_calib_seqs = 32;       // calibration sequences of train_seq_len tokens
  double quant_prune = 0.0;           // #490's magnitude pruning fraction (quant/prune.h); 0 = off
  // Evaluations of the decoded artifact at the end (SPEC §4; eval/sliding.h, eval/ttt.h).
  int64_t eval_stride = 0;            // > 0: sliding windows with this stride
  bool ttt_enabled = false;           // score-first TTT (stride eval_stride, or 64)
  double ttt_lr = 0.002;
  int64_t ttt_epochs = 3;
  int64_t ttt_chunk_tokens = 32768;
  int64_t ttt_freeze_blocks = 0;
  double ttt_momentum = 0.9;
  int64_t ttt_batch_seqs = 32;
  double ttt_grad_clip = 1.0;
  std::string ttt_optimizer = "sgd";  // "sgd" (momentum) or "adamw" (#490)
  int64_t ttt_adapt_last = 0;         // > 0: #490's adapted set (eval/ttt.h ttt_adapted)
  double ttt_temperature = 1.0;       // divides the capped logits when TTT scores
  bool ttt_untie = false;             // each virtual layer adapts its own matrices (#686)

  int64_t effective_eval_seq_len() const { return eval_seq_len > 0 ? eval_seq_len : train_seq_len; }

  template <typename F>
  void for_each_field(F&& f) {
    f("seed", seed); f("iterations", iterations); f("warmdown_iters", warmdown_iters);
    f("warmup_steps", warmup_steps); f("train_batch_tokens", train_batch_tokens);
    f("train_seq_len", train_seq_len); f("grad_accum_steps", grad_accum_steps);
    f("eval_seq_len", eval_seq_len); f("val_batch_size", val_batch_size);
    f("val_loss_every", val_loss_every); f("train_log_every", train_log_every);
    f("max_wallclock_seconds", max_wallclock_seconds); f("matrix_lr", matrix_lr);
    f("scalar_lr", scalar_lr); f("tied_embed_lr", tied_embed_lr); f("embed_lr", embed_lr);
    f("head_lr", head_lr); f("muon_momentum", muon_momentum);
    f("muon_momentum_warmup_start", muon_momentum_warmup_start);
    f("muon_momentum_warmup_steps", muon_momentum_warmup_steps);
    f("muon_backend_steps", muon_backend_steps); f("muon_wd", muon_wd); f("adam_wd", adam_wd);
    f("beta1", beta1); f("beta2", beta2); f("adam_eps", adam_eps);
    f("grad_clip_norm", grad_clip_norm); f("ema_enabled", ema_enabled); f("ema_decay", ema_decay);
    f("swa_enabled", swa_enabled); f("swa_every", swa_every);
    f("swa_lr_scale", swa_lr_scale);
    f("late_qat_threshold", late_qat_threshold); f("attn_gate_muon", attn_gate_muon); f("checkpoint_every", checkpoint_every);
    f("quant_bits", quant_bits); f("quant_mlp_bits", quant_mlp_bits);
    f("quant_clip_per_row", quant_clip_per_row); f("quant_passthrough_max", quant_passthrough_max);
    f("gptq", gptq); f("gptq_calib_seqs", gptq_calib_seqs); f("quant_prune", quant_prune);
    f("eval_stride", eval_stride); f("ttt_enabled", ttt_enabled); f("ttt_lr", ttt_lr);
    f("ttt_epochs", ttt_epochs); f("ttt_chunk_tokens", ttt_chunk_tokens);
    f("ttt_freeze_blocks", ttt_freeze_blocks); f("ttt_momentum", ttt_momentum);
    f("ttt_batch_seqs", ttt_batch_seqs); f("ttt_grad_clip", ttt_grad_clip);
    f("ttt_optimizer", ttt_optimizer); f("ttt_adapt_last", ttt_adapt_last);
    f("ttt_temperature", ttt_temperature); f("ttt_untie", ttt_untie);
    f("recur_start_step", recur_start_step); f("recur_init", recur_init);
    f("progressive_repeats", progressive_repeats);
    f("progressive_fractions", progressive_fractions);
  }
  template <typename F>
  void for_each_field(F&& f) const { const_cast<TrainConfig*>(this)->for_each_field(f); }
};

}  // namespace pgolf
