#include "quant/calibration.h"

#include <cblas.h>

#include <algorithm>

#include "core/error.h"
#include "data/token_stream.h"

namespace pgolf::quant {
namespace {

// Rows per float SYRK: each float sum runs over at most this many products before it is
// added to the double accumulator, which bounds its rounding error (about 1e-6 relative).
constexpr int64_t kRowsPerChunk = 1024;

}  // namespace

HessianCollector::HessianCollector(Model<float>& model) : model_(model) {
  model_.set_linear_observer([this](std::span<const int> params, const float* x, int64_t rows,
                                    int64_t cols) { observe(params, x, rows, cols); });
}

HessianCollector::~HessianCollector() { model_.set_linear_observer(nullptr); }

void HessianCollector::add_batch(const int32_t* inputs, const int32_t* targets, int64_t B,
                                 int64_t seq_len) {
  model_.forward(inputs, targets, B, seq_len);
  tokens_ += B * seq_len;
}

void HessianCollector::observe(std::span<const int> params, const float* x, int64_t rows,
                               int64_t cols) {
  Sum& sum = sums_[params.front()];
  if (sum.readers.empty()) {
    sum.dim = cols;
    sum.upper.assign(cols * cols, 0.0);
    sum.readers.assign(params.begin(), params.end());
  }
  PGOLF_CHECK(sum.dim == cols, "internal: the input of ",
              model_.plan().layout.info(params.front()).name, " changed width from ", sum.dim,
              " to ", cols);
  gram_.resize(cols * cols);
  for (int64_t r0 = 0; r0 < rows; r0 += kRowsPerChunk) {
    const int64_t n = std::min(kRowsPerChunk, rows - r0);
    // gram = x[r0:r0+n]ᵀ x[r0:r0+n], upper triangle.
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, blasint(cols), blasint(n), 1.0f,
                x + r0 * cols, blasint(cols), 0.0f, gram_.data(), blasint(cols));
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < cols; ++i)
      for (int64_t j = i; j < cols; ++j) sum.upper[i * cols + j] += double(gram_[i * cols + j]);
  }
  sum.rows += rows;
}

LayerHessians HessianCollector::hessians() const {
  PGOLF_CHECK(tokens_ > 0, "no calibration tokens have passed through the model");
  LayerHessians out;
  for (const auto& [key, sum] : sums_) {
    const int64_t n = sum.dim;
    std::vector<double> h(n * n);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = i; j < n; ++j)
        h[i * n + j] = h[j * n + i] = sum.upper[i * n + j] / double(sum.rows);
    for (int reader : sum.readers) out[reader] = h;
  }
  return out;
}

LayerHessians collect_hessians(Model<float>& model, const std::vector<int32_t>& tokens,
                               int64_t num_seqs, int64_t seq_len, int64_t per_forward,
                               int64_t* tokens_seen) {
  PGOLF_CHECK(num_seqs > 0 && seq_len > 0 && per_forward > 0 &&
                  int64_t(tokens.size()) >= num_seqs * seq_len + 1,
              "calibration needs ", num_seqs, " sequences of ", seq_len, " tokens plus one (",
              num_seqs * seq_len + 1, ") but has ", tokens.size());
  HessianCollector collector(model);
  for (int64_t s = 0; s < num_seqs; s += per_forward) {
    const int32_t* x = tokens.data() + s * seq_len;  // targets: the next token
    collector.add_batch(x, x + 1, std::min(per_forward, num_seqs - s), seq_len);
  }
  if (tokens_seen) *tokens_seen = collector.tokens();
  return collector.hessians();
}

LayerHessians collect_hessians_on_split(Model<float>& model,
                                        const std::vector<std::string>& train_files,
                                        int64_t num_seqs, int64_t seq_len) {
  std::vector<int32_t> tokens;
  TokenStream(train_files, model.config().vocab_size).take(num_seqs * seq_len + 1, tokens);
  return collect_hessians(model, tokens, num_seqs, seq_len, kCalibSeqsPerForward);
}

io::StFile hessians_to_safetensors(const ModelPlan& plan, const LayerHessians& hessians) {
  io::StFile file;
  for (const auto& [index, h] : hessians) {
    PGOLF_CHECK(index >= 0 && index < int(plan.layout.infos().size()), "a Hessian is keyed by ",
                index, ", not a parameter of the model");
    const ParamInfo& p = plan.layout.info(index);
    const int64_t cols = p.shape.back();
    PGOLF_CHECK(int64_t(h.size()) == cols * cols, "the Hessian of ", p.name, " holds ", h.size(),
                " values but its ", cols, " input columns need ", cols, " x ", cols);
    const std::vector<float> f(h.begin(), h.end());
    file.add_f32(p.name, {cols, cols}, f.data());
  }
  return file;
}

}  // namespace pgolf::quant
