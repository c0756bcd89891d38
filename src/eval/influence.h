// Block Influence (ShortGPT, Men et al. 2024) per virtual layer, and a tying proposal built
// from it (SPEC §6 `pgolf influence`). For each token t and virtual layer v:
//   cos_t = <in_t, out_t> / (|in_t| |out_t|),
//   BI_v = 1 − mean_t cos_t,   angular_v = mean_t arccos(clamp(cos_t, −1, 1)) / π,
// where in = the stream entering v after its pre-block additions (U-Net skip, loop
// embedding, residual VE, cross-repeat; docs/recurrence.md) and before resid_mix, and
// out = the stream leaving v (Model::set_layer_observer). Taking `in` after the additions
// means they are not counted as the layer's own change, while resid_mix's
// blend with x0 is (it is a per-layer parameter of v). A layer that leaves its stream
// unchanged has BI 0; one that reverses it has BI 2 (angular 1). BI near 0 marks a layer
// whose block could be shared with its neighbours at little cost.
#pragma once
#include <cstdint>
#include <vector>

#include "model/model.h"

namespace pgolf {

// Running sums of one layer's per-token cosines (double, whatever the model's type).
struct CosineSums {
  double cos = 0;    // Σ_t cos_t
  double angle = 0;  // Σ_t arccos(clamp(cos_t)) / π
  int64_t tokens = 0;
  double bi() const { return tokens ? 1.0 - cos / double(tokens) : 0.0; }
  double angular() const { return tokens ? angle / double(tokens) : 0.0; }
};

// Adds the cosines of `rows` token pairs (in_t, out_t), each of width d. A zero vector has
// no direction: cos = 1 when both are zero (nothing changed), else 0.
template <typename T>
void accumulate_cosines(const T* in, const T* out, int64_t rows, int64_t d, CosineSums& sums);

struct LayerInfluence {
  int64_t virtual_layer = 0, physical = 0;
  double bi = 0, angular = 0;
};

// Runs `model` over tokens[0, windows*seq_len + 1) as consecutive windows of seq_len
// (x = window, y = it shifted by one), `batch` windows per forward, and returns each
// virtual layer's influence. Leaves the model's layer observer empty afterwards.
template <typename T>
std::vector<LayerInfluence> measure_influence(Model<T>& model, const std::vector<int32_t>& tokens,
                                              int64_t seq_len, int64_t batch);

// A tying of k contiguous virtual layers into one block.
struct TyingProposal {
  int64_t first = 0, k = 0;             // the run: virtual layers [first, first + k)
  double bi_sum = 0;                    // Σ BI over the run
  std::vector<int64_t> layer_schedule;  // the proposed physical block per virtual layer
  int64_t num_layers = 0;               // distinct blocks in it (for make_plan)
};

// Among the runs [i, i + k) of virtual layers, picks the one with the lowest Σ BI (ties:
// the earliest). The proposed schedule maps every layer of the run to `schedule[first]`
// (the block of the run's first layer) and leaves every other layer on its own block
// `schedule[v]`; then renumbers the blocks densely in order of first use (the first
// virtual layer gets 0, the next unseen block 1, ...), so it is a valid layer_schedule with
// num_layers = the number of distinct blocks. `schedule` is the current physical block per
// virtual layer (same length as `bi`); k must lie in 1..bi.size().
TyingProposal propose_tying(const std::vector<double>& bi, const std::vector<int64_t>& schedule,
                            int64_t k);

}  // namespace pgolf
