#include "train/stage_options.h"

namespace pgolf {

quant::QuantOptions quant_options(const TrainConfig& t) {
  quant::QuantOptions q;
  q.matrix_bits = int(t.quant_bits);
  q.mlp_bits = int(t.quant_mlp_bits);
  q.per_row_clip = t.quant_clip_per_row;
  q.passthrough_max_elements = t.quant_passthrough_max;
  q.gptq = t.gptq;
  q.prune_fraction = t.quant_prune;
  return q;
}

TttOptions ttt_options(const TrainConfig& t) {
  TttOptions o;
  o.lr = t.ttt_lr;
  o.epochs = t.ttt_epochs;
  o.chunk_tokens = t.ttt_chunk_tokens;
  o.freeze_blocks = t.ttt_freeze_blocks;
  o.momentum = t.ttt_momentum;
  o.batch_seqs = t.ttt_batch_seqs;
  o.grad_clip = t.ttt_grad_clip;
  o.optimizer = t.ttt_optimizer;
  o.adapt_last = t.ttt_adapt_last;
  o.temperature = t.ttt_temperature;
  o.untie = t.ttt_untie;
  return o;
}

DepthSchedule depth_schedule(const TrainConfig& t) {
  DepthSchedule d;
  d.recur_start_step = t.recur_start_step;
  d.recur_init = t.recur_init;
  d.progressive_repeats = t.progressive_repeats;
  d.progressive_fractions = t.progressive_fractions;
  return d;
}

}  // namespace pgolf
