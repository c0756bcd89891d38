#include "model/cuda/device_activations.h"

namespace pgolf::cuda {

void DeviceArena::bind(DeviceBuffer<unsigned char>& storage) {
  if (storage.size() < used_) {
    storage.resize(0);
    storage.resize(used_);
  }
  for (auto& bind_slot : binders_) bind_slot(storage.data());
}

// The slots of model/activations.h, forward and backward, with the same optional-buffer rules.
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
    A.want(dbe, N * c.bigram_dim);
    if (plan.bigram_proj >= 0) { A.want(bp, N * d); A.want(dbp, N * d); }
  }
  if (c.ve_enabled) {
    A.want(ve_emb, N * c.ve_dim);
    A.want(ve_scaled, N * kv);
    A.want(dve_scaled, N * kv);
    A.want(dve_base, N * kv);
    if (plan.ve_proj >= 0) { A.want(ve_base, N * kv); A.want(dve_emb, N * c.ve_dim); }
  }
  const bool pre_add = c.num_skips() > 0 || c.loop_embed || c.residual_ve_tables > 0 ||
                       c.cross_repeat;
  rve.assign(size_t(c.residual_ve_tables), nullptr);
  drve.assign(size_t(c.residual_ve_tables), nullptr);
  for (auto& p : rve) A.want(p, N * d);
  for (auto& p : drve) A.want(p, N * d);
  dcross.assign(size_t(L), nullptr);
  for (int64_t v = 0; v < L; ++v)
    if (plan.wiring[size_t(v)].feeds_cross) A.want(dcross[size_t(v)], N * d);
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

  A.want(dloss, N); A.want(dlogits, N * V); A.want(dzf, N * d);
  A.want(dcur, N * d); A.want(dnext, N * d); A.want(dx0, N * d);
  A.want(dmid, N * d); A.want(dxin, N * d); A.want(dmo, N * d); A.want(dact, N * mh);
  A.want(dhpre, N * mh); A.want(dm, N * d); A.want(do_, N * d); A.want(dyf, N * d);
  if (c.gated_attention) { A.want(dy_x, N * d); A.want(dglogit, N * H); }
  if (c.xsa_last_n > 0) A.want(dy_att, N * d);
  A.want(da, N * d); A.want(dq, N * d); A.want(dqn, N * d); A.want(dq_norm, N * d);
  A.want(dq_raw, N * d);
  A.want(dk, N * kv); A.want(dk_norm, N * kv); A.want(dk_raw, N * kv); A.want(du, N * kv);
  if (c.value_residual) { A.want(du_raw, N * kv); A.want(du0, N * kv); }
  A.want(dhn, N * d); A.want(dhsum, N * d);
  dskip.assign(size_t(c.num_skips()), nullptr);
  for (auto& p : dskip) A.want(p, N * d);
}

void DeviceActivations::bind(DeviceBuffer<unsigned char>& storage) {
  arena_.bind(storage);
  // Aliases for switched-off stages, so both passes read one pointer per stage.
  if (!hsum) hsum = tok;
  if (!hn) hn = xs[0];
  if (be && !bp) {
    bp = be;
    dbp = dbe;
  }
  if (ve_emb && !ve_base) ve_base = ve_emb;
  for (auto& la : layers)
    if (!la.u) la.u = la.u_raw;
}

}  // namespace pgolf::cuda
