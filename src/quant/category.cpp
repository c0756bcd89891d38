// Tensor categories (category.h), decided by the SPEC §5 name alone.
#include "quant/category.h"

namespace pgolf::quant {

namespace {

// For "<prefix>{i}.<rest>", the rest; "" when the name has no dot after the index.
std::string after_index(const std::string& name, size_t prefix_len) {
  const size_t dot = name.find('.', prefix_len);
  return dot == std::string::npos ? "" : name.substr(dot + 1);
}

}  // namespace

std::string tensor_category(const std::string& name) {
  if (name.starts_with("tok_emb.") || name.starts_with("lm_head.")) return "embed";
  if (name.starts_with("bigram.")) return "bigram";
  if (name.starts_with("ve_shared.") || name.starts_with("value_embeds.")) return "ve";
  // blocks.{p}.<rest> (the matrices per physical block, the rest per virtual layer) and
  // repeats.{v}.<rest> (a repeat's untied matrices, docs/recurrence.md).
  for (const char* prefix : {"blocks.", "repeats."}) {
    const std::string p = prefix;
    if (!name.starts_with(p)) continue;
    const std::string rest = after_index(name, p.size());
    if (rest.starts_with("mlp.")) return "mlp";
    for (const char* m : {"attn.c_q.", "attn.c_k.", "attn.c_v.", "attn.proj."})
      if (rest.starts_with(m)) return "attn";
  }
  return "control";
}

}  // namespace pgolf::quant
