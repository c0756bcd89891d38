// The forward and backward of SPEC §2, in SPEC order. Kernels come from kernels/cpu;
// this file only wires them: which buffer feeds which op, and where gradients meet.
#include "model/model.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/cross_entropy.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/linear.h"
#include "kernels/cpu/rmsnorm.h"
#include "kernels/cpu/rope.h"
#include "kernels/cpu/smear.h"
#include "kernels/cpu/xsa.h"
#include "model/activations.h"
#include "model/token_ids.h"

namespace pgolf {

using namespace cpu;

namespace {
template <typename T>
void zero(T* p, int64_t n) { std::memset(p, 0, size_t(n) * sizeof(T)); }
template <typename T>
void copy(const T* src, T* dst, int64_t n) { std::memcpy(dst, src, size_t(n) * sizeof(T)); }
// Every forward's check of its input and target ids.
}  // namespace

template <typename T>
Model<T>::Model(ModelPlan plan) : plan_(std::move(plan)), params_(plan_.layout) {
  set_active_repeats(plan_.cfg.num_repeats());
}

template <typename T>
void Model<T>::set_active_repeats(int64_t k) {
  stage_ = depth_stage(plan_.cfg, k);
  backward_ready_ = false;
}

// The stream leaving the last active layer: the head's input.
template <typename T>
T* Model<T>::final_stream() {
  return acts_->xs[size_t(stage_.active.back() + 1)];
}

template <typename T>
Model<T>::~Model() = default;

template <typename T>
const T* Model<T>::token_losses() const {
  PGOLF_CHECK(acts_, "internal: token_losses() before forward()");
  return acts_->losses;
}

// Virtual layer v's wiring, scalars, block matrices and activations.
template <typename T>
typename Model<T>::LayerRefs Model<T>::layer(int64_t v) {
  return {stage_.wiring[size_t(v)], plan_.layers[size_t(v)], plan_.layer_mats[size_t(v)],
          acts_->layers[size_t(v)]};
}

template <typename T>
void Model<T>::prepare(int64_t B, int64_t seq) {
  if (acts_ && acts_->dims.B == B && acts_->dims.seq == seq) return;
  acts_ = std::make_unique<Activations<T>>(plan_, B, seq, arena_storage_);
  const auto& c = plan_.cfg;
  rope_tables(seq, c.rope_width(), c.rope_base, c.rope_train_seq_len, acts_->rope_cos,
              acts_->rope_sin);
}

template <typename T>
double Model<T>::forward(const int32_t* inputs, const int32_t* targets, int64_t B, int64_t seq) {
  trunk_forward(inputs, B, seq);
  head_forward(targets, 0, 1.0);
  backward_ready_ = true;
  double total = 0;
  for (int64_t i = 0; i < acts_->dims.N; ++i) total += double(acts_->losses[i]);
  return total / double(acts_->dims.N);
}

template <typename T>
const T* Model<T>::forward_scored(const int32_t* inputs, const int32_t* targets, int64_t B,
                                  int64_t seq, int64_t first_row, double temperature) {
  PGOLF_CHECK(first_row >= 0 && first_row < seq, "internal: scored rows from ", first_row,
              " of a sequence of ", seq);
  trunk_forward(inputs, B, seq);
  PGOLF_CHECK(temperature > 0 && std::isfinite(temperature),
              "the scoring temperature must be positive, got ", temperature);
  head_forward(targets, first_row, temperature);
  return acts_->losses;
}

// Embedding and every active virtual layer: final_stream() = the stream entering the head.
template <typename T>
void Model<T>::trunk_forward(const int32_t* inputs, int64_t B, int64_t seq) {
  PGOLF_CHECK(B > 0 && seq > 0, "forward needs at least one sequence of one token");
  backward_ready_ = false;
  prepare(B, seq);
  auto& A = *acts_;
  const auto& c = plan_.cfg;
  const auto& P = plan_;
  const int64_t N = A.dims.N, d = A.dims.d;
  check_token_ids(inputs, 0, N, A.dims.V);
  std::copy(inputs, inputs + N, A.ids.begin());
  auto W = [&](int i) { return params_.value(i); };

  // Embedding, SPEC §2 steps 1–5: tok_emb[x] (+ bigram) → rms → SmearGate → x0.
  embedding_forward(A.ids.data(), W(P.tok_emb), A.tok, N, d);
  if (c.bigram_vocab_size > 0) {
    bigram_hash(A.ids.data(), A.bigram_idx.data(), B, seq, c.bigram_vocab_size);
    embedding_forward(A.bigram_idx.data(), W(P.bigram_embed), A.be, N, c.bigram_dim);
    if (P.bigram_proj >= 0) linear_forward(A.be, W(P.bigram_proj), A.bp, N, c.bigram_dim, d);
    scaled_add_forward(A.tok, A.bp, W(P.bigram_scale), A.hsum, N, d, int64_t(1));
  }
  rmsnorm_forward(A.hsum, A.hn, A.emb_rstd, N, d, T(1));
  if (c.smear_gate) smear_forward(A.hn, W(P.smear_gate), A.xs[0], B, seq, d);

  // Value embeddings: the shared table and projection, computed once for every VE layer.
  if (c.ve_enabled) {
    embedding_forward(A.ids.data(), W(P.ve_embed), A.ve_emb, N, c.ve_dim);
    if (P.ve_proj >= 0) linear_forward(A.ve_emb, W(P.ve_proj), A.ve_base, N, c.ve_dim, c.kv_dim());
  }
  // Residual-stream value embeddings (#784): each table's rows, mixed in per layer.
  for (size_t j = 0; j < P.value_embeds.size(); ++j)
    embedding_forward(A.ids.data(), W(P.value_embeds[j]), A.rve[j], N, d);

  for (int64_t v : stage_.active) block_forward(v);
}

// Head: rms → logits (tied or untied) → softcap → cross-entropy, on rows [first, seq) of
// each sequence, packed as [B, seq - first] (first = 0: every row, in place).
template <typename T>
void Model<T>::head_forward(const int32_t* targets, int64_t first, double temperature) {
  auto& A = *acts_;
  const auto [N, B, seq, d, kv, H, Hkv, hd, r, mh, V] = A.dims;
  const int64_t S = seq - first, rows = B * S;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t from = b * seq + first;
    check_token_ids(targets + from, from, S, V);
    std::copy(targets + from, targets + from + S, A.targets.begin() + b * S);
  }
  if (first == 0) {  // the rows are already packed: one call, so threads pay
    rmsnorm_forward(final_stream(), A.zf, A.final_rstd, N, d, T(1));
  } else {
    for (int64_t b = 0; b < B; ++b)
      rmsnorm_forward(final_stream() + (b * seq + first) * d, A.zf + b * S * d,
                      A.final_rstd + b * S, S, d, T(1));
  }
  const int head = plan_.lm_head >= 0 ? plan_.lm_head : plan_.tok_emb;
  linear_forward(A.zf, params_.value(head), A.logits, rows, d, V);
  softcap_ce_forward(A.logits, A.targets.data(), A.losses, rows, V, T(plan_.cfg.logit_softcap),
                     T(temperature));
}

template <typename T>
void Model<T>::block_forward(int64_t v) {
  auto& A = *acts_;
  const auto& c = plan_.cfg;
  auto [w, lp, bp, la] = layer(v);
  const auto [N, B, seq, d, kv, H, Hkv, hd, r, mh, V] = A.dims;
  const T s = T(w.ln_scale);
  auto W = [&](int i) { return params_.value(i); };

  // The previous active layer's output, plus the pre-block additions.
  const T* x = A.xs[size_t(w.input_from + 1)];
  if (w.pre_add) {
    pre_add_forward(v, x);
    x = la.x_pre;
  }
  // x_in = resid_mix[0] x + resid_mix[1] x0;  a = rms(x_in) s.
  resid_mix_forward(x, A.xs[0], W(lp.resid_mix), la.x_in, N, d);
  rmsnorm_forward(la.x_in, la.a, la.rstd1, N, d, s);
  observe({bp.c_q, bp.c_k, bp.c_v}, la.a, N, d);
  linear_forward(la.a, W(bp.c_q), la.q_raw, N, d, d);
  linear_forward(la.a, W(bp.c_k), la.k_raw, N, d, kv);
  linear_forward(la.a, W(bp.c_v), la.u_raw, N, d, kv);
  if (w.ve_slot >= 0) {
    const T coef = W(plan_.ve_layer_scales[size_t(w.ve_slot)])[0] * W(plan_.ve_scale)[0];
    axpy(N * kv, coef, A.ve_base, la.u_raw);
  }
  // Value residual: u = λ0 u0 + λ1 u, u0 = raw_u of virtual layer 0.
  if (w.value_residual) mix2_forward(A.layers[0].u_raw, la.u_raw, W(lp.vr_lambda), la.u, N * kv);
  // q, k: per-head rms, partial RoPE; q *= q_gain.
  rmsnorm_forward(la.q_raw, la.qn, la.q_rstd, N * H, hd, T(1));
  rope_forward(la.qn, la.qn, A.rope_cos, A.rope_sin, B, seq, H, hd, r);
  head_scale_forward(la.qn, W(lp.q_gain), la.q, N, H, hd);
  rmsnorm_forward(la.k_raw, la.k, la.k_rstd, N * Hkv, hd, T(1));
  rope_forward(la.k, la.k, A.rope_cos, A.rope_sin, B, seq, Hkv, hd, r);

  attention_forward(la.q, la.k, la.u, la.y_att, la.lse, B, seq, H, Hkv, hd);
  const T* y = la.y_att;
  if (w.xsa) {
    xsa_forward(y, la.u, la.y_xsa, N, H, Hkv, hd);
    y = la.y_xsa;
  }
  if (c.gated_attention) {
    linear_forward(la.a, W(lp.gate_weight), la.g_logit, N, d, H);
    bias_add_forward(la.g_logit, W(lp.gate_bias), N, H);
    head_gate_forward(y, la.g_logit, la.y_gate, N, H, hd);
    y = la.y_gate;
  }
  // x = x_in + attn_scale ⊙ (y Wo^T);  x += mlp_scale ⊙ (leaky_relu(rms(x) s Wup^T)² Wdown^T).
  observe({bp.attn_proj}, y, N, d);
  linear_forward(y, W(bp.attn_proj), la.o, N, d, d);
  scaled_add_forward(la.x_in, la.o, W(lp.attn_scale), la.x_mid, N, d, d);
  rmsnorm_forward(la.x_mid, la.m, la.rstd2, N, d, s);
  observe({bp.mlp_fc}, la.m, N, d);
  linear_forward(la.m, W(bp.mlp_fc), la.hpre, N, d, mh);
  leaky_relu_sq_forward(la.hpre, la.act, N * mh, T(c.negative_slope));
  observe({bp.mlp_proj}, la.act, N, mh);
  linear_forward(la.act, W(bp.mlp_proj), la.mo, N, mh, d);
  scaled_add_forward(la.x_mid, la.mo, W(lp.mlp_scale), A.xs[size_t(v + 1)], N, d, d);
  if (layer_observer_) layer_observer_(v, x, A.xs[size_t(v + 1)], N, d);
}

template <typename T>
void Model<T>::backward(double loss_scale) {
  PGOLF_CHECK(backward_ready_, "internal: backward() without a forward() before it");
  auto& A = *acts_;
  const auto& c = plan_.cfg;
  const auto& P = plan_;
  const auto [N, B, seq, d, kv, H, Hkv, hd, r, mh, V] = A.dims;
  auto W = [&](int i) { return params_.value(i); };
  auto G = [&](int i) { return params_.grad(i); };

  // Head: mean cross-entropy → softcap → logits → final rms.
  std::fill(A.dloss, A.dloss + N, T(loss_scale / double(N)));
  softcap_ce_backward(A.logits, A.targets.data(), A.dloss, A.dlogits, N, V, T(c.logit_softcap),
                      /*accumulate=*/false);
  const int head = P.lm_head >= 0 ? P.lm_head : P.tok_emb;
  zero(A.dzf, N * d);
  linear_backward(A.dlogits, A.zf, W(head), A.dzf, G(head), N, d, V);
  T* dcur = A.dcur;
  T* dnext = A.dnext;
  zero(dcur, N * d);
  rmsnorm_backward(A.dzf, final_stream(), A.final_rstd, dcur, N, d, T(1));

  zero(A.dx0, N * d);
  if (A.du0) zero(A.du0, N * kv);
  if (A.dve_base) zero(A.dve_base, N * kv);
  for (T* p : A.dskip) zero(p, N * d);
  for (T* p : A.dcross) if (p) zero(p, N * d);
  for (T* p : A.drve) zero(p, N * d);
  for (auto v = stage_.active.rbegin(); v != stage_.active.rend(); ++v) block_backward(*v, dcur, dnext);
  for (size_t j = 0; j < P.value_embeds.size(); ++j)
    embedding_backward(A.ids.data(), A.drve[j], G(P.value_embeds[j]), N, d);

  // x0 feeds layer 0's stream and every resid_mix.
  axpy(N * d, T(1), A.dx0, dcur);
  const T* dhn = dcur;
  if (c.smear_gate) {
    zero(A.dhn, N * d);
    smear_backward(dcur, A.hn, W(P.smear_gate), A.dhn, G(P.smear_gate), B, seq, d);
    dhn = A.dhn;
  }
  zero(A.dhsum, N * d);
  rmsnorm_backward(dhn, A.hsum, A.emb_rstd, A.dhsum, N, d, T(1));
  embedding_backward(A.ids.data(), A.dhsum, G(P.tok_emb), N, d);
  if (c.bigram_vocab_size > 0) {
    zero(A.dbp, N * (P.bigram_proj >= 0 ? d : c.bigram_dim));
    scaled_add_backward(A.dhsum, A.bp, W(P.bigram_scale), static_cast<T*>(nullptr), A.dbp,
                        G(P.bigram_scale), N, d, int64_t(1));
    if (P.bigram_proj >= 0) {
      zero(A.dbe, N * c.bigram_dim);
      linear_backward(A.dbp, A.be, W(P.bigram_proj), A.dbe, G(P.bigram_proj), N, c.bigram_dim, d);
    }
    embedding_backward(A.bigram_idx.data(), A.dbe, G(P.bigram_embed), N, c.bigram_dim);
  }
  if (c.ve_enabled) {
    const T* dve = A.dve_base;
    if (P.ve_proj >= 0) {
      zero(A.dve_emb, N * c.ve_dim);
      linear_backward(A.dve_base, A.ve_emb, W(P.ve_proj), A.dve_emb, G(P.ve_proj), N, c.ve_dim, kv);
      dve = A.dve_emb;
    }
    embedding_backward(A.ids.data(), dve, G(P.ve_embed), N, c.ve_dim);
  }
}

// On entry dcur = ∂loss/∂xs[v+1]; on exit dcur = ∂loss/∂xs[v] (the stream part; the x0
// part of resid_mix accumulates in A.dx0). dnext is scratch of the same size.
template <typename T>
void Model<T>::block_backward(int64_t v, T*& dcur, T*& dnext) {
  auto& A = *acts_;
  const auto& c = plan_.cfg;
  auto [w, lp, bp, la] = layer(v);
  const auto [N, B, seq, d, kv, H, Hkv, hd, r, mh, V] = A.dims;
  const T s = T(w.ln_scale);
  T* const none = nullptr;
  auto W = [&](int i) { return params_.value(i); };
  auto G = [&](int i) { return params_.grad(i); };

  // An encoder layer's output also went through a U-Net skip, and a repeated block's
  // output into its next use's cross-repeat addition.
  if (w.skip_out >= 0) axpy(N * d, T(1), A.dskip[size_t(w.skip_out)], dcur);
  if (w.feeds_cross && A.dcross[size_t(v)]) axpy(N * d, T(1), A.dcross[size_t(v)], dcur);

  // MLP: xs[v+1] = x_mid + mlp_scale ⊙ mo.
  copy(dcur, A.dmid, N * d);
  zero(A.dmo, N * d);
  scaled_add_backward(dcur, la.mo, W(lp.mlp_scale), none, A.dmo, G(lp.mlp_scale), N, d, d);
  zero(A.dact, N * mh);
  linear_backward(A.dmo, la.act, W(bp.mlp_proj), A.dact, G(bp.mlp_proj), N, mh, d);
  zero(A.dhpre, N * mh);
  leaky_relu_sq_backward(A.dact, la.hpre, A.dhpre, N * mh, T(c.negative_slope));
  zero(A.dm, N * d);
  linear_backward(A.dhpre, la.m, W(bp.mlp_fc), A.dm, G(bp.mlp_fc), N, d, mh);
  rmsnorm_backward(A.dm, la.x_mid, la.rstd2, A.dmid, N, d, s);

  // Attention: x_mid = x_in + attn_scale ⊙ (y Wo^T).
  copy(A.dmid, A.dxin, N * d);
  zero(A.do_, N * d);
  scaled_add_backward(A.dmid, la.o, W(lp.attn_scale), none, A.do_, G(lp.attn_scale), N, d, d);
  const T* y_pre_gate = w.xsa ? la.y_xsa : la.y_att;
  const T* y_final = c.gated_attention ? la.y_gate : y_pre_gate;
  zero(A.dyf, N * d);
  linear_backward(A.do_, y_final, W(bp.attn_proj), A.dyf, G(bp.attn_proj), N, d, d);
  zero(A.da, N * d);
  T* dy = A.dyf;
  if (c.gated_attention) {
    zero(A.dy_x, N * d);
    zero(A.dglogit, N * H);
    head_gate_backward(dy, y_pre_gate, la.g_logit, A.dy_x, A.dglogit, N, H, hd);
    linear_backward(A.dglogit, la.a, W(lp.gate_weight), A.da, G(lp.gate_weight), N, d, H);
    bias_add_backward(A.dglogit, G(lp.gate_bias), N, H);
    dy = A.dy_x;
  }
  zero(A.du, N * kv);
  if (w.xsa) {
    zero(A.dy_att, N * d);
    xsa_backward(dy, la.y_att, la.u, A.dy_att, A.du, N, H, Hkv, hd);
    dy = A.dy_att;
  }
  zero(A.dq, N * d);
  zero(A.dk, N * kv);
  attention_backward(dy, la.q, la.k, la.u, la.y_att, la.lse, A.dq, A.dk, A.du, B, seq, H, Hkv, hd);

  // q: gain ← RoPE ← per-head rms ← a Wq^T;  k: RoPE ← rms ← a Wk^T.
  zero(A.dqn, N * d);
  head_scale_backward(A.dq, la.qn, W(lp.q_gain), A.dqn, G(lp.q_gain), N, H, hd);
  zero(A.dq_norm, N * d);
  rope_backward(A.dqn, A.dq_norm, A.rope_cos, A.rope_sin, B, seq, H, hd, r);
  zero(A.dq_raw, N * d);
  rmsnorm_backward(A.dq_norm, la.q_raw, la.q_rstd, A.dq_raw, N * H, hd, T(1));
  zero(A.dk_norm, N * kv);
  rope_backward(A.dk, A.dk_norm, A.rope_cos, A.rope_sin, B, seq, Hkv, hd, r);
  zero(A.dk_raw, N * kv);
  rmsnorm_backward(A.dk_norm, la.k_raw, la.k_rstd, A.dk_raw, N * Hkv, hd, T(1));

  // v: value residual, then VE, then a Wv^T. Layer 0 runs last and collects every
  // later layer's ∂/∂u0.
  T* du_raw = A.du;
  if (w.value_residual) {
    zero(A.du_raw, N * kv);
    mix2_backward(A.du, A.layers[0].u_raw, la.u_raw, W(lp.vr_lambda), A.du0, A.du_raw,
                  G(lp.vr_lambda), N * kv);
    du_raw = A.du_raw;
  }
  if (v == 0 && c.value_residual) axpy(N * kv, T(1), A.du0, du_raw);
  if (w.ve_slot >= 0) {
    const int ls = plan_.ve_layer_scales[size_t(w.ve_slot)];
    const T layer_scale = W(ls)[0], shared_scale = W(plan_.ve_scale)[0];
    axpy(N * kv, layer_scale * shared_scale, du_raw, A.dve_base);
    const double g = dot(N * kv, du_raw, A.ve_base);
    G(ls)[0] += T(g * double(shared_scale));
    G(plan_.ve_scale)[0] += T(g * double(layer_scale));
  }
  linear_backward(A.dq_raw, la.a, W(bp.c_q), A.da, G(bp.c_q), N, d, d);
  linear_backward(A.dk_raw, la.a, W(bp.c_k), A.da, G(bp.c_k), N, d, kv);
  linear_backward(du_raw, la.a, W(bp.c_v), A.da, G(bp.c_v), N, d, kv);
  rmsnorm_backward(A.da, la.x_in, la.rstd1, A.dxin, N, d, s);

  // x_in = resid_mix[0] x + resid_mix[1] x0, and the additions that formed x.
  const T* x = w.pre_add ? la.x_pre : A.xs[size_t(w.input_from + 1)];
  zero(dnext, N * d);
  resid_mix_backward(A.dxin, x, A.xs[0], W(lp.resid_mix), dnext, A.dx0, G(lp.resid_mix), N, d);
  if (w.pre_add) pre_add_backward(v, dnext);
  std::swap(dcur, dnext);
}

// x_pre = in (+ skip_weights[i] ⊙ popped encoder output) (+ loop_embed[v])
//   (+ Σ_j value_scales[v, j] ⊙ value_embeds_j[ids]) (+ cross_repeat_scales[row] ⊙ out(prev)),
// in that order (docs/recurrence.md).
template <typename T>
void Model<T>::pre_add_forward(int64_t v, const T* in) {
  auto& A = *acts_;
  const auto& w = stage_.wiring[size_t(v)];
  const int64_t N = A.dims.N, d = A.dims.d, J = int64_t(plan_.value_embeds.size());
  T* x = A.layers[size_t(v)].x_pre;
  auto W = [&](int i) { return params_.value(i); };
  if (w.skip_in >= 0) {
    scaled_add_forward(in, A.xs[size_t(w.skip_from + 1)], W(plan_.skip_weights) + w.skip_in * d,
                       x, N, d, d);
  } else {
    copy(in, x, N * d);
  }
  if (plan_.loop_embed >= 0) bias_add_forward(x, W(plan_.loop_embed) + v * d, N, d);
  for (int64_t j = 0; j < J; ++j)
    scaled_add_forward(x, A.rve[size_t(j)], W(plan_.value_scales) + (v * J + j) * d, x, N, d, d);
  if (w.cross_from >= 0)
    scaled_add_forward(x, A.xs[size_t(w.cross_from + 1)],
                       W(plan_.cross_repeat_scales) + w.cross_row * d, x, N, d, d);
}

// dx = ∂loss/∂x_pre, which is also ∂loss/∂in (every addition is additive); routes it to
// the added tensors and their scales.
template <typename T>
void Model<T>::pre_add_backward(int64_t v, const T* dx) {
  auto& A = *acts_;
  const auto& w = stage_.wiring[size_t(v)];
  const int64_t N = A.dims.N, d = A.dims.d, J = int64_t(plan_.value_embeds.size());
  T* const none = nullptr;
  auto W = [&](int i) { return params_.value(i); };
  auto G = [&](int i) { return params_.grad(i); };
  if (w.skip_in >= 0)
    scaled_add_backward(dx, A.xs[size_t(w.skip_from + 1)], W(plan_.skip_weights) + w.skip_in * d,
                        none, A.dskip[size_t(w.skip_in)], G(plan_.skip_weights) + w.skip_in * d,
                        N, d, d);
  if (plan_.loop_embed >= 0) bias_add_backward(dx, G(plan_.loop_embed) + v * d, N, d);
  for (int64_t j = 0; j < J; ++j)
    scaled_add_backward(dx, A.rve[size_t(j)], W(plan_.value_scales) + (v * J + j) * d, none,
                        A.drve[size_t(j)], G(plan_.value_scales) + (v * J + j) * d, N, d, d);
  if (w.cross_from >= 0)
    scaled_add_backward(dx, A.xs[size_t(w.cross_from + 1)],
                        W(plan_.cross_repeat_scales) + w.cross_row * d, none,
                        A.dcross[size_t(w.cross_from)],
                        G(plan_.cross_repeat_scales) + w.cross_row * d, N, d, d);
}

template class Model<float>;
template class Model<double>;

}  // namespace pgolf
