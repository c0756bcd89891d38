#include "model/init.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/philox.h"

namespace pgolf {
namespace {

// FNV-1a: a stable stream id per tensor name.
uint64_t name_stream(const std::string& name) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : name) h = (h ^ ch) * 1099511628211ull;
  return h;
}

template <typename T>
void fill(T* p, int64_t n, double value) {
  for (int64_t i = 0; i < n; ++i) p[i] = T(value);
}

template <typename T>
void normal(T* p, int64_t n, double stddev, const Philox& rng) {
  for (int64_t i = 0; i < n; ++i) p[i] = T(stddev * rng.normal(uint64_t(i)));
}

// torch.nn.init.orthogonal_(gain=1): QR of a [max(r,c), min(r,c)] normal matrix, Q with
// R's diagonal made positive (modified Gram–Schmidt gives that directly), transposed
// when rows < cols. Twice-iterated Gram–Schmidt keeps Q orthogonal to rounding.
template <typename T>
void orthogonal(T* w, int64_t rows, int64_t cols, const Philox& rng) {
  const int64_t tall = std::max(rows, cols), wide = std::min(rows, cols);
  std::vector<double> q(size_t(tall * wide));  // column-major columns of length `tall`
  for (int64_t i = 0; i < tall * wide; ++i) q[size_t(i)] = rng.normal(uint64_t(i));
  for (int64_t j = 0; j < wide; ++j) {
    double* qj = &q[size_t(j * tall)];
    for (int pass = 0; pass < 2; ++pass)
      for (int64_t i = 0; i < j; ++i) {
        const double* qi = &q[size_t(i * tall)];
        double dot = 0;
        for (int64_t t = 0; t < tall; ++t) dot += qi[t] * qj[t];
        for (int64_t t = 0; t < tall; ++t) qj[t] -= dot * qi[t];
      }
    double norm = 0;
    for (int64_t t = 0; t < tall; ++t) norm += qj[t] * qj[t];
    norm = std::sqrt(norm);
    for (int64_t t = 0; t < tall; ++t) qj[t] /= norm;
  }
  // rows >= cols: W[t, j] = Q[t, j];  rows < cols: W = Q^T, W[j, t] = Q[t, j].
  for (int64_t j = 0; j < wide; ++j)
    for (int64_t t = 0; t < tall; ++t)
      (rows >= cols ? w[t * cols + j] : w[j * cols + t]) = T(q[size_t(j * tall + t)]);
}

// The reference's rule for a linear that does not start at zero: orthogonal when both
// dims are >= 64, otherwise PyTorch's default U(±1/sqrt(fan_in)) (docs/deviations.md).
// init_scheme "kaiming_uniform" (#784) takes PyTorch's default for every size.
template <typename T>
void linear_init(T* w, int64_t rows, int64_t cols, const Philox& rng, bool orthogonal_ok) {
  if (orthogonal_ok && rows >= 64 && cols >= 64) {
    orthogonal(w, rows, cols, rng);
    return;
  }
  const double bound = 1.0 / std::sqrt(double(cols));
  for (int64_t i = 0; i < rows * cols; ++i) w[i] = T(bound * (2 * rng.uniform(uint64_t(i), 0) - 1));
}

}  // namespace

template <typename T>
void init_params(const ModelPlan& plan, ParamStore<T>& store, uint64_t seed) {
  const auto& c = plan.cfg;
  const auto& layout = plan.layout;
  auto rng = [&](int i) { return Philox(seed, name_stream(layout.info(i).name)); };
  auto n = [&](int i) { return layout.info(i).numel; };
  const bool orthogonal_ok = c.init_scheme == "orthogonal";
  auto linear = [&](int i) {
    if (i >= 0)
      linear_init(store.value(i), layout.info(i).shape[0], layout.info(i).shape[1], rng(i),
                  orthogonal_ok);
  };
  auto constant = [&](int i, double value) { if (i >= 0) fill(store.value(i), n(i), value); };

  // Untied: nn.Embedding's N(0, 1) for tok_emb and a zero lm_head, as the reference.
  normal(store.value(plan.tok_emb), n(plan.tok_emb), c.tie_embeddings ? c.tied_embed_init_std : 1.0,
         rng(plan.tok_emb));
  constant(plan.lm_head, 0.0);
  constant(plan.bigram_embed, 0.0);
  linear(plan.bigram_proj);
  constant(plan.bigram_scale, 0.05);
  constant(plan.smear_gate, 0.0);
  constant(plan.skip_weights, 1.0);
  if (plan.ve_embed >= 0) normal(store.value(plan.ve_embed), n(plan.ve_embed), 0.01, rng(plan.ve_embed));
  linear(plan.ve_proj);
  constant(plan.ve_scale, 0.1);
  for (int i : plan.ve_layer_scales) constant(i, 1.0);
  if (c.scale_proj_init)  // #857, #490: `.proj` linears that start non-zero, / sqrt(2 L)
    for (int i : {plan.bigram_proj, plan.ve_proj})
      if (i >= 0)
        for (int64_t k = 0; k < n(i); ++k)
          store.value(i)[k] *= T(1.0 / std::sqrt(2.0 * double(c.num_virtual())));
  // #784: loop embeddings, residual VE scales and cross-repeat scales start at zero; the
  // residual VE tables keep nn.Embedding's N(0, 1).
  constant(plan.loop_embed, 0.0);
  constant(plan.value_scales, 0.0);
  constant(plan.cross_repeat_scales, 0.0);
  for (int i : plan.value_embeds) normal(store.value(i), n(i), 1.0, rng(i));
  for (const auto& b : plan.blocks) {
    linear(b.c_q);
    linear(b.c_k);
    linear(b.c_v);
    linear(b.mlp_fc);
    constant(b.attn_proj, 0.0);
    constant(b.mlp_proj, 0.0);
  }
  const int64_t d = c.model_dim;
  for (const auto& l : plan.layers) {
    constant(l.attn_scale, 1.0);
    constant(l.mlp_scale, 1.0);
    fill(store.value(l.resid_mix), d, 1.0);  // resid_mix = [1, 0]
    fill(store.value(l.resid_mix) + d, d, 0.0);
    constant(l.q_gain, c.qk_gain_init);
    constant(l.gate_weight, 0.0);
    constant(l.gate_bias, 4.0);
    constant(l.vr_lambda, 0.5);
  }
  // A repeat's own matrices start as copies of its block's (docs/recurrence.md).
  for (const auto& r : plan.untied_matrix_sources)
    std::copy_n(store.value(r.source), n(r.source), store.value(r.copy));
}

template void init_params<float>(const ModelPlan&, ParamStore<float>&, uint64_t);
template void init_params<double>(const ModelPlan&, ParamStore<double>&, uint64_t);

}  // namespace pgolf
