// Tensor categories: which part of the model a tensor belongs to, for size breakdowns
// (`pgolf inspect`, `pgolf pack`) of where the artifact's bytes go. Names are SPEC §5's.
#pragma once
#include <string>

namespace pgolf::quant {

// The categories in display order:
//   embed   – tok_emb.*, lm_head.*
//   bigram  – bigram.* (BigramHash embedding, projection and scale)
//   ve      – value embeddings: ve_shared.* (the shared value embedding, projection and
//             scale) and value_embeds.{j}.* (#784's residual tables, docs/recurrence.md)
//   attn    – blocks.{p}.attn.{c_q,c_k,c_v,proj}.* and a repeat's untied
//             repeats.{v}.attn.{c_q,c_k,c_v,proj}.* (the attention matrices)
//   mlp     – blocks.{p}.mlp.*, repeats.{v}.mlp.*
//   control – everything else: scales, gains, mixes, gates, lambdas, skip_weights, smear,
//             ve_layer_scales, loop_embed, value_scales, cross_repeat_scales
inline constexpr const char* kTensorCategories[] = {"embed", "bigram", "ve",
                                                    "attn",  "mlp",    "control"};

// The category of a tensor name (one of kTensorCategories).
std::string tensor_category(const std::string& name);

}  // namespace pgolf::quant
