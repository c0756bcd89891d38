#include "model/plan.h"

#include <cmath>
#include <string>

namespace pgolf {

ModelPlan make_plan(const ModelConfig& cfg) {
  validate(cfg);
  ModelPlan p;
  p.cfg = cfg;
  auto& L = p.layout;
  const int64_t V = cfg.vocab_size, d = cfg.model_dim, kv = cfg.kv_dim(), H = cfg.num_heads;
  const int64_t m = cfg.mlp_hidden(), nv = cfg.num_virtual();

  // Names and shapes: SPEC §5 table.
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
  for (int64_t b = 0; b < cfg.num_layers; ++b) {
    std::string pre = "blocks." + std::to_string(b) + ".";
    BlockParams bp;
    bp.c_q = L.add(pre + "attn.c_q.weight", {d, d});
    bp.c_k = L.add(pre + "attn.c_k.weight", {kv, d});
    bp.c_v = L.add(pre + "attn.c_v.weight", {kv, d});
    bp.attn_proj = L.add(pre + "attn.proj.weight", {d, d});
    bp.mlp_fc = L.add(pre + "mlp.fc.weight", {m, d});
    bp.mlp_proj = L.add(pre + "mlp.proj.weight", {d, m});
    p.blocks.push_back(bp);
  }
  for (int64_t v = 0; v < nv; ++v) {
    std::string pre = "blocks." + std::to_string(v) + ".";
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
    p.layers.push_back(lp);
  }

  // Wiring: SPEC §2 Layers and Block.
  const int64_t enc = cfg.encoder_layers();
  for (int64_t v = 0; v < nv; ++v) {
    LayerWiring w;
    w.physical = cfg.physical(v);
    w.ln_scale = cfg.ln_scale ? 1.0 / std::sqrt(double(v + 1)) : 1.0;
    w.xsa = v >= nv - cfg.xsa_last_n;
    for (size_t k = 0; k < cfg.ve_layers.size(); ++k)
      if (cfg.ve_layers[k] == v) w.ve_slot = int(k);
    w.value_residual = cfg.value_residual && v >= 1;
    // Decoder layer i = v - enc pops the encoder stack: it receives encoder layer enc-1-i.
    if (v >= enc && v - enc < cfg.num_skips()) {
      w.skip_in = int(v - enc);
      w.skip_from = int(enc - 1 - (v - enc));
    }
    if (v < enc && enc - 1 - v < cfg.num_skips()) w.skip_out = int(enc - 1 - v);
    p.wiring.push_back(w);
  }
  return p;
}

}  // namespace pgolf
