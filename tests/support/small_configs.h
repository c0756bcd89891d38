// Small model configs shared by the model tests.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "model/config.h"

namespace pgolf::test {

// d 16, 4 heads / 2 KV, partial RoPE 4, BigramHash 7×6, XSA on the last 2, LN scale, gated
// attention and value residual: every switch that changes a block's math, on `num_layers`
// blocks run in `schedule` order (empty: identity). Tests add VE and recurrence keys.
inline ModelConfig small_switches_on(int64_t vocab, int64_t num_layers,
                                     std::vector<int64_t> schedule = {}) {
  ModelConfig c;
  c.vocab_size = vocab;
  c.num_layers = num_layers;
  c.layer_schedule = std::move(schedule);
  c.model_dim = 16;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.rope_dims = 4;
  c.bigram_vocab_size = 7;
  c.bigram_dim = 6;
  c.xsa_last_n = 2;
  c.ln_scale = true;
  c.gated_attention = true;
  c.value_residual = true;
  return c;
}

}  // namespace pgolf::test
