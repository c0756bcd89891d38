// Post-training quantisation with the reference's semantics (SEEDS.md §0/§1 "Quantisation
// and export": mixed_quantize_int6, quantize_int6_per_row, quantize_float_tensor).
// Each tensor takes the first rule that applies, in the reference's order:
//   1. at most 65,536 elements (passthrough_max_elements): fp16;
//   2. a control tensor (scales, mixes, gains, gates, lambdas, loop_embed, value_scales,
//      cross_repeat_scales): fp32;
//   3. a block matrix (c_q, c_k, c_v, attn.proj, mlp.fc, mlp.proj of every plan.blocks
//      entry, a repeat's untied repeats.{v}.* ones included): GPTQ-lite int-N per
//      row, the clip chosen among row quantiles {0.999, 0.9995, 0.9999, 0.99999, 1.0 = row
//      max} by the smallest mean squared reconstruction error over the whole tensor (or per
//      row); with QuantOptions::gptq, full GPTQ on those same row scales (quant/gptq.h,
//      SEEDS.md §4 "Full GPTQ");
//   4. any other matrix (embeddings, value_embeds.*): int8 per row with a 99.99984%
//      row-quantile clip;
//   5. anything else: fp16 (the reference would int8 it with one scale; no model has one).
// With QuantOptions::prune_fraction > 0, a matrix of rules 3 and 4 with more than 65,536
// elements first loses its smallest |w| (#490's magnitude pruning, quant/prune.h).
// So in the reference, and by default here, a small control tensor is stored as fp16 and a
// small block matrix (a narrow model's) is not quantised at all.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "model/plan.h"
#include "quant/qtensor.h"

namespace pgolf::quant {

// torch.quantile(x, q) with linear interpolation over the sorted values `sorted[0..n)`
// (ascending), computed in float exactly as torch does for a float32 input:
// rank = q * (n - 1) in float, result = lerp(sorted[floor(rank)], sorted[ceil(rank)],
// rank - floor(rank)) with torch's lerp formula. n must be > 0.
float quantile_sorted(const float* sorted, int64_t n, float q);
// The same over unsorted values (copies and sorts them).
float quantile(const float* values, int64_t n, float q);

// The clip percentiles GPTQ-lite tries, in the reference's order (the first best wins).
inline constexpr float kClipPercentiles[] = {0.999f, 0.9995f, 0.9999f, 0.99999f, 1.0f};
// The int8 path's row clip quantile (99.99984%).
inline constexpr float kInt8ClipQuantile = 0.9999984f;

// The largest |q| of an int-`bits` grid: 2^(bits-1) - 1 (symmetric, so -2^(bits-1) is unused).
inline int clip_range(int bits) { return (1 << (bits - 1)) - 1; }

// One weight on the grid of row scale s (the float value of the stored fp16 scale):
// clamp(round_half_even(w / s), -range, range), computed in float as torch does
// (torch.round is nearbyint in the default FE_TONEAREST mode: half to even).
inline float round_to_grid(float w, float s, float range) {
  return std::clamp(std::nearbyint(w / s), -range, range);
}

// GPTQ-lite's row scales (fp16 bits, one per row) for int-`bits` (2 <= bits <= 8):
// for each clip percentile p, row_clip = quantile(|w_row|, p) (row max for 1.0),
// s = fp16(max(row_clip / clip_range, 1 / clip_range)); keeps the candidate whose
// round-to-nearest reconstruction (round_to_grid) has the smallest squared error over the
// whole tensor, or per row when `per_row_clip`. `w` is row-major rows x cols; `name` names
// the tensor in errors.
std::vector<uint16_t> choose_row_scales(const std::string& name, const float* w, int64_t rows,
                                        int64_t cols, int bits, bool per_row_clip);

// GPTQ-lite int-`bits` per row: the scales of choose_row_scales and, with s their float
// values, q = round_to_grid(w, s, clip_range(bits)).
QTensor quantize_int_rows(const std::string& name, const float* w, int64_t rows, int64_t cols,
                          int bits, bool per_row_clip);

// The reference's quantize_float_tensor for a matrix: clip_abs = quantile(|w_row|,
// 0.9999984); scale = max(clip_abs / 127, 1 / 127) in float; q = clamp(round_half_even(
// clamp(w, -clip_abs, clip_abs) / scale), -127, 127); the scale is stored as fp16 (q is
// computed with the float scale, as the reference does). bits = 8.
QTensor quantize_int8_rows(const std::string& name, const float* w, int64_t rows, int64_t cols);

// Whether a tensor name is one of the reference's control tensors (kept in fp32).
bool is_control_tensor(const std::string& name);

struct QuantOptions {
  int matrix_bits = 6;         // block matrices
  int mlp_bits = 0;            // mlp.fc / mlp.proj; 0 = matrix_bits
  bool per_row_clip = false;   // GPTQ-lite clip chosen per row instead of per tensor
  int64_t passthrough_max_elements = 65536;  // rule 1; 0 quantises every matrix
  // Full GPTQ for the int-quantised block matrices (quant/gptq.h); needs their Hessians.
  bool gptq = false;
  double gptq_damp = 0.01;     // λ = gptq_damp · mean(diag H), added to diag H
  int gptq_block = 128;        // columns per lazy batch update
  bool gptq_act_order = true;  // columns in order of descending diag H
  // #490: before quantising a matrix of rules 3-4 with more than 65,536 elements, zero
  // every |w| below its prune_fraction quantile of |w| (quant/prune.h); 0 = off, < 1.
  double prune_fraction = 0.0;
};

// Calibration Hessians of the block matrices, keyed by layout index: H = (1/n) Σ x xᵀ over
// the n input rows x (cols entries each) the matrix saw, cols x cols row-major
// (quant/calibration.h collects them).
using LayerHessians = std::map<int, std::vector<double>>;

// Quantises every tensor of the plan's layout; `values` is the ParamStore value buffer
// (tensor i at plan.layout.info(i).offset). Tensors come back in layout order. With
// opt.gptq, `hessians` must hold every int-quantised block matrix (a pgolf::Error names the
// first one missing); it is not read otherwise.
std::vector<QTensor> quantize_model(const ModelPlan& plan, const float* values,
                                    const QuantOptions& opt = {},
                                    const LayerHessians* hessians = nullptr);

// The tensor of each parameter of `plan`, in layout order. Every tensor of the plan must be
// present exactly once with its shape, and no other; otherwise a pgolf::Error naming the
// tensor. Cheap: it lets a reader check an artifact's tensors before allocating the model.
std::vector<const QTensor*> match_tensors(const std::vector<QTensor>& tensors,
                                          const ModelPlan& plan);

// Writes the dequantised tensors into the value buffer of `plan`'s layout. Every tensor of
// the plan must be present exactly once with its shape, and no other; otherwise a
// pgolf::Error naming the tensor.
void dequantize_model(const std::vector<QTensor>& tensors, const ModelPlan& plan, float* values);

}  // namespace pgolf::quant
