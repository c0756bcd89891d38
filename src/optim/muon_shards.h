// Parallel Muon (issue 8; the record stack's distributed Muon, SEEDS §0): with several
// ranks, Newton–Schulz runs once per matrix in the whole job instead of once per rank.
// The matrices are dealt to ranks largest first, each to the rank with the least
// Newton–Schulz work so far; a step then
//   1. reduce-scatters the matrix gradients: each rank receives the sum over ranks of the
//      gradients of its own matrices (packed rank by rank, largest first),
//   2. runs Muon (momentum, Newton–Schulz, decay, update) on its own matrices only,
//   3. all-gathers the updated matrices, so every rank holds the same weights again.
// Each rank keeps the momentum of its own matrices only; gather_momentum() completes every
// rank's copy (for checkpoints, which hold all of it). A world of one owns every matrix.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "core/buffer.h"
#include "dist/comm.h"
#include "optim/muon.h"

namespace pgolf {

// The owner of each matrix: in order of decreasing cost (ties by index), each goes to the
// rank with the least cost so far (the lowest rank on ties).
std::vector<int> deal_largest_first(const std::vector<double>& cost, int ranks);

class MuonShards {
 public:
  MuonShards(Muon<float>& muon, const dist::Comm& comm);

  // Which matrices this rank updates (Muon::step's `only`).
  const std::vector<bool>& owned() const { return owned_; }

  // Step 1: starts summing the gradients across ranks; finish_gradients() waits and
  // returns the sums of this rank's own matrices, packed (the caller may scale them, e.g.
  // to clip); write_gradients() puts them where Muon reads them.
  void start_gradients();
  std::span<float> finish_gradients();
  void write_gradients();
  // Step 3: starts sending this rank's updated matrices to every rank; finish_weights()
  // waits and writes every matrix.
  void start_weights();
  void finish_weights();
  // Every rank gets every matrix's momentum from its owner (a collective).
  void gather_momentum();

 private:
  enum class Field { kGrad, kValue, kMomentum };
  float* field(size_t i, Field f);
  // Packs `f` of every matrix (rank by rank) or of this rank's own matrices into `to`.
  void pack_all(Field f, float* to);
  void pack_own(Field f, float* to);
  void unpack_own(Field f, const float* from);
  void unpack_all(Field f, const float* from);

  Muon<float>& muon_;
  const dist::Comm& comm_;
  std::vector<bool> owned_;
  std::vector<std::vector<size_t>> by_rank_;  // each rank's matrices, largest first
  std::vector<int64_t> counts_;              // elements per rank
  Buffer<float> all_, own_;                  // every matrix / this rank's, packed
  dist::Request pending_;
};

}  // namespace pgolf
