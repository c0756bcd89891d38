// #490's magnitude pruning before quantisation (SEEDS.md §4 "Quantisation": "2% magnitude
// pruning (global quantile of |w|, per tensor) on 2D tensors with more than 65,536
// elements, done before quantising"). The reference, per tensor:
//     thresh = torch.quantile(v.abs().float(), prune_pct)
//     v[v.abs() < thresh] = 0.0
// so the zeros round to q = 0 and cost zstd almost nothing. quantize_model applies it
// (QuantOptions::prune_fraction) to every tensor it quantises as a matrix (int-N block
// matrices, int8 embeddings) that is_prunable accepts, on a copy: the model is untouched.
#pragma once
#include <cstdint>

#include "core/shape.h"

namespace pgolf::quant {

// The reference's size rule: only matrices of more than this many elements are pruned.
inline constexpr int64_t kPruneMinElements = 65536;

// Whether a tensor of this shape is pruned: rank 2 and more than kPruneMinElements elements.
bool is_prunable(const Shape& shape);

// torch.quantile(|w|, fraction) over all n values (quant/quantize.h's quantile_sorted, but
// by selection, not a full sort). n > 0, 0 <= fraction <= 1.
float magnitude_threshold(const float* w, int64_t n, double fraction);

// Sets to 0 every w[i] with |w[i]| < magnitude_threshold(w, n, fraction); returns how many
// nonzero values it zeroed. fraction 0 changes nothing; a pgolf::Error unless
// 0 <= fraction < 1.
int64_t prune_by_magnitude(float* w, int64_t n, double fraction);

}  // namespace pgolf::quant
