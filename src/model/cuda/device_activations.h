// DeviceActivations: what the GPU forward of SPEC §2 keeps for the backward, and the
// backward's scratch, the twin of model/activations.h in the CUDA backend's precision (SPEC
// mixed precision): bf16 activations and activation gradients, fp32 norms' rstd, attention
// lse, per-token losses and their gradient, int32 token ids. Every buffer is a slot of ONE
// device allocation, planned on the host once per (batch, seq) (no device call: bytes() is
// known before anything is allocated) and then bound to a storage buffer that only grows.
// Optional buffers exist only when their feature is on. Binding is the only allocation: the
// forward and backward then run on fixed addresses, as a CUDA graph needs.
// (The RoPE tables, a function of seq alone, belong to DeviceModel.)
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "core/cuda/runtime.h"
#include "model/activations.h"
#include "model/plan.h"

namespace pgolf::cuda {

// Typed slots carved from one device allocation. Slots start 256 bytes apart at least
// (cudaMalloc's alignment), so every tensor meets the attention kernels' 16-byte vector
// loads and cuBLASLt's widest alignment.
class DeviceArena {
 public:
  static constexpr int64_t kAlign = 256;

  // `ptr` is set to a slot of n T when the arena is bound; ptr must outlive bind().
  template <typename T>
  void want(T*& ptr, int64_t n) {
    const int64_t offset = used_;
    used_ += (n * int64_t(sizeof(T)) + kAlign - 1) / kAlign * kAlign;
    binders_.push_back([&ptr, offset](unsigned char* base) {
      ptr = reinterpret_cast<T*>(base + offset);
    });
  }
  int64_t bytes() const { return used_; }
  // Grows `storage` to bytes() if needed (freeing the old block first, so peak memory stays
  // at one arena) and points every slot into it.
  void bind(DeviceBuffer<unsigned char>& storage);

 private:
  int64_t used_ = 0;
  std::vector<std::function<void(unsigned char*)>> binders_;
};

// Virtual layer v's activations (names as LayerActs in model/activations.h).
struct DeviceLayerActs {
  bf16* x_pre = nullptr;  // after the pre-block additions (docs/recurrence.md)
  bf16 *x_in, *a;         // resid-mixed input, a = rms(x_in) s
  float* rstd1;
  bf16 *q_raw, *qn, *q;   // a Wq^T, per-head rms + RoPE, times q_gain
  float* q_rstd;
  bf16 *k_raw, *k;        // a Wk^T, per-head rms + RoPE
  float* k_rstd;
  bf16* u_raw;            // a Wv^T (+ VE)
  bf16* u = nullptr;      // after the value residual (u_raw when off)
  bf16* y_att;            // attention output
  float* lse;             // its row log-sum-exp [B, H, seq]
  bf16* y_xsa = nullptr;
  bf16 *g_logit = nullptr, *y_gate = nullptr;  // gated attention
  bf16 *o, *x_mid, *m, *hpre, *act, *mo;
  float* rstd2;
};

struct DeviceActivations {
  Dims dims;
  int32_t *ids, *targets, *bigram_idx = nullptr;
  bf16 *tok, *hsum = nullptr, *hn = nullptr;  // embedding (+ bigram), its norm
  float* emb_rstd;
  bf16 *be = nullptr, *bp = nullptr;  // bigram embedding / projection
  // Value embeddings: the shared table's rows, their projection, and ve_scale ⊙ that.
  bf16 *ve_emb = nullptr, *ve_base = nullptr, *ve_scaled = nullptr;
  std::vector<bf16*> rve;  // residual value-embedding rows per table
  std::vector<bf16*> xs;   // xs[0] = x0, xs[v+1] = virtual layer v's output
  std::vector<DeviceLayerActs> layers;
  bf16 *zf, *logits;  // head: final norm, logits [N, V] (bf16, as the reference's autocast)
  float *final_rstd, *losses;

  // Backward scratch, reused by every layer (names as Activations<T>'s); dloss in fp32, every
  // other gradient bf16. dve_scaled is the gradient of ve_scale ⊙ ve_base, the tensor the
  // GPU forward adds to each VE layer's values.
  float* dloss;
  bf16 *dlogits, *dzf, *dcur, *dnext, *dx0;
  bf16 *dmid, *dxin, *dmo, *dact, *dhpre, *dm, *do_, *dyf, *dy_x = nullptr, *dglogit = nullptr;
  bf16 *dy_att = nullptr, *da, *dq, *dqn, *dq_norm, *dq_raw, *dk, *dk_norm, *dk_raw, *du;
  bf16 *du_raw = nullptr, *du0 = nullptr;
  bf16 *dve_scaled = nullptr, *dve_base = nullptr, *dve_emb = nullptr;
  bf16 *dhn, *dhsum, *dbp = nullptr, *dbe = nullptr;
  std::vector<bf16*> drve;    // per residual VE table: gradient of its rows
  std::vector<bf16*> dskip;   // per U-Net skip: gradient of its encoder output
  std::vector<bf16*> dcross;  // per layer feeding a cross-repeat: gradient of its output there

  // Plans every slot for (B, seq); host only.
  DeviceActivations(const ModelPlan& plan, int64_t B, int64_t seq);
  DeviceActivations(const DeviceActivations&) = delete;  // the arena points at the members
  DeviceActivations& operator=(const DeviceActivations&) = delete;

  int64_t bytes() const { return arena_.bytes(); }
  void bind(DeviceBuffer<unsigned char>& storage);

 private:
  DeviceArena arena_;
};

}  // namespace pgolf::cuda
