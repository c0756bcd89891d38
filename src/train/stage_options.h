// The options of the stages after training, from the train keys: the quantiser that writes
// the artifact (quant_*, gptq) and score-first TTT on the decoded weights (ttt_*). One
// mapping each, so a new key is wired in one place.
#pragma once
#include "eval/ttt.h"
#include "model/recurrence.h"
#include "quant/quantize.h"
#include "train/train_config.h"

namespace pgolf {

// quant_bits, quant_mlp_bits, quant_clip_per_row, quant_passthrough_max, gptq, quant_prune
// (gptq_calib_seqs is the trainer's: how many sequences calibrate).
quant::QuantOptions quant_options(const TrainConfig& t);

// ttt_lr, ttt_epochs, ttt_chunk_tokens, ttt_freeze_blocks, ttt_momentum, ttt_batch_seqs,
// ttt_grad_clip, ttt_optimizer, ttt_adapt_last, ttt_temperature, ttt_untie; the rest
// TttOptions' defaults.
TttOptions ttt_options(const TrainConfig& t);

// recur_start_step, recur_init, progressive_repeats, progressive_fractions.
DepthSchedule depth_schedule(const TrainConfig& t);

}  // namespace pgolf
