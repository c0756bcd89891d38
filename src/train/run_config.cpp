#include "train/run_config.h"

#include "core/config_fields.h"
#include "core/error.h"
#include "train/stage_options.h"

namespace pgolf {

using nlohmann::json;

void apply_json(RunConfig& cfg, const json& j, const std::string& where) {
  PGOLF_CHECK(j.is_object(), where, ": a config must be a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it)
    PGOLF_CHECK(set_field(cfg.model, it.key(), it.value(), where) ||
                    set_field(cfg.train, it.key(), it.value(), where),
                where, ": unknown config key \"", it.key(), "\"");
}

json to_json(const RunConfig& cfg) {
  json j = json::object();
  fields_to_json(cfg.model, j);
  fields_to_json(cfg.train, j);
  return j;
}

void apply_setting(RunConfig& cfg, const std::string& key, const std::string& value,
                   const std::string& where) {
  apply_json(cfg, json{{key, parse_setting(value)}}, where);
}

void apply_env_overrides(RunConfig& cfg) {
  json j = json::object();
  env_settings(cfg.model, j);
  env_settings(cfg.train, j);
  apply_json(cfg, j, "environment");
}

int64_t grad_accum_steps(const TrainConfig& t, int64_t world_size) {
  return t.grad_accum_steps > 0 ? t.grad_accum_steps : std::max<int64_t>(1, 8 / world_size);
}

void validate(const RunConfig& cfg, int64_t world_size) {
  validate(cfg.model);
  const TrainConfig& t = cfg.train;
  auto at_least = [](auto v, auto lo, const char* key) {
    PGOLF_CHECK(v >= lo, "config: ", key, " must be at least ", lo, ", got ", v);
  };
  at_least(t.iterations, 0, "iterations");
  at_least(t.warmdown_iters, 0, "warmdown_iters");
  at_least(t.warmup_steps, 0, "warmup_steps");
  at_least(t.train_seq_len, 1, "train_seq_len");
  at_least(t.grad_accum_steps, 0, "grad_accum_steps");
  at_least(t.eval_seq_len, 0, "eval_seq_len");
  at_least(t.val_batch_size, 1, "val_batch_size");
  at_least(t.val_loss_every, 0, "val_loss_every");
  at_least(t.train_log_every, 0, "train_log_every");
  at_least(t.max_wallclock_seconds, 0.0, "max_wallclock_seconds");
  at_least(t.muon_backend_steps, 1, "muon_backend_steps");
  at_least(t.muon_momentum_warmup_steps, 0, "muon_momentum_warmup_steps");
  at_least(t.swa_every, 1, "swa_every");
  at_least(t.swa_lr_scale, 0.0, "swa_lr_scale");
  validate(depth_schedule(t), cfg.model);  // recur_start_step, progressive_* (docs/recurrence.md)
  at_least(t.checkpoint_every, 0, "checkpoint_every");
  at_least(t.grad_clip_norm, 0.0, "grad_clip_norm");
  at_least(t.late_qat_threshold, 0.0, "late_qat_threshold");
  at_least(t.quant_passthrough_max, 0, "quant_passthrough_max");
  at_least(t.gptq_calib_seqs, 1, "gptq_calib_seqs");
  at_least(t.eval_stride, 0, "eval_stride");
  PGOLF_CHECK(t.eval_stride <= t.effective_eval_seq_len(), "config: eval_stride ", t.eval_stride,
              " must not exceed the evaluation window ", t.effective_eval_seq_len());
  at_least(t.ttt_lr, 0.0, "ttt_lr");
  at_least(t.ttt_epochs, 0, "ttt_epochs");
  at_least(t.ttt_chunk_tokens, 1, "ttt_chunk_tokens");
  at_least(t.ttt_freeze_blocks, 0, "ttt_freeze_blocks");
  at_least(t.ttt_batch_seqs, 1, "ttt_batch_seqs");
  at_least(t.ttt_grad_clip, 0.0, "ttt_grad_clip");
  at_least(t.ttt_adapt_last, 0, "ttt_adapt_last");
  PGOLF_CHECK(t.ttt_optimizer == "sgd" || t.ttt_optimizer == "adamw",
              "config: ttt_optimizer must be \"sgd\" or \"adamw\", got \"", t.ttt_optimizer, "\"");
  PGOLF_CHECK(t.ttt_temperature > 0, "config: ttt_temperature must be positive, got ",
              t.ttt_temperature);
  PGOLF_CHECK(t.ttt_adapt_last == 0 || t.ttt_freeze_blocks == 0,
              "config: ttt_adapt_last (#490's adapted set) and ttt_freeze_blocks (SPEC §4's "
              "frozen layers) exclude each other; set one of them to 0");
  PGOLF_CHECK(t.quant_prune >= 0 && t.quant_prune < 1,
              "config: quant_prune is a fraction in [0, 1), got ", t.quant_prune);
  PGOLF_CHECK(t.quant_bits >= 2 && t.quant_bits <= 8, "config: quant_bits must be 2 to 8, got ",
              t.quant_bits);
  PGOLF_CHECK(t.quant_mlp_bits == 0 || (t.quant_mlp_bits >= 2 && t.quant_mlp_bits <= 8),
              "config: quant_mlp_bits must be 0 (= quant_bits) or 2 to 8, got ", t.quant_mlp_bits);
  for (auto [v, key] : {std::pair{t.matrix_lr, "matrix_lr"}, {t.scalar_lr, "scalar_lr"},
                        {t.tied_embed_lr, "tied_embed_lr"}, {t.embed_lr, "embed_lr"},
                        {t.head_lr, "head_lr"}, {t.muon_wd, "muon_wd"}, {t.adam_wd, "adam_wd"},
                        {t.adam_eps, "adam_eps"}})
    at_least(v, 0.0, key);
  for (auto [v, key] : {std::pair{t.beta1, "beta1"}, {t.beta2, "beta2"}, {t.ema_decay, "ema_decay"},
                        {t.muon_momentum, "muon_momentum"}, {t.ttt_momentum, "ttt_momentum"},
                        {t.muon_momentum_warmup_start, "muon_momentum_warmup_start"}})
    PGOLF_CHECK(v >= 0 && v < 1, "config: ", key, " must be in [0, 1), got ", v);
  // The reference's loader: each micro-step of each rank takes
  // train_batch_tokens / (world_size * grad_accum_steps) tokens as whole sequences.
  const int64_t per_micro = world_size * grad_accum_steps(t, world_size) * t.train_seq_len;
  PGOLF_CHECK(t.train_batch_tokens > 0 && t.train_batch_tokens % per_micro == 0,
              "config: train_batch_tokens ", t.train_batch_tokens,
              " must be a positive multiple of world_size * grad_accum_steps * train_seq_len = ",
              per_micro);
}

}  // namespace pgolf
