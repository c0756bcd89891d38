#include "model/plan.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.h"

namespace pgolf {
namespace {

// The six block matrices with their SPEC §5 suffixes and shapes.
struct MatrixRole {
  int BlockParams::*field;
  const char* suffix;
  bool attn;
};
constexpr MatrixRole kRoles[] = {
    {&BlockParams::c_q, "attn.c_q.weight", true},   {&BlockParams::c_k, "attn.c_k.weight", true},
    {&BlockParams::c_v, "attn.c_v.weight", true},   {&BlockParams::attn_proj, "attn.proj.weight", true},
    {&BlockParams::mlp_fc, "mlp.fc.weight", false}, {&BlockParams::mlp_proj, "mlp.proj.weight", false},
};

std::vector<int64_t> matrix_shape(const ModelConfig& c, int BlockParams::*f) {
  const int64_t d = c.model_dim, kv = c.kv_dim(), m = c.mlp_hidden();
  if (f == &BlockParams::c_k || f == &BlockParams::c_v) return {kv, d};
  if (f == &BlockParams::mlp_fc) return {m, d};
  if (f == &BlockParams::mlp_proj) return {d, m};
  return {d, d};
}

// Whether a repeat owns its copy of this matrix (repeat_untie_mlp / repeat_untie_attn).
bool untied(const ModelConfig& c, const MatrixRole& role) {
  if (role.attn) return c.repeat_untie_attn;
  if (role.field == &BlockParams::mlp_proj) return c.repeat_untie_mlp != "none";
  return c.repeat_untie_mlp == "full";
}

LayerParams add_scalars(ParamLayout& L, const ModelConfig& cfg, int64_t index) {
  const int64_t d = cfg.model_dim, H = cfg.num_heads;
  const std::string pre = "blocks." + std::to_string(index) + ".";
  LayerParams lp;
  lp.attn_scale = L.add(pre + "attn_scale", {d});
  lp.mlp_scale = L.add(pre + "mlp_scale", {d});
  lp.resid_mix = L.add(pre + "resid_mix", {2, d});
  lp.q_gain = L.add(pre + "attn.q_gain", {H});
  if (cfg.gated_attention) {
    lp.gate_weight = L.add(pre + "attn.attn_gate.weight", {H, d});
    lp.gate_bias = L.add(pre + "attn.attn_gate.bias", {H});
  }
  if (cfg.value_residual) lp.vr_lambda = L.add(pre + "attn.vr_lambda", {2});
  return lp;
}

}  // namespace

ModelPlan make_plan(const ModelConfig& cfg) {
  validate(cfg);
  ModelPlan p;
  p.cfg = cfg;
  auto& L = p.layout;
  const int64_t V = cfg.vocab_size, d = cfg.model_dim, kv = cfg.kv_dim();
  const int64_t nv = cfg.num_virtual(), K = cfg.num_repeats();

  // Names and shapes: SPEC §5 table, then docs/recurrence.md's.
  p.tok_emb = L.add("tok_emb.weight", {V, d});
  if (!cfg.tie_embeddings) p.lm_head = L.add("lm_head.weight", {V, d});
  if (cfg.bigram_vocab_size > 0) {
    p.bigram_embed = L.add("bigram.embed.weight", {cfg.bigram_vocab_size, cfg.bigram_dim});
    if (cfg.bigram_dim != d) p.bigram_proj = L.add("bigram.proj.weight", {d, cfg.bigram_dim});
    p.bigram_scale = L.add("bigram.scale", {});
  }
  if (cfg.smear_gate) p.smear_gate = L.add("smear.gate", {d});
  if (cfg.num_skips() > 0) p.skip_weights = L.add("skip_weights", {cfg.num_skips(), d});
  if (cfg.ve_enabled) {
    p.ve_embed = L.add("ve_shared.embed.weight", {V, cfg.ve_dim});
    if (cfg.ve_dim != kv) p.ve_proj = L.add("ve_shared.proj.weight", {kv, cfg.ve_dim});
    p.ve_scale = L.add("ve_shared.scale", {});
    for (size_t k = 0; k < cfg.ve_layers.size(); ++k)
      p.ve_layer_scales.push_back(L.add("ve_layer_scales." + std::to_string(k), {1}));
  }
  if (cfg.loop_embed) p.loop_embed = L.add("loop_embed", {nv, d});
  for (int64_t j = 0; j < cfg.residual_ve_tables; ++j)
    p.value_embeds.push_back(L.add("value_embeds." + std::to_string(j) + ".weight", {V, d}));
  if (cfg.residual_ve_tables > 0)
    p.value_scales = L.add("value_scales", {nv, cfg.residual_ve_tables, d});
  if (cfg.cross_repeat)
    p.cross_repeat_scales = L.add("cross_repeat_scales", {cfg.num_layers, K - 1, d});

  for (int64_t b = 0; b < cfg.num_layers; ++b) {
    BlockParams bp;
    for (const auto& role : kRoles)
      bp.*role.field = L.add("blocks." + std::to_string(b) + "." + role.suffix,
                             matrix_shape(cfg, role.field));
    p.blocks.push_back(bp);
  }
  // A repeat's own matrices (repeat_untie_*), named by its virtual index.
  for (int64_t v = 0; v < nv; ++v) {
    const BlockParams& shared = p.blocks[size_t(cfg.physical(v))];
    BlockParams mats = shared, own;
    bool any = false;
    for (const auto& role : kRoles) {
      if (cfg.repeat_index(v) == 0 || !untied(cfg, role)) continue;
      own.*role.field = mats.*role.field = L.add(
          "repeats." + std::to_string(v) + "." + role.suffix, matrix_shape(cfg, role.field));
      p.untied_matrix_sources.push_back({v, own.*role.field, shared.*role.field});
      any = true;
    }
    if (any) p.blocks.push_back(own);
    p.layer_mats.push_back(mats);
  }
  // Per-layer scalars: one set per virtual layer, or one per block shared by its uses.
  if (cfg.block_scalars()) {
    std::vector<LayerParams> per_block;
    for (int64_t b = 0; b < cfg.num_layers; ++b) per_block.push_back(add_scalars(L, cfg, b));
    for (int64_t v = 0; v < nv; ++v) p.layers.push_back(per_block[size_t(cfg.physical(v))]);
  } else {
    for (int64_t v = 0; v < nv; ++v) {
      p.layers.push_back(add_scalars(L, cfg, v));
      const int64_t first = cfg.first_use(cfg.physical(v));
      if (first == v) continue;
      const std::vector<int> copies = p.layers.back().all();
      const std::vector<int> sources = p.layers[size_t(first)].all();
      for (size_t i = 0; i < copies.size(); ++i)
        if (copies[i] >= 0) p.repeat_scalar_sources.push_back({v, copies[i], sources[i]});
    }
  }
  p.wiring = make_wiring(cfg, K);
  return p;
}

std::vector<LayerWiring> make_wiring(const ModelConfig& cfg, int64_t active_repeats) {
  const int64_t nv = cfg.num_virtual();
  std::vector<LayerWiring> wiring(static_cast<size_t>(nv));
  std::vector<int64_t> active;
  for (int64_t v = 0; v < nv; ++v) {
    LayerWiring& w = wiring[size_t(v)];
    w.physical = cfg.physical(v);
    w.repeat = cfg.repeat_index(v);
    w.active = w.repeat < active_repeats;
    const int64_t ln_index = cfg.block_scalars() ? cfg.first_use(w.physical) : v;
    w.ln_scale = cfg.ln_scale ? 1.0 / std::sqrt(double(ln_index + 1)) : 1.0;
    for (int64_t u = std::max<int64_t>(0, nv - cfg.xsa_last_n); u < nv; ++u)
      w.xsa = w.xsa || (cfg.xsa_placement == "block" ? cfg.physical(u) == w.physical : u == v);
    for (size_t k = 0; k < cfg.ve_layers.size() && cfg.ve_enabled; ++k)  // ve_layers
      if (cfg.ve_layers[k] == v) w.ve_slot = int(k);                    // alone: no VE
    w.value_residual = cfg.value_residual && v >= 1;
    if (!w.active) continue;
    w.input_from = active.empty() ? -1 : active.back();
    if (cfg.cross_repeat && w.repeat > 0) {
      w.cross_from = cfg.previous_use(v);
      w.cross_row = w.physical * (cfg.num_repeats() - 1) + w.repeat - 1;
      wiring[size_t(w.cross_from)].feeds_cross = true;
    }
    active.push_back(v);
  }
  // U-Net over the active list (SPEC §2 Layers): decoder i pops encoder enc-1-i.
  const int64_t n = int64_t(active.size()), enc = n / 2;
  const int64_t skips = cfg.unet_skips ? std::min(enc, n - enc) : 0;
  for (int64_t i = 0; i < skips; ++i) {
    LayerWiring& dec = wiring[size_t(active[size_t(enc + i)])];
    dec.skip_in = int(i);
    dec.skip_from = int(active[size_t(enc - 1 - i)]);
    wiring[size_t(dec.skip_from)].skip_out = int(i);
  }
  for (auto& w : wiring)
    w.pre_add = w.active && (w.skip_in >= 0 || cfg.loop_embed || cfg.residual_ve_tables > 0 ||
                             w.cross_from >= 0);
  return wiring;
}

DepthStage depth_stage(const ModelConfig& cfg, int64_t k) {
  PGOLF_CHECK(k >= 1, "internal: a depth stage needs at least one repeat, got ", k);
  DepthStage s;
  s.repeats = std::min(k, cfg.num_repeats());
  s.wiring = make_wiring(cfg, s.repeats);
  for (int64_t v = 0; v < int64_t(s.wiring.size()); ++v)
    if (s.wiring[size_t(v)].active) s.active.push_back(v);
  return s;
}

}  // namespace pgolf
