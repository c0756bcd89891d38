#include "model/config.h"

#include "core/config_fields.h"
#include "core/error.h"

namespace pgolf {
using nlohmann::json;

void apply_json(ModelConfig& cfg, const json& j, const std::string& where) {
  PGOLF_CHECK(j.is_object(), where, ": a config must be a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it)
    PGOLF_CHECK(set_field(cfg, it.key(), it.value(), where), where, ": unknown config key \"",
                it.key(), "\"");
}

ModelConfig config_from_json(const json& j, const std::string& where) {
  ModelConfig cfg;
  apply_json(cfg, j, where);
  return cfg;
}

json to_json(const ModelConfig& cfg) {
  json j = json::object();
  fields_to_json(cfg, j);
  return j;
}

void validate(const ModelConfig& c) {
  auto positive = [](int64_t v, const char* key) {
    PGOLF_CHECK(v > 0, "config: ", key, " must be positive, got ", v);
  };
  positive(c.vocab_size, "vocab_size");
  positive(c.num_layers, "num_layers");
  positive(c.model_dim, "model_dim");
  positive(c.num_heads, "num_heads");
  positive(c.num_kv_heads, "num_kv_heads");
  PGOLF_CHECK(c.vocab_size <= 65536, "config: vocab_size ", c.vocab_size,
              " does not fit the uint16 token shards (at most 65536)");
  PGOLF_CHECK(c.model_dim % c.num_heads == 0, "config: model_dim ", c.model_dim,
              " is not divisible by num_heads ", c.num_heads);
  PGOLF_CHECK(c.num_heads % c.num_kv_heads == 0, "config: num_heads ", c.num_heads,
              " is not divisible by num_kv_heads ", c.num_kv_heads);
  PGOLF_CHECK(c.head_dim() % 2 == 0, "config: head dim ", c.head_dim(), " must be even for RoPE");
  PGOLF_CHECK(c.rope_dims >= 0 && c.rope_dims <= c.head_dim() && c.rope_dims % 2 == 0,
              "config: rope_dims ", c.rope_dims, " must be even and within the head dim ",
              c.head_dim());
  PGOLF_CHECK(c.rope_width() > 2, "config: rope_dims ", c.rope_width(),
              " is too small (the base rescale divides by r - 2)");
  positive(c.rope_train_seq_len, "rope_train_seq_len");
  PGOLF_CHECK(c.rope_base > 0, "config: rope_base must be positive");
  PGOLF_CHECK(c.mlp_hidden() > 0, "config: mlp_mult ", c.mlp_mult, " gives an empty MLP");
  PGOLF_CHECK(c.logit_softcap >= 0, "config: logit_softcap must be >= 0 (0 = off)");
  PGOLF_CHECK(c.bigram_vocab_size == 0 || c.bigram_vocab_size >= 2,
              "config: bigram_vocab_size must be 0 (off) or at least 2");
  if (c.bigram_vocab_size > 0) positive(c.bigram_dim, "bigram_dim");
  if (c.ve_enabled) positive(c.ve_dim, "ve_dim");
  PGOLF_CHECK(c.xsa_last_n >= 0, "config: xsa_last_n must be >= 0");
  const int64_t L = c.num_virtual();
  std::vector<bool> used(size_t(c.num_layers), false);
  for (size_t v = 0; v < c.layer_schedule.size(); ++v) {
    int64_t p = c.layer_schedule[v];
    PGOLF_CHECK(p >= 0 && p < c.num_layers, "config: layer_schedule[", v, "] = ", p,
                " is not a block index below num_layers ", c.num_layers);
    used[size_t(p)] = true;
  }
  for (int64_t p = 0; p < c.num_layers && !c.layer_schedule.empty(); ++p)
    PGOLF_CHECK(used[size_t(p)], "config: block ", p,
                " is never used by layer_schedule (its weights could not train)");
  PGOLF_CHECK(c.recur_layers.empty() || c.layer_schedule.empty(),
              "config: give layer_schedule or recur_layers, not both");
  for (int64_t p : c.recur_layers)
    PGOLF_CHECK(p >= 0 && p < c.num_layers, "config: recur_layers entry ", p,
                " is not a block index below num_layers ", c.num_layers);
  auto one_of = [](const std::string& v, std::initializer_list<const char*> names,
                   const char* key) {
    std::string list;
    for (const char* n : names) {
      if (v == n) return;
      list += list.empty() ? std::string("\"") + n + "\"" : std::string(", \"") + n + "\"";
    }
    fail("config: ", key, " must be one of ", list, ", got \"", v, "\"");
  };
  one_of(c.scalar_sharing, {"layer", "block"}, "scalar_sharing");
  one_of(c.repeat_untie_mlp, {"none", "down", "full"}, "repeat_untie_mlp");
  one_of(c.xsa_placement, {"virtual", "block"}, "xsa_placement");
  one_of(c.init_scheme, {"orthogonal", "kaiming_uniform"}, "init_scheme");
  PGOLF_CHECK(c.residual_ve_tables >= 0, "config: residual_ve_tables must be >= 0");
  PGOLF_CHECK(!c.cross_repeat || c.num_repeats() >= 2,
              "config: cross_repeat needs a schedule that uses some block twice");
  for (size_t k = 0; k < c.ve_layers.size(); ++k) {
    PGOLF_CHECK(c.ve_layers[k] >= 0 && c.ve_layers[k] < L, "config: ve_layers entry ",
                c.ve_layers[k], " is not a virtual layer below ", L);
    for (size_t j = 0; j < k; ++j)
      PGOLF_CHECK(c.ve_layers[j] != c.ve_layers[k], "config: ve_layers lists layer ",
                  c.ve_layers[k], " twice");
  }
}

}  // namespace pgolf
