// Muon (SPEC §3; SEEDS §0): the optimizer of every 2-D block matrix. Per matrix, in the
// reference's order:
//   buf = momentum * buf + g                       (buf.mul_(momentum).add_(g))
//   g'  = g + momentum * buf                       (nesterov)
//   u   = NS5(g', backend_steps) * max(1, rows/cols)^0.5
//   p  *= 1 - lr * weight_decay                    (only when weight_decay > 0)
//   p  -= lr * u
// The reference keeps u in bf16 (its all-reduce buffer); pgolf keeps it in T. Momentum
// warm-up and the LR schedule are the caller's: step() takes this step's values.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "core/buffer.h"
#include "optim/param_ref.h"

namespace pgolf {

// The work of one Newton–Schulz iteration on a rows x cols matrix (GEMM flops, halved):
// what the matrices are ordered and dealt to ranks by.
inline double newton_schulz_cost(int64_t rows, int64_t cols) {
  const double m = double(rows < cols ? rows : cols), n = double(rows < cols ? cols : rows);
  return m * m * (2 * n + m);
}

// Indices of `cost` by decreasing value, ties in index order.
std::vector<size_t> largest_first(const std::vector<double>& cost);

template <typename T>
class Muon {
 public:
  // The matrices this optimizer updates; their value/grad pointers must outlive it.
  explicit Muon(std::vector<ParamRef<T>> params);

  // One update of every matrix from its current gradient, or of matrix i only where
  // only[i] is set (a rank's shard in parallel Muon, optim/muon_shards.h; the other
  // matrices and their momentum stay as they are). Matrices run in parallel, one per OpenMP
  // thread, each with single-threaded BLAS: the result is bitwise the same for any thread
  // count.
  void step(double lr, double momentum, double weight_decay, int backend_steps,
            const std::vector<bool>& only = {});

  // The momentum buffers of all matrices in one buffer (matrix i at offset(i), numel
  // elements, zero padding between), for checkpoints: save and restore it to resume
  // bitwise. Muon has no other state.
  std::span<T> state() { return momentum_.span(); }
  T* momentum(size_t i) { return momentum_.data() + offsets_[i]; }
  std::span<const T> state() const { return momentum_.span(); }
  int64_t offset(size_t i) const { return offsets_[i]; }
  const std::vector<ParamRef<T>>& params() const { return params_; }

 private:
  std::vector<ParamRef<T>> params_;
  std::vector<int64_t> offsets_;
  std::vector<size_t> order_;   // matrices by decreasing cost, for load balance
  Buffer<T> momentum_;
  int64_t workspace_size_ = 0;  // per thread: g', u and the Newton–Schulz workspace
  std::vector<Buffer<T>> workspaces_;
};

}  // namespace pgolf
