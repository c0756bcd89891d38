// The forward and backward of SPEC §2 on the GPU, in SPEC order: the same sequence of ops
// as Model<T>'s forward and backward (model/model.cpp), each the CUDA twin of the CPU
// kernel; this file only wires them. Every backward kernel accumulates (dx +=), so each
// scratch gradient is zeroed right before its first writer, as on the CPU.
// forward_staged() and backward() only queue kernels, cuBLASLt matmuls, device memsets and
// device copies on ctx.stream() (capturable, device_model.h); everything that touches the
// host or allocates is in stage_batch() and the host accessors.
#include "model/cuda/device_model.h"

#include <algorithm>
#include <span>
#include <utility>

#include "core/error.h"
#include "kernels/cuda/activation.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/cross_entropy.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/embedding.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/rmsnorm.h"
#include "kernels/cuda/rope.h"
#include "kernels/cuda/smear.h"
#include "kernels/cuda/xsa.h"
#include "model/cuda/device_activations.h"
#include "model/token_ids.h"

namespace pgolf::cuda {

namespace {

template <typename T>
void copy_async(Context& ctx, T* dst, const T* src, int64_t n, cudaMemcpyKind kind) {
  PGOLF_CUDA_CHECK(cudaMemcpyAsync(dst, src, size_t(n) * sizeof(T), kind, ctx.stream()));
}

template <typename T>
void zero(Context& ctx, T* p, int64_t n) {
  PGOLF_CUDA_CHECK(cudaMemsetAsync(p, 0, size_t(n) * sizeof(T), ctx.stream()));
}

// The parameters whose bf16 copy a GEMM reads: every block matrix (physical blocks and
// untied repeats), the attention gates, the bigram and VE projections and the head.
std::vector<bool> gemm_operands(const ModelPlan& p) {
  std::vector<bool> used(p.layout.infos().size(), false);
  auto mark = [&](int i) {
    if (i >= 0) used[size_t(i)] = true;
  };
  for (const BlockParams& b : p.blocks)
    for (int i : b.all()) mark(i);
  for (const LayerParams& lp : p.layers) mark(lp.gate_weight);
  mark(p.bigram_proj);
  mark(p.ve_proj);
  mark(p.lm_head >= 0 ? p.lm_head : p.tok_emb);
  return used;
}

}  // namespace

void check_device_support(const ModelConfig& cfg) {
  attention_check(cfg.num_heads, cfg.num_kv_heads, cfg.head_dim());
}

DeviceModel::DeviceModel(Context& ctx, ModelPlan plan) : ctx_(ctx), plan_(std::move(plan)) {
  check_device_support(plan_.cfg);
  params_.resize(plan_.layout.total());
  grads_.resize(plan_.layout.total());
  plan_shadows();
  set_active_repeats(plan_.cfg.num_repeats());
}

DeviceModel::~DeviceModel() = default;

// A new stage runs other layers with other wiring: a captured micro-step is invalid. The same
// stage again (a depth schedule sets it every step) keeps the capture.
void DeviceModel::set_active_repeats(int64_t k) {
  DepthStage next = depth_stage(plan_.cfg, k);
  if (next.repeats == stage_.repeats) return;
  stage_ = std::move(next);
  ++generation_;
  backward_ready_ = false;
}

void DeviceModel::upload(const ParamStore<float>& params) {
  params_.upload(params.values(), ctx_.stream());
}

void DeviceModel::download(ParamStore<float>& params) const {
  params_.download(params.values(), ctx_.stream());
}

void DeviceModel::zero_grads() { zero(ctx_, grads_.data(), grads_.size()); }

void DeviceModel::download_grads(ParamStore<float>& params) const {
  grads_.download(params.grads(), ctx_.stream());
}

// The shadows are packed runs of the fp32 layout: GEMM operands adjacent in the layout
// (padding included: every block's six matrices, the head and tok_emb) form one run, cast
// by one launch. Runs start 16 elements apart, as the layout's tensors do.
void DeviceModel::plan_shadows() {
  const std::vector<bool> used = gemm_operands(plan_);
  const auto& infos = plan_.layout.infos();
  shadow_offset_.assign(infos.size(), -1);
  int64_t total = 0;
  for (size_t i = 0; i < infos.size(); ++i) {
    if (!used[i]) continue;
    const ParamInfo& p = infos[i];
    const int64_t padded = (p.numel + 15) / 16 * 16;
    if (shadow_runs_.empty() || shadow_runs_.back().src + shadow_runs_.back().n != p.offset)
      shadow_runs_.push_back({p.offset, total, 0});
    ShadowRun& run = shadow_runs_.back();
    shadow_offset_[i] = run.dst + (p.offset - run.src);
    run.n += padded;
    total += padded;
  }
  shadows_.resize(total);
}

// bf16(W) for every GEMM operand: round to nearest even from the fp32 master values.
void DeviceModel::refresh_shadows() {
  for (const ShadowRun& run : shadow_runs_)
    cast_to_bf16(ctx_, params_.data() + run.src, shadows_.data() + run.dst, run.n);
}

const float* DeviceModel::W(int i) const {
  return i < 0 ? nullptr : params_.data() + plan_.layout.info(i).offset;
}

float* DeviceModel::G(int i) {
  return i < 0 ? nullptr : grads_.data() + plan_.layout.info(i).offset;
}

const bf16* DeviceModel::S(int i) const {
  PGOLF_CHECK(i >= 0 && shadow_offset_[size_t(i)] >= 0,
              "internal: parameter ", i, " has no bf16 shadow");
  return shadows_.data() + shadow_offset_[size_t(i)];
}

int64_t DeviceModel::activation_bytes(const ModelPlan& plan, int64_t B, int64_t seq_len) {
  return DeviceActivations(plan, B, seq_len).bytes();
}

// A new shape moves every activation and remakes the RoPE tables (seq changed): the stream
// is drained first, since the old blocks are freed while queued work may still use them.
// Only here does the forward's memory change (generation()).
void DeviceModel::prepare(int64_t B, int64_t seq) {
  if (acts_ && acts_->dims.B == B && acts_->dims.seq == seq) return;
  ctx_.synchronize();
  const bool new_seq = !acts_ || acts_->dims.seq != seq;
  acts_.reset();
  acts_ = std::make_unique<DeviceActivations>(plan_, B, seq);
  acts_->bind(arena_storage_);
  if (new_seq) {
    const auto& c = plan_.cfg;
    rope_ = {};  // the old tables go before the new ones are made
    rope_ = rope_tables(ctx_, seq, c.rope_width(), c.rope_base, c.rope_train_seq_len);
  }
  ++generation_;
}

void DeviceModel::stage_batch(const int32_t* inputs, const int32_t* targets, int64_t B,
                              int64_t seq) {
  PGOLF_CHECK(B > 0 && seq > 0, "a batch needs at least one sequence of one token");
  const int64_t N = B * seq;
  check_token_ids(inputs, 0, N, plan_.cfg.vocab_size);
  check_token_ids(targets, 0, N, plan_.cfg.vocab_size);
  prepare(B, seq);
  backward_ready_ = false;  // the backward reads the batch's ids and targets
  staged_.synchronize();    // the previous batch has left the staging memory
  if (staging_.size() < 2 * N) staging_.resize(2 * N);
  std::copy(inputs, inputs + N, staging_.data());
  std::copy(targets, targets + N, staging_.data() + N);
  copy_async(ctx_, acts_->ids, staging_.data(), N, cudaMemcpyHostToDevice);
  copy_async(ctx_, acts_->targets, staging_.data() + N, N, cudaMemcpyHostToDevice);
  staged_.record(ctx_.stream());
}

void DeviceModel::zero_loss_total() { zero(ctx_, loss_total_.data(), 1); }

double DeviceModel::read_loss_total() const {
  double total = 0;
  loss_total_.download(std::span(&total, 1), ctx_.stream());
  return total;
}

double DeviceModel::forward(const int32_t* inputs, const int32_t* targets, int64_t B,
                            int64_t seq) {
  stage_batch(inputs, targets, B, seq);
  zero_loss_total();
  forward_staged();
  return read_loss_total();
}

std::vector<float> DeviceModel::token_losses() const {
  PGOLF_CHECK(acts_, "internal: token_losses() before forward()");
  std::vector<float> host(size_t(acts_->dims.N));
  copy_async(ctx_, host.data(), acts_->losses, acts_->dims.N, cudaMemcpyDeviceToHost);
  ctx_.synchronize();
  return host;
}

void DeviceModel::forward_staged() {
  PGOLF_CHECK(acts_, "internal: forward_staged() before stage_batch()");
  backward_ready_ = false;
  auto& A = *acts_;
  const auto& c = plan_.cfg;
  const auto& P = plan_;
  const int64_t N = A.dims.N, B = A.dims.B, seq = A.dims.seq, d = A.dims.d, kv = A.dims.kv;
  refresh_shadows();

  // Embedding, SPEC §2 steps 1–5: tok_emb[x] (+ bigram) → rms → SmearGate → x0.
  embedding_forward(ctx_, A.ids, W(P.tok_emb), A.tok, N, d);
  if (c.bigram_vocab_size > 0) {
    bigram_hash(ctx_, A.ids, A.bigram_idx, B, seq, c.bigram_vocab_size);
    embedding_forward(ctx_, A.bigram_idx, W(P.bigram_embed), A.be, N, c.bigram_dim);
    if (P.bigram_proj >= 0)
      linear_forward<bf16>(ctx_, A.be, S(P.bigram_proj), A.bp, N, c.bigram_dim, d);
    scaled_add_forward(ctx_, A.tok, A.bp, W(P.bigram_scale), A.hsum, N, d, 1);
  }
  rmsnorm_forward(ctx_, A.hsum, A.hn, A.emb_rstd, N, d, 1.0f);
  if (c.smear_gate) smear_forward(ctx_, A.hn, W(P.smear_gate), A.xs[0], B, seq, d);

  // Value embeddings: the shared table and projection, once for every VE layer. A VE layer
  // adds ve_layer_scale ⊙ (ve_scale ⊙ ve_base): the CPU's coefficient is the fp32 product
  // of the two scalars; here ve_scale ⊙ ve_base is rounded to bf16 once more on the way.
  if (c.ve_enabled) {
    embedding_forward(ctx_, A.ids, W(P.ve_embed), A.ve_emb, N, c.ve_dim);
    if (P.ve_proj >= 0)
      linear_forward<bf16>(ctx_, A.ve_emb, S(P.ve_proj), A.ve_base, N, c.ve_dim, kv);
    zero(ctx_, A.ve_scaled, N * kv);
    scaled_add_forward(ctx_, A.ve_scaled, A.ve_base, W(P.ve_scale), A.ve_scaled, N, kv, 1);
  }
  // Residual-stream value embeddings (#784): each table's rows, mixed in per layer.
  for (size_t j = 0; j < P.value_embeds.size(); ++j)
    embedding_forward(ctx_, A.ids, W(P.value_embeds[j]), A.rve[j], N, d);

  for (int64_t v : stage_.active) block_forward(v);
  head_forward();
  add_mean_loss(ctx_, A.losses, N, loss_total_.data());
  backward_ready_ = true;
}

// Virtual layer v: the CPU's block_forward, op for op.
void DeviceModel::block_forward(int64_t v) {
  auto& A = *acts_;
  const auto& c = plan_.cfg;
  const LayerWiring& w = stage_.wiring[size_t(v)];
  const LayerParams& lp = plan_.layers[size_t(v)];
  const BlockParams& bp = plan_.layer_mats[size_t(v)];
  DeviceLayerActs& la = A.layers[size_t(v)];
  const auto [N, B, seq, d, kv, H, Hkv, hd, r, mh, V] = A.dims;
  const float s = float(w.ln_scale);

  // The previous active layer's output, plus the pre-block additions.
  const bf16* x = A.xs[size_t(w.input_from + 1)];
  if (w.pre_add) {
    pre_add_forward(v, x);
    x = la.x_pre;
  }
  // x_in = resid_mix[0] x + resid_mix[1] x0;  a = rms(x_in) s.
  resid_mix_forward(ctx_, x, A.xs[0], W(lp.resid_mix), la.x_in, N, d);
  rmsnorm_forward(ctx_, la.x_in, la.a, la.rstd1, N, d, s);
  linear_forward<bf16>(ctx_, la.a, S(bp.c_q), la.q_raw, N, d, d);
  linear_forward<bf16>(ctx_, la.a, S(bp.c_k), la.k_raw, N, d, kv);
  linear_forward<bf16>(ctx_, la.a, S(bp.c_v), la.u_raw, N, d, kv);
  if (w.ve_slot >= 0)
    scaled_add_forward(ctx_, la.u_raw, A.ve_scaled, W(plan_.ve_layer_scales[size_t(w.ve_slot)]),
                       la.u_raw, N, kv, 1);
  // Value residual: u = λ0 u0 + λ1 u, u0 = raw_u of virtual layer 0.
  if (w.value_residual)
    mix2_forward(ctx_, A.layers[0].u_raw, la.u_raw, W(lp.vr_lambda), la.u, N * kv);
  // q, k: per-head rms, partial RoPE; q *= q_gain.
  rmsnorm_forward(ctx_, la.q_raw, la.qn, la.q_rstd, N * H, hd, 1.0f);
  rope_forward(ctx_, la.qn, la.qn, rope_.cos.data(), rope_.sin.data(), B, seq, H, hd, r);
  head_scale_forward(ctx_, la.qn, W(lp.q_gain), la.q, N, H, hd);
  rmsnorm_forward(ctx_, la.k_raw, la.k, la.k_rstd, N * Hkv, hd, 1.0f);
  rope_forward(ctx_, la.k, la.k, rope_.cos.data(), rope_.sin.data(), B, seq, Hkv, hd, r);

  attention_forward(ctx_, la.q, la.k, la.u, la.y_att, la.lse, B, seq, H, Hkv, hd);
  const bf16* y = la.y_att;
  if (w.xsa) {
    xsa_forward(ctx_, y, la.u, la.y_xsa, N, H, Hkv, hd);
    y = la.y_xsa;
  }
  if (c.gated_attention) {
    linear_forward<bf16>(ctx_, la.a, S(lp.gate_weight), la.g_logit, N, d, H);
    bias_add_forward(ctx_, la.g_logit, W(lp.gate_bias), N, H);
    head_gate_forward(ctx_, y, la.g_logit, la.y_gate, N, H, hd);
    y = la.y_gate;
  }
  // x = x_in + attn_scale ⊙ (y Wo^T);  x += mlp_scale ⊙ (leaky_relu(rms(x) s Wup^T)² Wdown^T).
  linear_forward<bf16>(ctx_, y, S(bp.attn_proj), la.o, N, d, d);
  scaled_add_forward(ctx_, la.x_in, la.o, W(lp.attn_scale), la.x_mid, N, d, d);
  rmsnorm_forward(ctx_, la.x_mid, la.m, la.rstd2, N, d, s);
  linear_forward<bf16>(ctx_, la.m, S(bp.mlp_fc), la.hpre, N, d, mh);
  leaky_relu_sq_forward(ctx_, la.hpre, la.act, N * mh, float(c.negative_slope));
  linear_forward<bf16>(ctx_, la.act, S(bp.mlp_proj), la.mo, N, mh, d);
  scaled_add_forward(ctx_, la.x_mid, la.mo, W(lp.mlp_scale), A.xs[size_t(v + 1)], N, d, d);
}

// x_pre = in (+ skip_weights[i] ⊙ popped encoder output) (+ loop_embed[v])
//   (+ Σ_j value_scales[v, j] ⊙ value_embeds_j[ids]) (+ cross_repeat_scales[row] ⊙ out(prev)),
// in that order (docs/recurrence.md), as the CPU's pre_add_forward.
void DeviceModel::pre_add_forward(int64_t v, const bf16* in) {
  auto& A = *acts_;
  const LayerWiring& w = stage_.wiring[size_t(v)];
  const int64_t N = A.dims.N, d = A.dims.d, J = int64_t(plan_.value_embeds.size());
  bf16* x = A.layers[size_t(v)].x_pre;
  if (w.skip_in >= 0) {
    scaled_add_forward(ctx_, in, A.xs[size_t(w.skip_from + 1)],
                       W(plan_.skip_weights) + w.skip_in * d, x, N, d, d);
  } else {
    copy_async(ctx_, x, in, N * d, cudaMemcpyDeviceToDevice);
  }
  if (plan_.loop_embed >= 0) bias_add_forward(ctx_, x, W(plan_.loop_embed) + v * d, N, d);
  for (int64_t j = 0; j < J; ++j)
    scaled_add_forward(ctx_, x, A.rve[size_t(j)], W(plan_.value_scales) + (v * J + j) * d, x, N,
                       d, d);
  if (w.cross_from >= 0)
    scaled_add_forward(ctx_, x, A.xs[size_t(w.cross_from + 1)],
                       W(plan_.cross_repeat_scales) + w.cross_row * d, x, N, d, d);
}

// The stream leaving the last active layer: the head's input.
const bf16* DeviceModel::final_stream() const {
  return acts_->xs[size_t(stage_.active.back() + 1)];
}

// Head: rms → logits (tied or untied; bf16 as the reference's autocast head gives them) →
// softcap → cross-entropy in fp32, on every row.
void DeviceModel::head_forward() {
  auto& A = *acts_;
  const int64_t N = A.dims.N, d = A.dims.d, V = A.dims.V;
  rmsnorm_forward(ctx_, final_stream(), A.zf, A.final_rstd, N, d, 1.0f);
  const int head = plan_.lm_head >= 0 ? plan_.lm_head : plan_.tok_emb;
  linear_forward<bf16>(ctx_, A.zf, S(head), A.logits, N, d, V);
  softcap_ce_forward<bf16>(ctx_, A.logits, A.targets, A.losses, N, V,
                           float(plan_.cfg.logit_softcap));
}

// The backward of SPEC §2, Model<float>::backward in reverse op order: the head, every
// active layer from the last, then the embedding. Parameter gradients accumulate in fp32
// (GEMMs: fp32 dW += dy^T x from bf16 operands; vectors: the kernels' deterministic column
// sums; tables: fp32 scatter-adds), activation gradients are bf16 scratch.
void DeviceModel::backward(double loss_scale) {
  PGOLF_CHECK(backward_ready_, "internal: backward() without a forward() before it");
  auto& A = *acts_;
  const auto& c = plan_.cfg;
  const auto& P = plan_;
  const auto [N, B, seq, d, kv, H, Hkv, hd, r, mh, V] = A.dims;

  // Head: ∂(loss_scale · mean loss)/∂loss_i = loss_scale / N (one float, as the CPU's) →
  // softcap cross-entropy → logits = zf W^T → zf = rms(final stream).
  fill(ctx_, A.dloss, float(loss_scale / double(N)), N);
  softcap_ce_backward<bf16>(ctx_, A.logits, A.targets, A.dloss, A.dlogits, N, V,
                            float(c.logit_softcap), /*accumulate=*/false);
  const int head = P.lm_head >= 0 ? P.lm_head : P.tok_emb;
  zero(ctx_, A.dzf, N * d);
  linear_backward(ctx_, A.dlogits, A.zf, S(head), A.dzf, G(head), N, d, V);
  bf16* dcur = A.dcur;
  bf16* dnext = A.dnext;
  zero(ctx_, dcur, N * d);
  rmsnorm_backward(ctx_, A.dzf, final_stream(), A.final_rstd, dcur, N, d, 1.0f);

  // Gradients that several layers add to, collected over the whole trunk.
  zero(ctx_, A.dx0, N * d);
  if (A.du0) zero(ctx_, A.du0, N * kv);
  if (A.dve_scaled) zero(ctx_, A.dve_scaled, N * kv);
  for (bf16* p : A.dskip) zero(ctx_, p, N * d);
  for (bf16* p : A.dcross)
    if (p) zero(ctx_, p, N * d);
  for (bf16* p : A.drve) zero(ctx_, p, N * d);
  for (auto v = stage_.active.rbegin(); v != stage_.active.rend(); ++v) block_backward(*v, dcur, dnext);
  for (size_t j = 0; j < P.value_embeds.size(); ++j)
    embedding_backward(ctx_, A.ids, A.drve[j], G(P.value_embeds[j]), N, d);

  // x0 feeds layer 0's stream and every resid_mix; x0 = smear(rms(tok (+ bigram))).
  add_into(ctx_, A.dx0, dcur, N * d);
  const bf16* dhn = dcur;
  if (c.smear_gate) {
    zero(ctx_, A.dhn, N * d);
    smear_backward(ctx_, dcur, A.hn, W(P.smear_gate), A.dhn, G(P.smear_gate), B, seq, d);
    dhn = A.dhn;
  }
  zero(ctx_, A.dhsum, N * d);
  rmsnorm_backward(ctx_, dhn, A.hsum, A.emb_rstd, A.dhsum, N, d, 1.0f);
  embedding_backward(ctx_, A.ids, A.dhsum, G(P.tok_emb), N, d);
  // hsum = tok + bigram_scale · bp, bp = be W^T (or be itself without the projection).
  if (c.bigram_vocab_size > 0) {
    zero(ctx_, A.dbp, N * (P.bigram_proj >= 0 ? d : c.bigram_dim));
    scaled_add_backward(ctx_, A.dhsum, A.bp, W(P.bigram_scale), nullptr, A.dbp,
                        G(P.bigram_scale), N, d, 1);
    if (P.bigram_proj >= 0) {
      zero(ctx_, A.dbe, N * c.bigram_dim);
      linear_backward(ctx_, A.dbp, A.be, S(P.bigram_proj), A.dbe, G(P.bigram_proj), N,
                      c.bigram_dim, d);
    }
    embedding_backward(ctx_, A.bigram_idx, A.dbe, G(P.bigram_embed), N, c.bigram_dim);
  }
  // ve_scaled = ve_scale · ve_base (the forward's form of the CPU's coefficient product):
  // dve_scaled holds Σ over VE layers of ve_layer_scale ∂/∂u_raw, so this gives ve_scale
  // its gradient Σ_l ve_layer_scale_l (du_raw_l · ve_base), as the CPU's dot products.
  if (c.ve_enabled) {
    zero(ctx_, A.dve_base, N * kv);
    scaled_add_backward(ctx_, A.dve_scaled, A.ve_base, W(P.ve_scale), nullptr, A.dve_base,
                        G(P.ve_scale), N, kv, 1);
    const bf16* dve = A.dve_base;
    if (P.ve_proj >= 0) {
      zero(ctx_, A.dve_emb, N * c.ve_dim);
      linear_backward(ctx_, A.dve_base, A.ve_emb, S(P.ve_proj), A.dve_emb, G(P.ve_proj), N,
                      c.ve_dim, kv);
      dve = A.dve_emb;
    }
    embedding_backward(ctx_, A.ids, dve, G(P.ve_embed), N, c.ve_dim);
  }
}

// On entry dcur = ∂loss/∂xs[v+1]; on exit dcur = ∂loss/∂xs[v] (the stream part; the x0
// part of resid_mix accumulates in A.dx0). dnext is scratch of the same size.
void DeviceModel::block_backward(int64_t v, bf16*& dcur, bf16*& dnext) {
  auto& A = *acts_;
  const auto& c = plan_.cfg;
  const LayerWiring& w = stage_.wiring[size_t(v)];
  const LayerParams& lp = plan_.layers[size_t(v)];
  const BlockParams& bp = plan_.layer_mats[size_t(v)];
  const DeviceLayerActs& la = A.layers[size_t(v)];
  const auto [N, B, seq, d, kv, H, Hkv, hd, r, mh, V] = A.dims;
  const float s = float(w.ln_scale);
  const float* cos = rope_.cos.data();
  const float* sin = rope_.sin.data();

  // An encoder layer's output also went through a U-Net skip, and a repeated block's
  // output into its next use's cross-repeat addition.
  if (w.skip_out >= 0) add_into(ctx_, A.dskip[size_t(w.skip_out)], dcur, N * d);
  if (w.feeds_cross && A.dcross[size_t(v)]) add_into(ctx_, A.dcross[size_t(v)], dcur, N * d);

  // MLP: xs[v+1] = x_mid + mlp_scale ⊙ mo, mo = act Wdown^T, act = leaky_relu(hpre)²,
  // hpre = m Wup^T, m = rms(x_mid) s.
  copy_async(ctx_, A.dmid, dcur, N * d, cudaMemcpyDeviceToDevice);
  zero(ctx_, A.dmo, N * d);
  scaled_add_backward(ctx_, dcur, la.mo, W(lp.mlp_scale), nullptr, A.dmo, G(lp.mlp_scale), N, d,
                      d);
  zero(ctx_, A.dact, N * mh);
  linear_backward(ctx_, A.dmo, la.act, S(bp.mlp_proj), A.dact, G(bp.mlp_proj), N, mh, d);
  zero(ctx_, A.dhpre, N * mh);
  leaky_relu_sq_backward(ctx_, A.dact, la.hpre, A.dhpre, N * mh, float(c.negative_slope));
  zero(ctx_, A.dm, N * d);
  linear_backward(ctx_, A.dhpre, la.m, S(bp.mlp_fc), A.dm, G(bp.mlp_fc), N, d, mh);
  rmsnorm_backward(ctx_, A.dm, la.x_mid, la.rstd2, A.dmid, N, d, s);

  // Attention: x_mid = x_in + attn_scale ⊙ (y Wo^T), y = gate(xsa(attention(q, k, u))).
  copy_async(ctx_, A.dxin, A.dmid, N * d, cudaMemcpyDeviceToDevice);
  zero(ctx_, A.do_, N * d);
  scaled_add_backward(ctx_, A.dmid, la.o, W(lp.attn_scale), nullptr, A.do_, G(lp.attn_scale), N,
                      d, d);
  const bf16* y_pre_gate = w.xsa ? la.y_xsa : la.y_att;
  const bf16* y_final = c.gated_attention ? la.y_gate : y_pre_gate;
  zero(ctx_, A.dyf, N * d);
  linear_backward(ctx_, A.do_, y_final, S(bp.attn_proj), A.dyf, G(bp.attn_proj), N, d, d);
  zero(ctx_, A.da, N * d);
  bf16* dy = A.dyf;
  if (c.gated_attention) {
    zero(ctx_, A.dy_x, N * d);
    zero(ctx_, A.dglogit, N * H);
    head_gate_backward(ctx_, dy, y_pre_gate, la.g_logit, A.dy_x, A.dglogit, N, H, hd);
    linear_backward(ctx_, A.dglogit, la.a, S(lp.gate_weight), A.da, G(lp.gate_weight), N, d, H);
    bias_add_backward(ctx_, A.dglogit, G(lp.gate_bias), N, H);
    dy = A.dy_x;
  }
  zero(ctx_, A.du, N * kv);
  if (w.xsa) {
    zero(ctx_, A.dy_att, N * d);
    xsa_backward(ctx_, dy, la.y_att, la.u, A.dy_att, A.du, N, H, Hkv, hd);
    dy = A.dy_att;
  }
  zero(ctx_, A.dq, N * d);
  zero(ctx_, A.dk, N * kv);
  attention_backward(ctx_, dy, la.q, la.k, la.u, la.y_att, la.lse, A.dq, A.dk, A.du, B, seq, H,
                     Hkv, hd);

  // q: gain ← RoPE ← per-head rms ← a Wq^T;  k: RoPE ← rms ← a Wk^T.
  zero(ctx_, A.dqn, N * d);
  head_scale_backward(ctx_, A.dq, la.qn, W(lp.q_gain), A.dqn, G(lp.q_gain), N, H, hd);
  zero(ctx_, A.dq_norm, N * d);
  rope_backward(ctx_, A.dqn, A.dq_norm, cos, sin, B, seq, H, hd, r);
  zero(ctx_, A.dq_raw, N * d);
  rmsnorm_backward(ctx_, A.dq_norm, la.q_raw, la.q_rstd, A.dq_raw, N * H, hd, 1.0f);
  zero(ctx_, A.dk_norm, N * kv);
  rope_backward(ctx_, A.dk, A.dk_norm, cos, sin, B, seq, Hkv, hd, r);
  zero(ctx_, A.dk_raw, N * kv);
  rmsnorm_backward(ctx_, A.dk_norm, la.k_raw, la.k_rstd, A.dk_raw, N * Hkv, hd, 1.0f);

  // v: value residual u = λ0 u0 + λ1 u_raw, then VE, then a Wv^T. Layer 0 runs last and
  // collects every later layer's ∂/∂u0.
  bf16* du_raw = A.du;
  if (w.value_residual) {
    zero(ctx_, A.du_raw, N * kv);
    mix2_backward(ctx_, A.du, A.layers[0].u_raw, la.u_raw, W(lp.vr_lambda), A.du0, A.du_raw,
                  G(lp.vr_lambda), N * kv);
    du_raw = A.du_raw;
  }
  if (v == 0 && c.value_residual) add_into(ctx_, A.du0, du_raw, N * kv);
  // u_raw += ve_layer_scale · ve_scaled: the layer scale's gradient here, ve_scaled's
  // gradient into dve_scaled (ve_scale's part after the last layer, in backward()).
  if (w.ve_slot >= 0) {
    const int ls = plan_.ve_layer_scales[size_t(w.ve_slot)];
    scaled_add_backward(ctx_, du_raw, A.ve_scaled, W(ls), nullptr, A.dve_scaled, G(ls), N, kv, 1);
  }
  linear_backward(ctx_, A.dq_raw, la.a, S(bp.c_q), A.da, G(bp.c_q), N, d, d);
  linear_backward(ctx_, A.dk_raw, la.a, S(bp.c_k), A.da, G(bp.c_k), N, d, kv);
  linear_backward(ctx_, du_raw, la.a, S(bp.c_v), A.da, G(bp.c_v), N, d, kv);
  rmsnorm_backward(ctx_, A.da, la.x_in, la.rstd1, A.dxin, N, d, s);

  // x_in = resid_mix[0] x + resid_mix[1] x0, and the additions that formed x.
  const bf16* x = w.pre_add ? la.x_pre : A.xs[size_t(w.input_from + 1)];
  zero(ctx_, dnext, N * d);
  resid_mix_backward(ctx_, A.dxin, x, A.xs[0], W(lp.resid_mix), dnext, A.dx0, G(lp.resid_mix), N,
                     d);
  if (w.pre_add) pre_add_backward(v, dnext);
  std::swap(dcur, dnext);
}

// dx = ∂loss/∂x_pre, which is also ∂loss/∂in (every addition is additive); routes it to
// the added tensors and their scales, as the CPU's pre_add_backward.
void DeviceModel::pre_add_backward(int64_t v, const bf16* dx) {
  auto& A = *acts_;
  const LayerWiring& w = stage_.wiring[size_t(v)];
  const int64_t N = A.dims.N, d = A.dims.d, J = int64_t(plan_.value_embeds.size());
  if (w.skip_in >= 0)
    scaled_add_backward(ctx_, dx, A.xs[size_t(w.skip_from + 1)],
                        W(plan_.skip_weights) + w.skip_in * d, nullptr,
                        A.dskip[size_t(w.skip_in)], G(plan_.skip_weights) + w.skip_in * d, N, d,
                        d);
  if (plan_.loop_embed >= 0) bias_add_backward(ctx_, dx, G(plan_.loop_embed) + v * d, N, d);
  for (int64_t j = 0; j < J; ++j)
    scaled_add_backward(ctx_, dx, A.rve[size_t(j)], W(plan_.value_scales) + (v * J + j) * d,
                        nullptr, A.drve[size_t(j)], G(plan_.value_scales) + (v * J + j) * d, N,
                        d, d);
  if (w.cross_from >= 0)
    scaled_add_backward(ctx_, dx, A.xs[size_t(w.cross_from + 1)],
                        W(plan_.cross_repeat_scales) + w.cross_row * d, nullptr,
                        A.dcross[size_t(w.cross_from)],
                        G(plan_.cross_repeat_scales) + w.cross_row * d, N, d, d);
}

}  // namespace pgolf::cuda
