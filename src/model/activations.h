// Activations<T>: every buffer the forward keeps for the backward, and the backward's
// scratch, carved from one Arena<T> when a (batch, seq) shape is first seen. Optional
// buffers exist only when their feature is on (their pointer stays null otherwise).
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "core/arena.h"
#include "model/plan.h"

namespace pgolf {

template <typename T>
struct LayerActs {
  T* x_pre = nullptr;   // the stream after the pre-block additions (U-Net skip, loop
                        // embedding, residual VE, cross-repeat; docs/recurrence.md)
  T *x_in, *rstd1, *a;  // resid-mixed input, its rms, the normed input
  T *q_raw, *q_rstd, *qn, *q;  // projections, per-head rms, normed+rotated, gained
  T *k_raw, *k_rstd, *k;
  T* u_raw;             // a Wv^T + ve (raw_u)
  T* u = nullptr;       // after value residual (u_raw when off)
  T *y_att, *lse;       // attention output and row log-sum-exp
  T* y_xsa = nullptr;   // XSA output
  T *g_logit = nullptr, *y_gate = nullptr;  // gated attention
  T *o, *x_mid, *rstd2, *m, *hpre, *act, *mo;
};

// The sizes every pass uses, in one place: rows N = B*seq, widths of SPEC §2's notation.
struct Dims {
  int64_t N, B, seq, d, kv, H, Hkv, hd, r, mh, V;
};

template <typename T>
struct Activations {
  Dims dims;
  Arena<T> arena;
  std::vector<int32_t> ids, targets, bigram_idx;

  T *rope_cos, *rope_sin;
  T *tok, *hsum = nullptr, *hn = nullptr, *emb_rstd;                 // embedding
  T *be = nullptr, *bp = nullptr;                          // bigram embed / projection
  T *ve_emb = nullptr, *ve_base = nullptr;                 // value-embedding base
  std::vector<T*> rve, drve;  // residual value-embedding rows per table, and their grads
  std::vector<T*> xs;                                      // xs[0] = x0, xs[v+1] = block v out
  std::vector<LayerActs<T>> layers;
  T *zf, *final_rstd, *logits, *losses;                    // head

  // Backward scratch, reused by every layer.
  T *dloss, *dlogits, *dzf, *dcur, *dnext, *dx0;
  T *dmid, *dxin, *dmo, *dact, *dhpre, *dm, *do_, *dyf, *dy_x = nullptr, *dglogit = nullptr;
  T *dy_att = nullptr, *da, *dq, *dqn, *dq_norm, *dq_raw, *dk, *dk_norm, *dk_raw, *du;
  T *du_raw = nullptr, *du0 = nullptr, *dve_base = nullptr, *dve_emb = nullptr;
  T *dhn, *dhsum, *dbp = nullptr, *dbe = nullptr;
  std::vector<T*> dskip;  // gradient of each skip's encoder output
  std::vector<T*> dcross;  // per layer feeding a cross-repeat: gradient of its output there

  // Plans every buffer for (B_, seq_) and carves them from `storage` (grown if needed).
  Activations(const ModelPlan& plan, int64_t B_, int64_t seq_, Buffer<T>& storage);

 private:
  std::vector<std::pair<T**, typename Arena<T>::Slot>> pending_;
  void want(T*& ptr, int64_t n) { pending_.push_back({&ptr, arena.plan(n)}); }
};

template <typename T>
Activations<T>::Activations(const ModelPlan& plan, int64_t B_, int64_t seq_,
                            Buffer<T>& storage) {
  const auto& c = plan.cfg;
  dims = {B_ * seq_, B_, seq_, c.model_dim, c.kv_dim(), c.num_heads, c.num_kv_heads,
          c.head_dim(), c.rope_width(), c.mlp_hidden(), c.vocab_size};
  const auto [N, B, seq, d, kv, H, Hkv, hd, r, mh, V] = dims;
  const int64_t L = c.num_virtual();
  ids.resize(size_t(N));
  targets.resize(size_t(N));

  want(rope_cos, seq * r / 2);
  want(rope_sin, seq * r / 2);
  want(tok, N * d);
  if (c.smear_gate) want(hn, N * d);  // else the norm writes x0 directly
  want(emb_rstd, N);
  if (c.bigram_vocab_size > 0) {
    bigram_idx.resize(size_t(N));
    want(hsum, N * d);
    want(be, N * c.bigram_dim);
    want(dbe, N * c.bigram_dim);
    if (plan.bigram_proj >= 0) { want(bp, N * d); want(dbp, N * d); }
  }
  if (c.ve_enabled) {
    want(ve_emb, N * c.ve_dim);
    want(dve_base, N * kv);
    if (plan.ve_proj >= 0) { want(ve_base, N * kv); want(dve_emb, N * c.ve_dim); }
  }
  // Any depth stage may add something before a block (the U-Net moves with the stage).
  const bool pre_add = c.num_skips() > 0 || c.loop_embed || c.residual_ve_tables > 0 ||
                       c.cross_repeat;
  rve.assign(size_t(c.residual_ve_tables), nullptr);
  drve.assign(size_t(c.residual_ve_tables), nullptr);
  for (auto& p : rve) want(p, N * d);
  for (auto& p : drve) want(p, N * d);
  dcross.assign(size_t(L), nullptr);
  for (int64_t v = 0; v < L; ++v)
    if (plan.wiring[size_t(v)].feeds_cross) want(dcross[size_t(v)], N * d);
  xs.assign(size_t(L + 1), nullptr);
  for (auto& x : xs) want(x, N * d);
  layers.resize(size_t(L));
  for (int64_t v = 0; v < L; ++v) {
    auto& la = layers[size_t(v)];
    const auto& w = plan.wiring[size_t(v)];
    if (pre_add) want(la.x_pre, N * d);
    want(la.x_in, N * d); want(la.rstd1, N); want(la.a, N * d);
    want(la.q_raw, N * d); want(la.q_rstd, N * H); want(la.qn, N * d); want(la.q, N * d);
    want(la.k_raw, N * kv); want(la.k_rstd, N * Hkv); want(la.k, N * kv);
    want(la.u_raw, N * kv);
    if (w.value_residual) want(la.u, N * kv);
    want(la.y_att, N * d); want(la.lse, B * H * seq);
    if (w.xsa) want(la.y_xsa, N * d);
    if (c.gated_attention) { want(la.g_logit, N * H); want(la.y_gate, N * d); }
    want(la.o, N * d); want(la.x_mid, N * d); want(la.rstd2, N); want(la.m, N * d);
    want(la.hpre, N * mh); want(la.act, N * mh); want(la.mo, N * d);
  }
  want(zf, N * d); want(final_rstd, N); want(logits, N * V); want(losses, N);

  want(dloss, N); want(dlogits, N * V); want(dzf, N * d);
  want(dcur, N * d); want(dnext, N * d); want(dx0, N * d);
  want(dmid, N * d); want(dxin, N * d); want(dmo, N * d); want(dact, N * mh);
  want(dhpre, N * mh); want(dm, N * d); want(do_, N * d); want(dyf, N * d);
  if (c.gated_attention) { want(dy_x, N * d); want(dglogit, N * H); }
  if (c.xsa_last_n > 0) want(dy_att, N * d);
  want(da, N * d); want(dq, N * d); want(dqn, N * d); want(dq_norm, N * d); want(dq_raw, N * d);
  want(dk, N * kv); want(dk_norm, N * kv); want(dk_raw, N * kv); want(du, N * kv);
  if (c.value_residual) { want(du_raw, N * kv); want(du0, N * kv); }
  want(dhn, N * d); want(dhsum, N * d);
  dskip.assign(size_t(c.num_skips()), nullptr);
  for (auto& p : dskip) want(p, N * d);

  arena.bind(storage);
  for (auto& [ptr, slot] : pending_) *ptr = arena.at(slot);
  pending_.clear();
  // Aliases for switched-off stages, so the forward reads one pointer per stage.
  if (!hsum) hsum = tok;
  if (!hn) hn = xs[0];
  if (be && !bp) { bp = be; dbp = dbe; }
  if (c.ve_enabled && !ve_base) ve_base = ve_emb;
  for (auto& la : layers)
    if (!la.u) la.u = la.u_raw;
}

}  // namespace pgolf
