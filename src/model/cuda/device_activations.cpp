#include "model/cuda/device_activations.h"

namespace pgolf::cuda {

void DeviceArena::bind(DeviceBuffer<unsigned char>& storage) {
  if (storage.size() < used_) {
    storage.resize(0);
    storage.resize(used_);
  }
  for (auto& bind_slot : binders_) bind_slot(storage.data());
}

// The slots of model/activations.h's forward part, with the same optional-buffer rules.
DeviceActivations::DeviceActivations(const ModelPlan& plan, int64_t B_, int64_t seq_) {
  const auto& c = plan.cfg;
  dims = {B_ * seq_, B_, seq_, c.model_dim, c.kv_dim(), c.num_heads, c.num_kv_heads,
          c.head_dim(), c.rope_width(), c.mlp_hidden(), c.vocab_size};
  const auto [N, B, seq, d, kv, H, Hkv, hd, r, mh, V] = dims;
  const int64_t L = c.num_virtual();
  auto& A = arena_;

  A.want(ids, N);
  A.want(targets, N);
  A.want(tok, N * d);
  if (c.smear_gate) A.want(hn, N * d);  // else the norm writes x0 directly
  A.want(emb_rstd, N);
  if (c.bigram_vocab_size > 0) {
    A.want(bigram_idx, N);
    A.want(hsum, N * d);
    A.want(be, N * c.bigram_dim);
    if (plan.bigram_proj >= 0) A.want(bp, N * d);
  }
  if (c.ve_enabled) {
    A.want(ve_emb, N * c.ve_dim);
    if (plan.ve_proj >= 0) A.want(ve_base, N * kv);
    A.want(ve_scaled, N * kv);
  }
  const bool pre_add = c.num_skips() > 0 || c.loop_embed || c.residual_ve_tables > 0 ||
                       c.cross_repeat;
  rve.assign(size_t(c.residual_ve_tables), nullptr);
  for (auto& p : rve) A.want(p, N * d);
  xs.assign(size_t(L + 1), nullptr);
  for (auto& x : xs) A.want(x, N * d);
  layers.resize(size_t(L));
  for (int64_t v = 0; v < L; ++v) {
    auto& la = layers[size_t(v)];
    const auto& w = plan.wiring[size_t(v)];
    if (pre_add) A.want(la.x_pre, N * d);
    A.want(la.x_in, N * d); A.want(la.rstd1, N); A.want(la.a, N * d);
    A.want(la.q_raw, N * d); A.want(la.q_rstd, N * H); A.want(la.qn, N * d); A.want(la.q, N * d);
    A.want(la.k_raw, N * kv); A.want(la.k_rstd, N * Hkv); A.want(la.k, N * kv);
    A.want(la.u_raw, N * kv);
    if (w.value_residual) A.want(la.u, N * kv);
    A.want(la.y_att, N * d); A.want(la.lse, B * H * seq);
    if (w.xsa) A.want(la.y_xsa, N * d);
    if (c.gated_attention) { A.want(la.g_logit, N * H); A.want(la.y_gate, N * d); }
    A.want(la.o, N * d); A.want(la.x_mid, N * d); A.want(la.rstd2, N); A.want(la.m, N * d);
    A.want(la.hpre, N * mh); A.want(la.act, N * mh); A.want(la.mo, N * d);
  }
  A.want(zf, N * d); A.want(final_rstd, N); A.want(logits, N * V); A.want(losses, N);
}

void DeviceActivations::bind(DeviceBuffer<unsigned char>& storage) {
  arena_.bind(storage);
  // Aliases for switched-off stages, so the forward reads one pointer per stage.
  if (!hsum) hsum = tok;
  if (!hn) hn = xs[0];
  if (be && !bp) bp = be;
  if (ve_emb && !ve_base) ve_base = ve_emb;
  for (auto& la : layers)
    if (!la.u) la.u = la.u_raw;
}

}  // namespace pgolf::cuda
