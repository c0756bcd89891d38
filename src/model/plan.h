// ModelPlan: the config turned into a parameter layout with SPEC §5 names and the
// per-virtual-layer wiring (schedule, U-Net skips, XSA, VE, value residual). Everything
// downstream (init, checkpoints, forward/backward, optimizers) reads this one table.
#pragma once
#include <vector>

#include "core/param_store.h"
#include "model/config.h"

namespace pgolf {

// Parameter indices into the layout; -1 where the tensor is absent.
struct BlockParams {  // a set of block matrices: a physical block's, or a repeat's own
  int c_q = -1, c_k = -1, c_v = -1, attn_proj = -1, mlp_fc = -1, mlp_proj = -1;
  std::vector<int> all() const { return {c_q, c_k, c_v, attn_proj, mlp_fc, mlp_proj}; }
};
struct LayerParams {  // per virtual layer (shared by a block's uses with block scalars)
  int attn_scale = -1, mlp_scale = -1, resid_mix = -1, q_gain = -1;
  int gate_weight = -1, gate_bias = -1, vr_lambda = -1;
  std::vector<int> all() const {
    return {attn_scale, mlp_scale, resid_mix, q_gain, gate_weight, gate_bias, vr_lambda};
  }
};

// How virtual layer v runs (docs/recurrence.md). The wiring of the layers not active in a
// depth stage has active = false and no U-Net links.
struct LayerWiring {
  bool active = true;
  int64_t physical = 0;   // sched[v]
  int64_t repeat = 0;     // rep(v): earlier uses of the same block
  int64_t input_from = -1;  // the previous active layer, whose output is v's input (-1 = x0)
  double ln_scale = 1.0;  // 1/sqrt(i+1) when ln_scale (i = v, or the block's first use)
  bool xsa = false;       // xsa_last_n under xsa_placement
  int ve_slot = -1;       // k with ve_layers[k] == v, else -1
  bool value_residual = false;  // mixes in u0 (v >= 1 with value_residual on)
  int skip_in = -1;       // decoder layer: skip index i (reads skip_weights[i]) ...
  int skip_from = -1;     // ... and the virtual layer whose output it adds
  int skip_out = -1;      // encoder layer: the skip index i that consumes its output
  int64_t cross_from = -1;  // cross_repeat: the previous use, whose output is added
  int64_t cross_row = -1;   // ... scaled by cross_repeat_scales row [physical, repeat-1]
  bool feeds_cross = false;  // a later active layer adds this layer's output (cross_repeat)
  bool pre_add = false;   // anything is added to the stream before the block
};

struct ModelPlan {
  ModelConfig cfg;
  ParamLayout layout;
  int tok_emb = -1, lm_head = -1;
  int bigram_embed = -1, bigram_proj = -1, bigram_scale = -1;
  int smear_gate = -1, skip_weights = -1;
  int ve_embed = -1, ve_proj = -1, ve_scale = -1;
  std::vector<int> ve_layer_scales;
  int loop_embed = -1, value_scales = -1, cross_repeat_scales = -1;
  std::vector<int> value_embeds;  // residual_ve_tables full-width tables
  // Every set of block matrices: the physical blocks 0..num_layers-1, then one per repeat
  // with untied matrices (only those set). Muon, QAT and quantisation walk this list.
  std::vector<BlockParams> blocks;
  std::vector<BlockParams> layer_mats;  // the matrices virtual layer v multiplies by
  std::vector<LayerParams> layers;      // per virtual layer
  std::vector<LayerWiring> wiring;      // every layer active
  // A repeat's own matrix starts as (and, at a recurrence switch with recur_init "copy",
  // is reset to) its block's tensor; likewise a repeat's per-layer scalars and its first
  // use's (scalar_sharing "layer").
  struct RepeatCopy {
    int64_t layer;  // the repeat (virtual index)
    int copy, source;
  };
  std::vector<RepeatCopy> untied_matrix_sources, repeat_scalar_sources;
};

// Validates the config and builds the plan.
ModelPlan make_plan(const ModelConfig& cfg);

// The wiring with only the layers of repeat index < active_repeats running (all when
// active_repeats >= cfg.num_repeats()): U-Net rebuilt over the active list.
std::vector<LayerWiring> make_wiring(const ModelConfig& cfg, int64_t active_repeats);

// A depth stage (docs/recurrence.md "Switching depth"): k repeats, clamped to the config's
// (k >= 1), their wiring, and the active layers in order. What the CPU and GPU models run.
struct DepthStage {
  int64_t repeats = 0;
  std::vector<LayerWiring> wiring;
  std::vector<int64_t> active;
};
DepthStage depth_stage(const ModelConfig& cfg, int64_t k);

}  // namespace pgolf
