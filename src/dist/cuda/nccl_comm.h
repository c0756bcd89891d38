// The GPU collectives of a data-parallel job (issue 8, docs/distributed.md): one GPU per
// rank, chosen by the rank's place on its machine (Comm::local_rank), and an NCCL
// communicator over all ranks, bootstrapped over MPI (rank 0's ncclUniqueId is broadcast
// with Comm::broadcast). Collectives are queued on the caller's stream, like kernels;
// wait() waits for that stream under the collectives' watchdog (dist/comm.h), so a rank
// that died or hung ends the job instead of leaving this one waiting on the GPU forever.
// Built with the CUDA backend when NCCL is found (cmake/Nccl.cmake: PGOLF_HAVE_NCCL).
#pragma once
#include <cuda_runtime_api.h>
#include <nccl.h>

#include <cstdint>

#include "dist/comm.h"

namespace pgolf::dist {

class NcclComm {
 public:
  // Selects this rank's GPU (local_rank mod the devices this process sees) and joins the
  // communicator; every rank of `host` must construct one (a collective).
  explicit NcclComm(const Comm& host);
  ~NcclComm();
  NcclComm(const NcclComm&) = delete;
  NcclComm& operator=(const NcclComm&) = delete;

  int device() const { return device_; }

  // x = Σ over ranks of x (n elements), queued on `stream`.
  void all_reduce_sum(float* x, int64_t n, cudaStream_t stream);
  // NCCL's reduce-scatter takes equal pieces: `send` holds size() pieces of `piece`
  // elements; `recv` gets the sum over ranks of piece rank(). (Parallel Muon pads each
  // rank's shard to the largest one.)
  void reduce_scatter_sum(const float* send, float* recv, int64_t piece, cudaStream_t stream);
  // `all` (size() × piece elements) gets every rank's `mine`, in rank order.
  void all_gather(const float* mine, float* all, int64_t piece, cudaStream_t stream);

  // Waits for `stream` (the collectives queued on it) under the watchdog; an NCCL error
  // reported asynchronously becomes a pgolf::Error.
  void wait(cudaStream_t stream, const char* what);

 private:
  const Comm& host_;
  int device_ = 0;
  ncclComm_t comm_ = nullptr;
};

}  // namespace pgolf::dist
