// DeviceModel (model/cuda/device_model.h) against Model<float> (the proven CPU model) on the
// same fp32 weights and tokens: the GPU forward and backward of SPEC §2 must give the CPU's
// loss and parameter gradients up to the SPEC's mixed precision.
//
// Tolerances. The GPU keeps every activation in bf16 (relative rounding 2^-9) and rounds the
// GEMM operands (weights) to bf16; everything else is fp32 on both sides. A virtual layer
// has about 15 such roundings on the path of the residual stream, most of them damped by
// the following rms norm; through ~6 layers and the head the hidden state drifts by ~1%
// relative at worst, which moves a logit of a few units by a few hundredths.
// - Mean loss: the per-token errors have both signs and average over B·T tokens, so expect
//   ~1e-3; bound 1e-2 relative.
// - Per-token losses: no averaging: bound 5e-2 relative plus 1e-2 of the largest loss.
// - The mean forward() returns is reduced on the device (cross_entropy.h add_mean_loss: fp32
//   partials of 64 positive losses, then double): within 63 fp32 roundings, 63 · 2^-24 <
//   4e-6 relative, of the double sum of the losses token_losses() downloads; bound 1e-5.
//
// CUDA graphs: the captured micro-step replays the eager one's kernels on the same addresses,
// so its loss and gradients are the eager path's bits, except the embedding tables', whose
// backward adds with fp32 atomics in no fixed order (kernels/cuda/embedding.h): those agree
// to a few fp32 roundings of their largest entry (bound 1e-5 relative, 1e-6 of the largest).
// - Gradients, per tensor: max |g_gpu - g_cpu| / max |g_cpu| (the metric of tests/parity).
//   The backward reads the forward's bf16 activations (the ~1% drift above) and rounds every
//   activation gradient to bf16 once per op, about twice the forward's roundings per layer,
//   again damped by the norms' backward; the weight gradients are fp32 sums over the N rows
//   of products whose rounding errors are independent, so they average rather than add. The
//   largest entries of a tensor then carry ~1e-2 relative error; normalising by the tensor's
//   largest entry keeps its small, cancelling entries from failing alone. Bound 5e-2.
//   An element whose CPU gradient is exactly zero (a table row no token reached, an inactive
//   layer's tensors and rows at a depth stage) must be exactly zero on the GPU: nothing may
//   write it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/presets.h"
#include "core/cuda/graph.h"
#include "core/philox.h"
#include "cuda/cuda_test_support.h"
#include "model/cuda/device_model.h"
#include "model/init.h"
#include "model/model.h"
#include "support/small_configs.h"
#include "train/run_config.h"

namespace {

namespace cuda = pgolf::cuda;
using pgolf::ModelConfig;
using pgolf::ModelPlan;

constexpr double kLossRtol = 1e-2;
constexpr double kMeanRtol = 1e-5;
constexpr double kAtomicRtol = 1e-5, kAtomicFloor = 1e-6;
constexpr double kTokenRtol = 5e-2, kTokenFloor = 1e-2;
constexpr double kGradRtol = 5e-2;
constexpr int64_t kAllRepeats = 1 << 20;  // set_active_repeats clamps to the schedule's

// A preset's model keys (configs/NAME.json as embedded in the binary).
ModelConfig preset_model(const std::string& name) {
  for (const auto& p : pgolf::presets()) {
    if (name != p.name) continue;
    pgolf::RunConfig rc;
    pgolf::apply_json(rc, nlohmann::json::parse(p.json), name);
    return rc.model;
  }
  ADD_FAILURE() << "no preset " << name;
  return {};
}

// Every switch of SPEC §2 and docs/recurrence.md at a width the CUDA attention runs (4 heads
// of 32): the shared small config's block switches, plus an untied head, partial RoPE with
// the long-sequence rescale (seq 48 > 32), bigram and VE projections, value embeddings on
// layer 0 (whose u feeds the value residual) and a repeat, U-Net skips, loop embeddings,
// residual VE tables, cross-repeat skips and untied down projections of the repeats.
ModelConfig everything_on() {
  ModelConfig c = pgolf::test::small_switches_on(97, 3, {0, 1, 2, 1, 2});
  c.model_dim = 128;
  c.mlp_mult = 2;
  c.tie_embeddings = false;
  c.rope_dims = 16;
  c.rope_train_seq_len = 32;
  c.bigram_vocab_size = 61;
  c.bigram_dim = 40;
  c.ve_enabled = true;
  c.ve_dim = 24;
  c.ve_layers = {0, 3};
  c.loop_embed = true;
  c.residual_ve_tables = 2;
  c.cross_repeat = true;
  c.repeat_untie_mlp = "down";
  c.logit_softcap = 15;
  return c;
}

// The reference init, then N(0, σ²) added to every tensor (σ = 1/sqrt(fan-in) for matrices
// and tables, 0.1 for vectors and scalars), so the paths that start at zero (output
// projections, an untied head, the bigram table, the #784 scales, the gates) carry signal.
void init_weights(pgolf::Model<float>& model, uint64_t seed) {
  pgolf::init_params(model.plan(), model.params(), seed);
  const auto& infos = model.plan().layout.infos();
  for (size_t i = 0; i < infos.size(); ++i) {
    const auto& p = infos[i];
    const pgolf::Philox rng(seed + 1, i);
    const double sigma = p.shape.size() >= 2 ? 1.0 / std::sqrt(double(p.shape.back())) : 0.1;
    float* w = model.params().value(int(i));
    for (int64_t k = 0; k < p.numel; ++k) w[k] += float(sigma * rng.normal(uint64_t(k)));
  }
}

std::vector<int32_t> random_tokens(int64_t n, int64_t vocab, int lane) {
  const pgolf::Philox rng(9, 0);
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = int32_t(rng.uniform(i, lane) * double(vocab));
  return ids;
}

// The CPU and the GPU model on the same weights at the same depth stage, and one batch.
struct ModelPair {
  pgolf::Model<float> cpu;
  cuda::Context ctx;
  cuda::DeviceModel gpu;
  std::vector<int32_t> x, y;

  ModelPair(const ModelConfig& cfg, int64_t B, int64_t T, int64_t active_repeats)
      : cpu(pgolf::make_plan(cfg)),
        gpu(ctx, cpu.plan()),
        x(random_tokens(B * T, cfg.vocab_size, 0)),
        y(random_tokens(B * T, cfg.vocab_size, 1)) {
    init_weights(cpu, 3);
    cpu.set_active_repeats(active_repeats);
    gpu.upload(cpu.params());
    gpu.set_active_repeats(active_repeats);
  }
};

// The CPU and GPU forward of one batch, compared; active_repeats < the schedule's runs a
// depth stage.
void expect_forward_matches(const ModelConfig& cfg, int64_t B, int64_t T,
                            int64_t active_repeats = kAllRepeats) {
  ModelPair m(cfg, B, T, active_repeats);
  const double want = m.cpu.forward(m.x.data(), m.y.data(), B, T);
  const double got = m.gpu.forward(m.x.data(), m.y.data(), B, T);
  std::printf("loss: CPU %.6f, GPU %.6f, relative difference %.2e\n", want, got,
              std::fabs(got - want) / want);
  EXPECT_NEAR(got, want, kLossRtol * want);

  const std::vector<float> losses = m.gpu.token_losses();
  const float* cpu_losses = m.cpu.token_losses();
  pgolf::test::expect_close(losses, std::vector<float>(cpu_losses, cpu_losses + B * T),
                            kTokenRtol, kTokenFloor, "per-token losses");
  double total = 0;
  for (float l : losses) total += double(l);
  EXPECT_NEAR(got, total / double(B * T), kMeanRtol * got);
}

// The CPU and GPU gradients of one batch, compared per tensor (header: kGradRtol; exact
// zero where the CPU's element is zero). The GPU runs two backward passes at loss_scale 1/2
// after zeroing a stale one, so zero_grads and accumulation are part of what is checked.
// Returns how many tensors had an all-zero CPU gradient.
int expect_gradients_match(const ModelConfig& cfg, int64_t B, int64_t T,
                           int64_t active_repeats = kAllRepeats) {
  ModelPair m(cfg, B, T, active_repeats);
  m.cpu.params().zero_grads();
  m.cpu.forward(m.x.data(), m.y.data(), B, T);
  m.cpu.backward();
  m.gpu.forward(m.x.data(), m.y.data(), B, T);
  m.gpu.backward();  // stale: zero_grads below must clear it
  m.gpu.zero_grads();
  m.gpu.backward(0.5);
  m.gpu.backward(0.5);
  pgolf::ParamStore<float> got(m.cpu.plan().layout);
  m.gpu.download_grads(got);

  const auto& infos = m.cpu.plan().layout.infos();
  int zero_tensors = 0;
  double worst = 0;
  std::string worst_name;
  for (size_t i = 0; i < infos.size(); ++i) {
    const pgolf::ParamInfo& p = infos[i];
    const float* want = m.cpu.params().grad(int(i));
    const float* have = got.grad(int(i));
    double scale = 0, err = 0;
    int64_t stray = 0;  // elements zero on the CPU but not on the GPU
    for (int64_t k = 0; k < p.numel; ++k) {
      scale = std::max(scale, std::fabs(double(want[k])));
      const double e = std::fabs(double(have[k]) - double(want[k]));
      err = std::isnan(e) ? INFINITY : std::max(err, e);
      stray += want[k] == 0 && have[k] != 0;
    }
    EXPECT_EQ(stray, 0) << p.name << ": elements with a zero CPU gradient written on the GPU";
    if (scale == 0) {
      ++zero_tensors;
      continue;
    }
    const double rel = err / scale;
    EXPECT_LE(rel, kGradRtol) << p.name << ": max |g_gpu - g_cpu| / max |g_cpu|";
    if (!(rel <= worst)) worst = rel, worst_name = p.name;
  }
  std::printf("gradients: %zu tensors, %d zero on the CPU, worst %s at %.2e\n", infos.size(),
              zero_tensors, worst_name.c_str(), worst);
  return zero_tensors;
}

// Host only: the configs the project trains pass the check; an unsupported head dim is an
// Error that names it, before any device call.
TEST(CudaDeviceModel, UnsupportedFeaturesAreClearErrors) {
  for (const char* name : {"tiny", "record549", "baseline"})
    EXPECT_NO_THROW(cuda::check_device_support(preset_model(name))) << name;
  EXPECT_NO_THROW(cuda::check_device_support(everything_on()));
  ModelConfig c = everything_on();
  c.model_dim = 32;  // 4 heads of 8
  try {
    cuda::check_device_support(c);
    ADD_FAILURE() << "head dim 8 was accepted";
  } catch (const pgolf::Error& e) {
    EXPECT_NE(std::string(e.what()).find("head dims 16 to 256"), std::string::npos) << e.what();
  }
}

// Host only: the activation plan's size (the device memory a forward and backward need, the
// backward's scratch included), printed for the configs of interest at the record's batch,
// and checked to grow linearly with the tokens and to hold at least the logits and their
// gradient (bf16 [N, V] each) and every layer's kept stream tensors.
TEST(CudaDeviceModel, ActivationPlanSizes) {
  for (const char* name : {"tiny", "record549"}) {
    const ModelPlan plan = pgolf::make_plan(preset_model(name));
    const auto& c = plan.cfg;
    const int64_t B = 48, T = 2048, N = B * T;
    const int64_t bytes = cuda::DeviceModel::activation_bytes(plan, B, T);
    std::printf("%s: activations at B=%lld, T=%lld: %.1f MiB; parameters fp32 %.1f MiB\n", name,
                (long long)B, (long long)T, double(bytes) / (1 << 20),
                double(plan.layout.total()) * 4 / (1 << 20));
    EXPECT_GE(bytes, 2 * N * c.vocab_size * 2 + c.num_virtual() * N * c.model_dim * 2 * 8);
    const int64_t half = cuda::DeviceModel::activation_bytes(plan, B / 2, T);
    EXPECT_NEAR(double(bytes), 2.0 * double(half), 1e-3 * double(bytes));
  }
}

TEST(CudaDeviceModel, TinyForwardMatchesCpu) {
  PGOLF_REQUIRE_GPU();
  expect_forward_matches(preset_model("tiny"), 2, 100);
}

TEST(CudaDeviceModel, EverythingOnForwardMatchesCpu) {
  PGOLF_REQUIRE_GPU();
  expect_forward_matches(everything_on(), 2, 48);
}

// A depth stage: only the first use of each block runs, the U-Net rebuilt over them.
TEST(CudaDeviceModel, EverythingOnFirstRepeatMatchesCpu) {
  PGOLF_REQUIRE_GPU();
  expect_forward_matches(everything_on(), 2, 48, 1);
}

TEST(CudaDeviceModel, TinyGradientsMatchCpu) {
  PGOLF_REQUIRE_GPU();
  expect_gradients_match(preset_model("tiny"), 2, 100);
}

TEST(CudaDeviceModel, EverythingOnGradientsMatchCpu) {
  PGOLF_REQUIRE_GPU();
  expect_gradients_match(everything_on(), 2, 48);
}

// A depth stage: the later repeats' own tensors (their layers' scalars, untied down
// projections) and rows (loop embeddings, value scales) get no gradient, exactly, on both
// sides; at least one whole tensor is such.
TEST(CudaDeviceModel, EverythingOnFirstRepeatGradientsMatchCpu) {
  PGOLF_REQUIRE_GPU();
  EXPECT_GT(expect_gradients_match(everything_on(), 2, 48, 1), 0);
}

// Parameters go up and come back bitwise; a second, larger shape re-plans the activations
// and a smaller one reuses their storage, each forward still the CPU's.
TEST(CudaDeviceModel, UploadDownloadAndShapeChanges) {
  PGOLF_REQUIRE_GPU();
  const ModelConfig cfg = preset_model("tiny");
  pgolf::Model<float> cpu_model(pgolf::make_plan(cfg));
  init_weights(cpu_model, 4);
  cuda::Context ctx;
  cuda::DeviceModel gpu_model(ctx, cpu_model.plan());
  gpu_model.upload(cpu_model.params());
  pgolf::ParamStore<float> back(cpu_model.plan().layout);
  gpu_model.download(back);
  EXPECT_TRUE(std::equal(back.values().begin(), back.values().end(),
                         cpu_model.params().values().begin()));

  for (auto [B, T] : {std::pair<int64_t, int64_t>{1, 64}, {3, 130}, {2, 17}}) {
    SCOPED_TRACE("B=" + std::to_string(B) + " T=" + std::to_string(T));
    const std::vector<int32_t> x = random_tokens(B * T, cfg.vocab_size, 2);
    const std::vector<int32_t> y = random_tokens(B * T, cfg.vocab_size, 3);
    const double want = cpu_model.forward(x.data(), y.data(), B, T);
    EXPECT_NEAR(gpu_model.forward(x.data(), y.data(), B, T), want, kLossRtol * want);
  }
}

// The staged path is forward(): stage_batch, then forward_staged adds the same mean into the
// accumulator, bit for bit (a deterministic reduction), and a second one adds it again.
TEST(CudaDeviceModel, StagedForwardMatchesForward) {
  PGOLF_REQUIRE_GPU();
  const int64_t B = 2, T = 48;
  ModelPair m(everything_on(), B, T, kAllRepeats);
  const double want = m.gpu.forward(m.x.data(), m.y.data(), B, T);
  m.gpu.zero_loss_total();
  EXPECT_EQ(m.gpu.read_loss_total(), 0.0);
  m.gpu.stage_batch(m.x.data(), m.y.data(), B, T);
  m.gpu.forward_staged();
  EXPECT_EQ(m.gpu.read_loss_total(), want);
  m.gpu.forward_staged();
  EXPECT_EQ(m.gpu.read_loss_total(), 2 * want);
  // Token ids are checked on the host before anything is copied.
  std::vector<int32_t> bad = m.x;
  bad[5] = int32_t(m.cpu.plan().cfg.vocab_size);
  EXPECT_THROW(m.gpu.stage_batch(bad.data(), m.y.data(), B, T), pgolf::Error);
}

// What one micro-step leaves: its mean loss and the gradients.
struct StepResult {
  double loss;
  pgolf::ParamStore<float> grads;
};

StepResult step_result(ModelPair& m) {
  StepResult r{m.gpu.read_loss_total(), pgolf::ParamStore<float>(m.cpu.plan().layout)};
  m.gpu.download_grads(r.grads);
  return r;
}

// Bitwise, except the tables the embedding backward scatters into with atomics (header).
void expect_same_step(const StepResult& got, const StepResult& want, const ModelPlan& plan) {
  EXPECT_EQ(got.loss, want.loss);
  std::vector<int> tables = {plan.tok_emb, plan.bigram_embed, plan.ve_embed};
  tables.insert(tables.end(), plan.value_embeds.begin(), plan.value_embeds.end());
  const auto& infos = plan.layout.infos();
  for (size_t i = 0; i < infos.size(); ++i) {
    const float* g = got.grads.grad(int(i));
    const float* w = want.grads.grad(int(i));
    const std::vector<float> have(g, g + infos[i].numel), expected(w, w + infos[i].numel);
    if (std::find(tables.begin(), tables.end(), int(i)) != tables.end())
      pgolf::test::expect_close(have, expected, kAtomicRtol, kAtomicFloor, infos[i].name.c_str());
    else
      EXPECT_EQ(have, expected) << infos[i].name;
  }
}

// The micro-step (zero_loss_total, forward_staged, backward) captured once and replayed on two
// different batches gives each batch's eager loss and gradients. The eager steps come first:
// they size the Context's scratch, so the capture changes no generation.
TEST(CudaDeviceModel, CapturedMicroStepMatchesEager) {
  PGOLF_REQUIRE_GPU();
  const int64_t B = 2, T = 48;
  const ModelConfig cfg = everything_on();
  ModelPair m(cfg, B, T, kAllRepeats);
  const std::vector<std::pair<std::vector<int32_t>, std::vector<int32_t>>> batches = {
      {m.x, m.y},
      {random_tokens(B * T, cfg.vocab_size, 2), random_tokens(B * T, cfg.vocab_size, 3)}};
  auto micro_step = [&] {
    m.gpu.zero_loss_total();
    m.gpu.forward_staged();
    m.gpu.backward(0.5);
  };
  std::vector<StepResult> eager;
  for (const auto& [x, y] : batches) {
    m.gpu.zero_grads();
    m.gpu.stage_batch(x.data(), y.data(), B, T);
    micro_step();
    eager.push_back(step_result(m));
  }
  EXPECT_NE(eager[0].loss, eager[1].loss);

  const uint64_t generation = m.gpu.generation();
  cuda::Graph graph;
  graph.capture(m.ctx, micro_step);
  EXPECT_EQ(m.gpu.generation(), generation);
  for (size_t b = 0; b < batches.size(); ++b) {
    SCOPED_TRACE("batch " + std::to_string(b));
    m.gpu.zero_grads();
    m.gpu.stage_batch(batches[b].first.data(), batches[b].second.data(), B, T);
    EXPECT_EQ(m.gpu.generation(), generation);
    graph.launch(m.ctx);
    expect_same_step(step_result(m), eager[b], m.cpu.plan());
  }
}

// generation() changes with the shape and the depth stage, and stays put for a batch of the
// same shape, the same stage set again, and a second micro-step (the first sized the scratch).
TEST(CudaDeviceModel, GenerationTracksShapeAndDepth) {
  PGOLF_REQUIRE_GPU();
  const ModelConfig cfg = everything_on();
  ASSERT_GT(cfg.num_repeats(), 1);
  ModelPair m(cfg, 2, 48, kAllRepeats);
  auto step = [&](int64_t B, int64_t T, uint32_t lane) {
    const std::vector<int32_t> x = random_tokens(B * T, cfg.vocab_size, int(lane));
    m.gpu.forward(x.data(), x.data(), B, T);
    m.gpu.backward();
    return m.gpu.generation();
  };
  uint64_t g = step(2, 48, 0);
  EXPECT_EQ(step(2, 48, 1), g);
  EXPECT_NE(step(3, 48, 2), g);  // B changed
  g = m.gpu.generation();
  EXPECT_NE(step(3, 40, 3), g);  // seq changed
  g = m.gpu.generation();
  m.gpu.set_active_repeats(kAllRepeats);  // the stage it is at
  EXPECT_EQ(m.gpu.generation(), g);
  m.gpu.set_active_repeats(1);
  EXPECT_NE(m.gpu.generation(), g);
  g = m.gpu.generation();
  EXPECT_EQ(step(3, 40, 4), g);
}

}  // namespace
