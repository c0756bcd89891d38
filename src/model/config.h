// ModelConfig: the model keys of SPEC §5, named as the reference's hyperparameters in
// lower case, each with the reference's default when absent. One field table
// (for_each_field) drives JSON reading, JSON writing and environment overrides, so a key
// cannot be added to one and forgotten in another.
#pragma once
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace pgolf {

struct ModelConfig {
  int64_t vocab_size = 1024;
  int64_t num_layers = 9;  // physical blocks
  int64_t model_dim = 512;
  int64_t num_heads = 8;
  int64_t num_kv_heads = 4;
  double mlp_mult = 2.0;
  bool tie_embeddings = true;
  double rope_base = 10000.0;
  int64_t rope_dims = 0;  // 0 = the whole head
  double logit_softcap = 30.0;
  double qk_gain_init = 1.5;
  int64_t bigram_vocab_size = 0;  // 0 = no BigramHash
  int64_t bigram_dim = 128;
  int64_t xsa_last_n = 0;
  bool ln_scale = false;
  bool ve_enabled = false;
  int64_t ve_dim = 128;
  std::vector<int64_t> ve_layers;  // virtual layer indices
  bool gated_attention = false;
  bool value_residual = false;
  double negative_slope = 0.5;  // 0 = relu² (the naive baseline)
  double tied_embed_init_std = 0.005;
  int64_t rope_train_seq_len = 1024;
  bool unet_skips = true;
  bool smear_gate = true;  // SmearGate after the embedding norm (off in the naive baseline)
  std::vector<int64_t> layer_schedule;  // physical block per virtual layer; empty = identity
  // #686's form of a schedule (SEEDS.md §2): with m = max(recur_layers) + 1, the virtual
  // layers are blocks 0..m-1, then recur_layers again, then blocks m..num_layers-1
  // (list(range(m)) + recur_layers + list(range(m, n))). Only when layer_schedule is empty.
  std::vector<int64_t> recur_layers;
  // What else repeats share (docs/recurrence.md): per-layer scalars per virtual layer
  // ("layer", #686) or per physical block ("block", #857/#784); repeats' own MLP matrices
  // ("none", "down", "full": #1204's REPEAT_UNTIE_MLP) and attention matrices; XSA on the
  // last virtual layers ("virtual") or on every use of their blocks ("block", #857).
  std::string scalar_sharing = "layer";
  std::string repeat_untie_mlp = "none";
  bool repeat_untie_attn = false;
  std::string xsa_placement = "virtual";
  // #784's recurrent form: a learned vector per virtual layer, full-width value-embedding
  // tables mixed into the residual stream, and the cross-repeat skip.
  bool loop_embed = false;
  int64_t residual_ve_tables = 0;
  bool cross_repeat = false;
  // Init: "orthogonal" (the reference's rule) or "kaiming_uniform" (#784: PyTorch's
  // default for every non-zero-init linear); scale_proj_init multiplies bigram.proj and
  // ve_shared.proj by 1/sqrt(2·num_virtual) (#857, #490).
  std::string init_scheme = "orthogonal";
  bool scale_proj_init = false;

  int64_t head_dim() const { return model_dim / num_heads; }
  int64_t kv_dim() const { return num_kv_heads * head_dim(); }
  int64_t mlp_hidden() const { return int64_t(mlp_mult * double(model_dim)); }
  int64_t rope_width() const { return rope_dims == 0 ? head_dim() : rope_dims; }
  int64_t num_virtual() const {
    if (!layer_schedule.empty()) return int64_t(layer_schedule.size());
    return num_layers + int64_t(recur_layers.size());
  }
  int64_t physical(int64_t v) const {
    if (!layer_schedule.empty()) return layer_schedule[size_t(v)];
    if (recur_layers.empty()) return v;
    const int64_t m = *std::max_element(recur_layers.begin(), recur_layers.end()) + 1;
    const int64_t r = int64_t(recur_layers.size());
    return v < m ? v : v < m + r ? recur_layers[size_t(v - m)] : v - r;
  }
  // Repeats (docs/recurrence.md "Words"): rep(v) = earlier uses of v's block; K = 1 + max.
  int64_t repeat_index(int64_t v) const {
    int64_t r = 0;
    for (int64_t u = 0; u < v; ++u) r += physical(u) == physical(v);
    return r;
  }
  int64_t num_repeats() const {
    int64_t k = 1;
    for (int64_t v = 0; v < num_virtual(); ++v) k = std::max(k, repeat_index(v) + 1);
    return k;
  }
  // The latest earlier use of v's block (-1 for a first use) and a block's first use.
  int64_t previous_use(int64_t v) const {
    for (int64_t u = v - 1; u >= 0; --u)
      if (physical(u) == physical(v)) return u;
    return -1;
  }
  int64_t first_use(int64_t p) const {
    for (int64_t v = 0; v < num_virtual(); ++v)
      if (physical(v) == p) return v;
    return -1;
  }
  bool block_scalars() const { return scalar_sharing == "block"; }

  // U-Net (SPEC §2 Layers): encoder layers, decoder layers and skip connections.
  int64_t encoder_layers() const { return num_virtual() / 2; }
  int64_t num_skips() const {
    return unet_skips ? std::min(encoder_layers(), num_virtual() - encoder_layers()) : 0;
  }

  // Calls f(name, field) for every key in SPEC §5 order.
  template <typename F>
  void for_each_field(F&& f) {
    f("vocab_size", vocab_size); f("num_layers", num_layers); f("model_dim", model_dim);
    f("num_heads", num_heads); f("num_kv_heads", num_kv_heads); f("mlp_mult", mlp_mult);
    f("tie_embeddings", tie_embeddings); f("rope_base", rope_base); f("rope_dims", rope_dims);
    f("logit_softcap", logit_softcap); f("qk_gain_init", qk_gain_init);
    f("bigram_vocab_size", bigram_vocab_size); f("bigram_dim", bigram_dim);
    f("xsa_last_n", xsa_last_n); f("ln_scale", ln_scale); f("ve_enabled", ve_enabled);
    f("ve_dim", ve_dim); f("ve_layers", ve_layers); f("gated_attention", gated_attention);
    f("value_residual", value_residual); f("negative_slope", negative_slope);
    f("tied_embed_init_std", tied_embed_init_std); f("rope_train_seq_len", rope_train_seq_len);
    f("unet_skips", unet_skips); f("layer_schedule", layer_schedule);
    f("smear_gate", smear_gate); f("recur_layers", recur_layers);
    f("scalar_sharing", scalar_sharing); f("repeat_untie_mlp", repeat_untie_mlp);
    f("repeat_untie_attn", repeat_untie_attn); f("xsa_placement", xsa_placement);
    f("loop_embed", loop_embed); f("residual_ve_tables", residual_ve_tables);
    f("cross_repeat", cross_repeat); f("init_scheme", init_scheme);
    f("scale_proj_init", scale_proj_init);
  }
  template <typename F>
  void for_each_field(F&& f) const { const_cast<ModelConfig*>(this)->for_each_field(f); }
};

// Reads a config object; absent keys keep their defaults, an unknown key or a value of the
// wrong type is an error naming the key. `where` names the source in messages.
ModelConfig config_from_json(const nlohmann::json& j, const std::string& where);
// Applies the keys present in `j` on top of `cfg`.
void apply_json(ModelConfig& cfg, const nlohmann::json& j, const std::string& where);
// Every key, so a checkpoint alone rebuilds the model (SPEC §5 __metadata__.pgolf_config).
nlohmann::json to_json(const ModelConfig& cfg);
// Checks shapes and ranges; throws pgolf::Error with the first problem.
void validate(const ModelConfig& cfg);

}  // namespace pgolf
