#include "quant/quantize.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "core/error.h"
#include "core/half.h"
#include "quant/gptq.h"
#include "quant/prune.h"

namespace pgolf::quant {
namespace {

// torch.lerp for float: weight < 0.5 ? a + w * (b - a) : b - (b - a) * (1 - w).
inline float torch_lerp(float a, float b, float w) {
  return w < 0.5f ? a + w * (b - a) : b - (b - a) * (1.0f - w);
}

void check_matrix(const std::string& name, int64_t rows, int64_t cols, int bits) {
  PGOLF_CHECK(rows >= 0 && cols >= 0, "tensor ", name, " has a negative dimension (", rows,
              " x ", cols, ")");
  PGOLF_CHECK(bits >= 2 && bits <= 8, "tensor ", name, " cannot be quantised to ", bits,
              " bits (2 to 8 are supported)");
}

// |w_row| sorted ascending.
void sorted_abs_row(const float* w, int64_t cols, std::vector<float>& out) {
  out.resize(cols);
  for (int64_t c = 0; c < cols; ++c) out[c] = std::fabs(w[c]);
  std::sort(out.begin(), out.end());
}

}  // namespace

float quantile_sorted(const float* sorted, int64_t n, float q) {
  PGOLF_CHECK(n > 0, "the quantile of no values is undefined");
  const float rank = q * static_cast<float>(n - 1);
  const int64_t below = std::min<int64_t>(static_cast<int64_t>(rank), n - 1);
  const int64_t above = std::min<int64_t>(static_cast<int64_t>(std::ceil(rank)), n - 1);
  return torch_lerp(sorted[below], sorted[above], rank - static_cast<float>(below));
}

float quantile(const float* values, int64_t n, float q) {
  std::vector<float> sorted(values, values + n);
  std::sort(sorted.begin(), sorted.end());
  return quantile_sorted(sorted.data(), n, q);
}

std::vector<uint16_t> choose_row_scales(const std::string& name, const float* w, int64_t rows,
                                        int64_t cols, int bits, bool per_row_clip) {
  check_matrix(name, rows, cols, bits);
  const float range_f = static_cast<float>(clip_range(bits));
  const float floor_f = static_cast<float>(1.0 / clip_range(bits));
  constexpr int kCands = std::size(kClipPercentiles);

  // scale[k][r] (fp16 bits) and the row's summed squared error for candidate k.
  std::vector<std::vector<uint16_t>> scale(kCands, std::vector<uint16_t>(rows));
  std::vector<std::vector<double>> err(kCands, std::vector<double>(rows, 0.0));

#pragma omp parallel
  {
    std::vector<float> sorted;
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const float* row = w + r * cols;
      sorted_abs_row(row, cols, sorted);
      for (int k = 0; k < kCands; ++k) {
        const float p = kClipPercentiles[k];
        float clip = 0.0f;
        if (cols > 0) clip = p < 1.0f ? quantile_sorted(sorted.data(), cols, p) : sorted.back();
        const uint16_t s16 = float_to_half(std::max(clip / range_f, floor_f));
        const float s = half_to_float(s16);
        double e = 0.0;
        for (int64_t c = 0; c < cols; ++c) {
          const float d = row[c] - round_to_grid(row[c], s, range_f) * s;
          e += static_cast<double>(d) * d;
        }
        scale[k][r] = s16;
        err[k][r] = e;
      }
    }
  }

  // The chosen candidate per row: strict '<' keeps the first best, as the reference does.
  std::vector<int> choice(rows, 0);
  if (per_row_clip) {
    for (int64_t r = 0; r < rows; ++r)
      for (int k = 1; k < kCands; ++k)
        if (err[k][r] < err[choice[r]][r]) choice[r] = k;
  } else {
    int best = 0;
    double best_err = INFINITY;
    for (int k = 0; k < kCands; ++k) {
      double total = 0.0;
      for (int64_t r = 0; r < rows; ++r) total += err[k][r];
      if (total < best_err) best = k, best_err = total;
    }
    std::fill(choice.begin(), choice.end(), best);
  }
  std::vector<uint16_t> chosen(rows);
  for (int64_t r = 0; r < rows; ++r) chosen[r] = scale[choice[r]][r];
  return chosen;
}

QTensor quantize_int_rows(const std::string& name, const float* w, int64_t rows, int64_t cols,
                          int bits, bool per_row_clip) {
  QTensor t;
  t.name = name;
  t.shape = {rows, cols};
  t.scheme = Scheme::kIntRows;
  t.bits = bits;
  t.scales = choose_row_scales(name, w, rows, cols, bits, per_row_clip);
  t.q.resize(rows * cols);
  const float range_f = static_cast<float>(clip_range(bits));
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float s = half_to_float(t.scales[r]);
    for (int64_t c = 0; c < cols; ++c)
      t.q[r * cols + c] = static_cast<int8_t>(round_to_grid(w[r * cols + c], s, range_f));
  }
  return t;
}

QTensor quantize_int8_rows(const std::string& name, const float* w, int64_t rows, int64_t cols) {
  check_matrix(name, rows, cols, 8);
  QTensor t;
  t.name = name;
  t.shape = {rows, cols};
  t.scheme = Scheme::kIntRows;
  t.bits = 8;
  t.q.resize(rows * cols);
  t.scales.resize(rows);
  const float floor_f = static_cast<float>(1.0 / 127.0);
#pragma omp parallel
  {
    std::vector<float> sorted;
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const float* row = w + r * cols;
      sorted_abs_row(row, cols, sorted);
      const float clip = cols > 0 ? quantile_sorted(sorted.data(), cols, kInt8ClipQuantile) : 0.0f;
      const float s = std::max(clip / 127.0f, floor_f);
      for (int64_t c = 0; c < cols; ++c) {
        const float clipped = std::max(std::min(row[c], clip), -clip);
        t.q[r * cols + c] = static_cast<int8_t>(round_to_grid(clipped, s, 127.0f));
      }
      t.scales[r] = float_to_half(s);
    }
  }
  return t;
}

bool is_control_tensor(const std::string& name) {
  static const char* const kPatterns[] = {
      "attn_scale",   "mlp_scale",       "resid_mix",  "q_gain",     "skip_weights",
      "smear",        "ve_layer_scales", "vr_lambda",  "attn_gate",  "bigram.scale",
      "ve_shared.scale",
      // #784's recurrent form (docs/recurrence.md)
      "loop_embed",   "value_scales",    "cross_repeat_scales"};
  for (const char* p : kPatterns)
    if (name.find(p) != std::string::npos) return true;
  return false;
}

std::vector<QTensor> quantize_model(const ModelPlan& plan, const float* values,
                                    const QuantOptions& opt, const LayerHessians* hessians) {
  PGOLF_CHECK(!opt.gptq || hessians, "GPTQ needs the block matrices' calibration Hessians");
  PGOLF_CHECK(opt.prune_fraction >= 0 && opt.prune_fraction < 1,
              "the pruning fraction must lie in [0, 1), got ", opt.prune_fraction);
  const int mlp_bits = opt.mlp_bits > 0 ? opt.mlp_bits : opt.matrix_bits;
  std::map<int, int> matrix_bits;  // layout index → bits
  for (const BlockParams& b : plan.blocks) {
    for (int i : {b.c_q, b.c_k, b.c_v, b.attn_proj})
      if (i >= 0) matrix_bits[i] = opt.matrix_bits;
    for (int i : {b.mlp_fc, b.mlp_proj})
      if (i >= 0) matrix_bits[i] = mlp_bits;
  }

  const auto& infos = plan.layout.infos();
  std::vector<QTensor> out;
  out.reserve(infos.size());
  std::vector<float> pruned;
  for (int i = 0; i < int(infos.size()); ++i) {
    const ParamInfo& p = infos[i];
    const float* w = values + p.offset;
    // #490's pruning, on a copy, for the matrices rules 3 and 4 quantise.
    const bool quantised_matrix = p.numel > opt.passthrough_max_elements &&
                                  !is_control_tensor(p.name) && p.shape.size() == 2;
    if (opt.prune_fraction > 0 && quantised_matrix && is_prunable(p.shape)) {
      pruned.assign(w, w + p.numel);
      prune_by_magnitude(pruned.data(), p.numel, opt.prune_fraction);
      w = pruned.data();
    }
    QTensor t;
    t.name = p.name;
    t.shape = p.shape;
    if (p.numel <= opt.passthrough_max_elements) {
      t.scheme = Scheme::kF16;
    } else if (is_control_tensor(p.name)) {
      t.scheme = Scheme::kF32;
      t.f32.assign(w, w + p.numel);
    } else if (auto it = matrix_bits.find(i); it != matrix_bits.end()) {
      PGOLF_CHECK(p.shape.size() == 2, "block matrix ", p.name, " has shape ",
                  to_string(p.shape), ", not a matrix");
      if (opt.gptq) {
        auto h = hessians->find(i);
        PGOLF_CHECK(h != hessians->end(), "GPTQ has no calibration Hessian for ", p.name);
        t = gptq_quantize_rows(p.name, w, p.shape[0], p.shape[1], it->second, h->second, opt);
      } else {
        t = quantize_int_rows(p.name, w, p.shape[0], p.shape[1], it->second, opt.per_row_clip);
      }
    } else if (p.shape.size() == 2) {
      t = quantize_int8_rows(p.name, w, p.shape[0], p.shape[1]);
    } else {
      t.scheme = Scheme::kF16;
    }
    if (t.scheme == Scheme::kF16) {
      t.f16.resize(p.numel);
      for (int64_t j = 0; j < p.numel; ++j) t.f16[j] = float_to_half(w[j]);
    }
    out.push_back(std::move(t));
  }
  return out;
}

std::vector<const QTensor*> match_tensors(const std::vector<QTensor>& tensors,
                                          const ModelPlan& plan) {
  std::map<std::string, const QTensor*> by_name;
  for (const QTensor& t : tensors) {
    PGOLF_CHECK(plan.layout.find(t.name) >= 0, "quantised tensor ", t.name,
                " is not a parameter of the model");
    PGOLF_CHECK(by_name.emplace(t.name, &t).second, "quantised tensor ", t.name,
                " appears twice");
  }
  std::vector<const QTensor*> matched;
  for (const ParamInfo& p : plan.layout.infos()) {
    auto it = by_name.find(p.name);
    PGOLF_CHECK(it != by_name.end(), "the quantised model lacks tensor ", p.name);
    PGOLF_CHECK(it->second->shape == p.shape, "quantised tensor ", p.name, " has shape ",
                to_string(it->second->shape), " but the model needs ", to_string(p.shape));
    matched.push_back(it->second);
  }
  return matched;
}

void dequantize_model(const std::vector<QTensor>& tensors, const ModelPlan& plan, float* values) {
  const std::vector<const QTensor*> matched = match_tensors(tensors, plan);
  for (size_t i = 0; i < matched.size(); ++i) {
    const std::vector<float> v = dequantize(*matched[i]);
    std::copy(v.begin(), v.end(), values + plan.layout.info(int(i)).offset);
  }
}

}  // namespace pgolf::quant
