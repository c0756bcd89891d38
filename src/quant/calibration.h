// Calibration Hessians for GPTQ (SEEDS.md §4 "Full GPTQ": H = XᵀX over training batches,
// divided by the token count; quant/gptq.h uses them). For each block matrix,
//     H = (1/n) Σ x xᵀ
// over every input row x the matrix saw in the float model's real forward pass (no
// backward): every token of every virtual layer that uses the matrix's physical block (SPEC
// §2: with depth recurrence sched[v] = p for several v, and all their inputs add), n the
// number of those rows. c_q, c_k and c_v read the same input, so they share one H.
#pragma once
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "model/model.h"
#include "quant/quantize.h"

namespace pgolf::quant {

// Accumulates the Hessians of `model`'s block matrices over forward passes; observes the
// model (Model::set_linear_observer) from construction to destruction.
class HessianCollector {
 public:
  explicit HessianCollector(Model<float>& model);
  ~HessianCollector();
  HessianCollector(const HessianCollector&) = delete;
  HessianCollector& operator=(const HessianCollector&) = delete;

  // One forward pass over B sequences of seq_len tokens ([B, seq_len] row-major); the
  // targets only feed the loss, which is discarded.
  void add_batch(const int32_t* inputs, const int32_t* targets, int64_t B, int64_t seq_len);

  // Tokens passed through the model so far (each counts once per virtual layer in H).
  int64_t tokens() const { return tokens_; }

  // Every block matrix's H (symmetric, cols x cols), keyed by layout index; an error
  // before any batch.
  LayerHessians hessians() const;

 private:
  struct Sum {
    int64_t dim = 0;
    int64_t rows = 0;           // n
    std::vector<double> upper;  // Σ x xᵀ, upper triangle (row-major dim x dim)
    std::vector<int> readers;   // the layout indices that read this input
  };
  void observe(std::span<const int> params, const float* x, int64_t rows, int64_t cols);

  Model<float>& model_;
  std::map<int, Sum> sums_;  // keyed by the first reader
  std::vector<float> gram_;  // one chunk's xᵀx in float
  int64_t tokens_ = 0;
};

// Sequences per forward pass when calibrating on a training split (pack, train): memory
// for 4 sequences of activations, and enough rows per SYRK.
inline constexpr int64_t kCalibSeqsPerForward = 4;

// Calibrates over `tokens` (num_seqs * seq_len + 1 contiguous tokens: num_seqs sequences,
// each target the next token) in forwards of `per_forward` sequences; returns the Hessians
// and sets `*tokens_seen` when given.
LayerHessians collect_hessians(Model<float>& model, const std::vector<int32_t>& tokens,
                               int64_t num_seqs, int64_t seq_len, int64_t per_forward,
                               int64_t* tokens_seen = nullptr);

// Calibrates on the start of a training split (pack --gptq, train with gptq; #490 uses
// training batches): its first num_seqs * seq_len + 1 tokens, kCalibSeqsPerForward
// sequences per forward.
LayerHessians collect_hessians_on_split(Model<float>& model,
                                        const std::vector<std::string>& train_files,
                                        int64_t num_seqs, int64_t seq_len);

// The Hessians as safetensors (what GPTQ sees): F32 [cols, cols] under each block matrix's
// parameter name (blocks.{p}.attn.c_q.weight, ...), in layout order.
io::StFile hessians_to_safetensors(const ModelPlan& plan, const LayerHessians& hessians);

}  // namespace pgolf::quant
