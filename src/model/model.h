// Model<T>: the network of SPEC §2 with a hand-written forward and backward (llm.c
// style: no autograd; the backward reads next to the forward). Parameters live in one
// ParamStore<T>; activations in an Arena<T> planned once per (batch, seq). Instantiated
// for float (the product) and double (whole-model gradient checks).
#pragma once
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <span>
#include <vector>

#include "core/buffer.h"
#include "core/param_store.h"
#include "model/plan.h"

namespace pgolf {

template <typename T>
struct Activations;
template <typename T>
struct LayerActs;

template <typename T>
class Model {
 public:
  explicit Model(ModelPlan plan);
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const ModelPlan& plan() const { return plan_; }
  const ModelConfig& config() const { return plan_.cfg; }
  ParamStore<T>& params() { return params_; }
  const ParamStore<T>& params() const { return params_; }

  // Depth stage (docs/recurrence.md "Switching depth"): only the virtual layers with
  // repeat index < k run (k >= num_repeats: all, the default); the U-Net is rebuilt over
  // them. Parameters of inactive layers get no gradient.
  void set_active_repeats(int64_t k);
  int64_t active_repeats() const { return stage_.repeats; }
  const std::vector<int64_t>& active_layers() const { return stage_.active; }
  const std::vector<LayerWiring>& wiring() const { return stage_.wiring; }

  // Mean cross-entropy of `targets` given `inputs`, both B sequences of seq_len tokens,
  // row-major [B, seq_len]. Token ids must be below vocab_size. Keeps what backward needs.
  double forward(const int32_t* inputs, const int32_t* targets, int64_t B, int64_t seq_len);

  // Accumulates loss_scale * d(mean loss of the last forward)/d(parameter) into
  // params().grads() (loss_scale = 1/micro-steps averages gradient accumulation).
  void backward(double loss_scale = 1.0);

  // Per-token losses of the last forward, [B * seq_len] (for bpb accounting).
  const T* token_losses() const;

  // forward() scoring only rows [first_row, seq_len) of each sequence: the whole network
  // runs (earlier rows are the scored rows' context), the head (final rms, logits, softcap
  // cross-entropy over V) only on the scored rows. Returns their losses packed as
  // [B, seq_len - first_row]. A sliding window (SPEC §4) scores only its last `stride`
  // targets, and the head is a large share of a small model's forward. Only the scored
  // rows' targets are read; backward() may not follow. `temperature` divides the capped
  // logits before the cross-entropy (scoring with a logit temperature; 1 = none).
  const T* forward_scored(const int32_t* inputs, const int32_t* targets, int64_t B,
                          int64_t seq_len, int64_t first_row, double temperature = 1.0);

  // Sees the input of block matrices during forward(): x [rows = B*seq_len, in_features],
  // row-major, valid only during the call, read by every matrix in `params` (layout
  // indices of one physical block). Called once per distinct input of each virtual layer,
  // in SPEC §2 order: {c_q, c_k, c_v} with a = rms(x_in)·s; {attn.proj} with y after XSA
  // and gating; {mlp.fc} with rms(x)·s; {mlp.proj} with leaky_relu(·)². For GPTQ
  // calibration (quant/calibration.h); an empty observer (the default) costs nothing.
  using LinearObserver = std::function<void(std::span<const int> params, const T* x,
                                            int64_t rows, int64_t in_features)>;
  void set_linear_observer(LinearObserver observer) { linear_observer_ = std::move(observer); }

  // Sees the residual stream around each virtual layer v during forward(), once per layer
  // in order: `in` = the stream entering v after its pre-block additions (U-Net skip, loop
  // embedding, residual VE, cross-repeat; before resid_mix), `out` = the stream leaving it;
  // both [rows = B*seq_len, d],
  // row-major, valid only during the call. For Block Influence (eval/influence.h); an
  // empty observer (the default) costs nothing.
  using LayerObserver = std::function<void(int64_t v, const T* in, const T* out, int64_t rows,
                                           int64_t d)>;
  void set_layer_observer(LayerObserver observer) { layer_observer_ = std::move(observer); }

 private:
  struct LayerRefs {
    const LayerWiring& w;
    const LayerParams& lp;
    const BlockParams& bp;
    LayerActs<T>& la;
  };
  LayerRefs layer(int64_t v);
  void prepare(int64_t B, int64_t seq_len);
  void trunk_forward(const int32_t* inputs, int64_t B, int64_t seq_len);
  void head_forward(const int32_t* targets, int64_t first_row, double temperature);
  void block_forward(int64_t v);
  void block_backward(int64_t v, T*& dcur, T*& dnext);
  void pre_add_forward(int64_t v, const T* in);
  void pre_add_backward(int64_t v, const T* dx);
  T* final_stream();
  void observe(std::initializer_list<int> params, const T* x, int64_t rows, int64_t cols) {
    if (linear_observer_) linear_observer_({params.begin(), params.size()}, x, rows, cols);
  }

  ModelPlan plan_;
  ParamStore<T> params_;
  DepthStage stage_;  // the current depth stage
  Buffer<T> arena_storage_;  // shared by every (batch, seq) shape this model has seen
  std::unique_ptr<Activations<T>> acts_;
  LinearObserver linear_observer_;
  LayerObserver layer_observer_;
  bool backward_ready_ = false;  // the last forward was a full forward()
};

extern template class Model<float>;
extern template class Model<double>;

}  // namespace pgolf
