// ModelPlan: the config turned into a parameter layout with SPEC §5 names and the
// per-virtual-layer wiring (schedule, U-Net skips, XSA, VE, value residual). Everything
// downstream (init, checkpoints, forward/backward, optimizers) reads this one table.
#pragma once
#include <vector>

#include "core/param_store.h"
#include "model/config.h"

namespace pgolf {

// Parameter indices into the layout; -1 where the tensor is absent.
struct BlockParams {  // per physical block
  int c_q = -1, c_k = -1, c_v = -1, attn_proj = -1, mlp_fc = -1, mlp_proj = -1;
};
struct LayerParams {  // per virtual layer
  int attn_scale = -1, mlp_scale = -1, resid_mix = -1, q_gain = -1;
  int gate_weight = -1, gate_bias = -1, vr_lambda = -1;
};

struct LayerWiring {
  int64_t physical = 0;   // sched[v]
  double ln_scale = 1.0;  // 1/sqrt(v+1) when ln_scale
  bool xsa = false;       // among the last xsa_last_n virtual layers
  int ve_slot = -1;       // k with ve_layers[k] == v, else -1
  bool value_residual = false;  // mixes in u0 (v >= 1 with value_residual on)
  int skip_in = -1;       // decoder layer: skip index i (reads skip_weights[i]) ...
  int skip_from = -1;     // ... and the encoder layer whose output it adds
  int skip_out = -1;      // encoder layer: the skip index i that consumes its output
};

struct ModelPlan {
  ModelConfig cfg;
  ParamLayout layout;
  int tok_emb = -1, lm_head = -1;
  int bigram_embed = -1, bigram_proj = -1, bigram_scale = -1;
  int smear_gate = -1, skip_weights = -1;
  int ve_embed = -1, ve_proj = -1, ve_scale = -1;
  std::vector<int> ve_layer_scales;
  std::vector<BlockParams> blocks;
  std::vector<LayerParams> layers;
  std::vector<LayerWiring> wiring;
};

// Validates the config and builds the plan.
ModelPlan make_plan(const ModelConfig& cfg);

}  // namespace pgolf
