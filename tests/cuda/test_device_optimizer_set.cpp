// DeviceOptimizerSet (train/cuda/device_optimizer_set.h) against OptimizerSet
// (train/optimizer_set.h) on the same parameters, gradients and state: three steps of each
// with weight decay on, from a fresh state, with clipping, and resumed from a host state with
// step counts > 0; the state's round trip; a captured CUDA graph replayed against eager steps.
// The model: 3 layers at d 64 (4 heads of 16, 2 KV heads, MLP 128), untied, so Muon batches
// three matrices of each of four shapes (square, wide, tall) and all three AdamW groups exist.
//
// Tolerances:
//  - Muon matrices, step by step: the change of each matrix in one step, each side from its
//    own weights. The GPU's Newton–Schulz is bf16 (the reference's precision), the CPU's fp32;
//    on Gaussian inputs (the Nesterov gradients here are sums of Gaussian gradients)
//    tests/cuda/test_newton_schulz.cpp bounds that difference at 3% relative Frobenius error
//    and 5% of the largest element, and the change is that update times lr and the aspect
//    scale. The decay part (w (1 - lr wd)) is fp32 on both sides and differs only by lr wd
//    times the weights' earlier difference, far below those bounds: the same 3% and 5%.
//  - AdamW tensors after the three steps: fp32 on both sides with the same scalars
//    (tests/cuda/test_adamw.cpp: a few ulps from FMA contraction, 2e-6 relative), plus the
//    update's own error: a few ulps of it, and with clipping the coefficient from the GPU's
//    norm (fp32 partials) or the CPU's (double sums), ~1e-6 apart, which AdamW's ratio m/√v
//    cancels but for eps. Floor: 1e-5 of the tensor's largest change over the three steps.
//  - Muon momentum and AdamW moments: fp32 on both sides, the gradients equal up to that
//    clipping coefficient: 2e-6 relative, floor 1e-7 of the tensor's scale. Step counts: equal.
//  - Round trips and graph replays: bitwise.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "cuda/cuda_test_support.h"
#include "model/init.h"
#include "model/plan.h"
#include "support/small_configs.h"
#include "train/cuda/device_optimizer_set.h"
#include "train/optimizer_set.h"

namespace {

namespace cuda = pgolf::cuda;
using namespace pgolf::test;

constexpr double kNsFrobenius = 0.03, kNsElement = 0.05;
constexpr double kFp32Rtol = 2e-6, kAdamChangeFloor = 1e-5, kStateFloor = 1e-7;
constexpr double kLrScales[] = {1.0, 0.7, 0.4};

pgolf::ModelConfig model_config() {
  pgolf::ModelConfig c = small_switches_on(97, 3);
  c.model_dim = 64;
  c.tie_embeddings = false;  // the head group
  return c;
}

pgolf::TrainConfig train_config() {
  pgolf::TrainConfig t;
  t.muon_wd = 0.04;
  t.adam_wd = 0.04;
  return t;
}

// The CPU optimizer on its store, and the device buffers of the same layout.
struct Pair {
  pgolf::ModelPlan plan = pgolf::make_plan(model_config());
  pgolf::TrainConfig t = train_config();
  pgolf::ParamStore<float> store{plan.layout};
  pgolf::OptimizerSet cpu{store, plan, t};
  cuda::Context ctx;
  cuda::DeviceBuffer<float> d_params{int64_t(store.values().size())};
  cuda::DeviceBuffer<float> d_grads{int64_t(store.grads().size())};

  Pair() {
    pgolf::init_params(plan, store, 5);
    d_params.upload(store.values(), ctx.stream());
  }

  // Fresh N(0, 0.01) gradients for every tensor (the padding stays zero), on both sides.
  void set_gradients(int seed) {
    const auto& infos = plan.layout.infos();
    for (size_t i = 0; i < infos.size(); ++i) {
      const auto g = random_floats(infos[i].numel, uint32_t(1000 * seed + i), 0.1);
      std::copy(g.begin(), g.end(), store.grad(int(i)));
    }
    d_grads.upload(store.grads(), ctx.stream());
  }

  std::vector<float> cpu_params() const { return {store.values().begin(), store.values().end()}; }
  std::vector<float> gpu_params() { return download(ctx, d_params); }
};

struct StateCopy {
  std::vector<std::vector<float>> tensors;
  std::vector<std::string> names;
  std::vector<int64_t> counts;
};

StateCopy copy_state(pgolf::OptimizerSet& opt) {
  StateCopy out;
  for (const auto& s : opt.state()) {
    out.tensors.emplace_back(s.values.begin(), s.values.end());
    out.names.push_back(s.name);
  }
  out.counts = opt.step_counts();
  return out;
}

// The device set's state, through a host set of the same model.
StateCopy device_state(const Pair& f, const cuda::DeviceOptimizerSet& gpu) {
  pgolf::ParamStore<float> store(f.plan.layout);
  pgolf::OptimizerSet mirror(store, f.plan, f.t);
  gpu.download(mirror);
  return copy_state(mirror);
}

std::set<const float*> muon_tensors(const pgolf::OptimizerSet& opt) {
  std::set<const float*> out;
  for (const auto& p : opt.muon().params()) out.insert(p.value);
  return out;
}

// One Muon matrix's change in one step on each side (header: kNsFrobenius, kNsElement).
void expect_muon_change_close(const float* cpu_before, const float* cpu_after,
                              const float* gpu_before, const float* gpu_after, int64_t n,
                              const std::string& what) {
  std::vector<double> want(static_cast<size_t>(n)), got(static_cast<size_t>(n));
  double err2 = 0, ref2 = 0;
  for (int64_t k = 0; k < n; ++k) {
    want[k] = double(cpu_after[k]) - cpu_before[k];
    got[k] = double(gpu_after[k]) - gpu_before[k];
    err2 += (got[k] - want[k]) * (got[k] - want[k]);
    ref2 += want[k] * want[k];
  }
  ASSERT_GT(ref2, 0) << what << ": Muon did not move it";
  EXPECT_LT(std::sqrt(err2 / ref2), kNsFrobenius) << what << ": relative Frobenius error";
  expect_close(got, want, 0, kNsElement, what.c_str());
}

// |got - want| <= kFp32Rtol |want| + kAdamChangeFloor max |want - start| (header).
void expect_adam_close(const float* got, const float* want, const float* start, int64_t n,
                       const std::string& what) {
  double change = 0;
  for (int64_t k = 0; k < n; ++k) change = std::max(change, std::fabs(double(want[k]) - start[k]));
  ASSERT_GT(change, 0) << what << ": AdamW did not move it";
  int64_t bad = 0;
  for (int64_t k = 0; k < n; ++k) {
    const double tol = kFp32Rtol * std::fabs(double(want[k])) + kAdamChangeFloor * change;
    bad += !(std::fabs(double(got[k]) - want[k]) <= tol);
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << n << " elements out of tolerance";
}

void expect_state_close(const StateCopy& got, const StateCopy& want) {
  ASSERT_EQ(got.tensors.size(), want.tensors.size());
  for (size_t i = 0; i < got.tensors.size(); ++i)
    expect_close(got.tensors[i], want.tensors[i], kFp32Rtol, kStateFloor, want.names[i].c_str());
  EXPECT_EQ(got.counts, want.counts);
}

// Three steps of both sets from the same parameters and state, compared (header).
void expect_steps_match(Pair& f, cuda::DeviceOptimizerSet& gpu, double clip_norm) {
  const std::set<const float*> muon = muon_tensors(f.cpu);
  const auto& infos = f.plan.layout.infos();
  const std::vector<float> start = f.cpu_params();
  for (int s = 0; s < 3; ++s) {
    SCOPED_TRACE(testing::Message() << "step " << s + 1);
    f.set_gradients(s);
    const std::vector<float> cpu_before = f.cpu_params(), gpu_before = f.gpu_params();
    const double momentum = 0.85 + 0.05 * s;
    const double norm = f.cpu.step(kLrScales[s], momentum, clip_norm);
    if (clip_norm > 0) {
      EXPECT_GT(norm, clip_norm) << "the test means to clip";
    }
    gpu.set_step(kLrScales[s], momentum);
    gpu.step(clip_norm);
    const std::vector<float> cpu_after = f.cpu_params(), gpu_after = f.gpu_params();
    for (size_t i = 0; i < infos.size(); ++i) {
      if (!muon.count(f.store.value(int(i)))) continue;
      const int64_t at = f.store.value(int(i)) - f.store.values().data();
      expect_muon_change_close(&cpu_before[at], &cpu_after[at], &gpu_before[at], &gpu_after[at],
                               infos[i].numel, infos[i].name);
    }
  }
  const std::vector<float> cpu_end = f.cpu_params(), gpu_end = f.gpu_params();
  for (size_t i = 0; i < infos.size(); ++i) {
    if (muon.count(f.store.value(int(i))) || infos[i].numel == 0) continue;
    const int64_t at = f.store.value(int(i)) - f.store.values().data();
    expect_adam_close(&gpu_end[at], &cpu_end[at], &start[at], infos[i].numel, infos[i].name);
  }
  expect_state_close(device_state(f, gpu), copy_state(f.cpu));
}

TEST(CudaDeviceOptimizerSet, ThreeStepsMatchCpu) {
  PGOLF_REQUIRE_GPU();
  Pair f;
  cuda::DeviceOptimizerSet gpu(f.ctx, f.cpu, f.store, f.d_params.data(), f.d_grads.data());
  expect_steps_match(f, gpu, 0);
}

// The gradients' norm is ~0.1 sqrt(elements), far above 1: every step clips.
TEST(CudaDeviceOptimizerSet, ThreeClippedStepsMatchCpu) {
  PGOLF_REQUIRE_GPU();
  Pair f;
  cuda::DeviceOptimizerSet gpu(f.ctx, f.cpu, f.store, f.d_params.data(), f.d_grads.data());
  expect_steps_match(f, gpu, 1.0);
}

// Two CPU-only steps, then the GPU set takes over their state and step counts (as from a
// checkpoint) and both go on.
TEST(CudaDeviceOptimizerSet, ResumedStepsMatchCpu) {
  PGOLF_REQUIRE_GPU();
  Pair f;
  cuda::DeviceOptimizerSet gpu(f.ctx, f.cpu, f.store, f.d_params.data(), f.d_grads.data());
  for (int s = 10; s < 12; ++s) {
    f.set_gradients(s);
    f.cpu.step(1.0, 0.9);
  }
  ASSERT_EQ(f.cpu.step_counts(), std::vector<int64_t>(f.cpu.adam_groups().size(), 2));
  gpu.upload(f.cpu);
  f.d_params.upload(f.store.values(), f.ctx.stream());
  expect_steps_match(f, gpu, 0);
}

// The constructor's upload, download and an explicit upload keep every bit.
TEST(CudaDeviceOptimizerSet, StateRoundTripIsBitwise) {
  PGOLF_REQUIRE_GPU();
  Pair f;
  for (int s = 0; s < 2; ++s) {
    f.set_gradients(s);
    f.cpu.step(1.0, 0.9);
  }
  std::vector<int64_t> counts = f.cpu.step_counts();
  for (size_t i = 0; i < counts.size(); ++i) counts[i] += int64_t(i) + 5;
  f.cpu.set_step_counts(counts);
  cuda::DeviceOptimizerSet gpu(f.ctx, f.cpu, f.store, f.d_params.data(), f.d_grads.data());
  StateCopy got = device_state(f, gpu), want = copy_state(f.cpu);
  EXPECT_EQ(got.tensors, want.tensors);
  EXPECT_EQ(got.counts, want.counts);

  for (const auto& s : f.cpu.state())
    for (float& x : s.values) x = -2 * x;
  f.cpu.set_step_counts(std::vector<int64_t>(counts.size(), 1));
  gpu.upload(f.cpu);
  got = device_state(f, gpu);
  want = copy_state(f.cpu);
  EXPECT_EQ(got.tensors, want.tensors);
  EXPECT_EQ(got.counts, want.counts);
}

// step() captured once and replayed with two steps' set_step values gives the bits of two
// eager steps of a twin set on a copy of the same parameters and gradients.
TEST(CudaDeviceOptimizerSet, GraphReplayMatchesEagerSteps) {
  PGOLF_REQUIRE_GPU();
  Pair f;
  cuda::DeviceBuffer<float> d_params2(f.d_params.size()), d_grads2(f.d_grads.size());
  d_params2.upload(f.store.values(), f.ctx.stream());
  cuda::DeviceOptimizerSet eager(f.ctx, f.cpu, f.store, f.d_params.data(), f.d_grads.data());
  cuda::DeviceOptimizerSet replayed(f.ctx, f.cpu, f.store, d_params2.data(), d_grads2.data());
  constexpr double kClip = 1.0;

  struct Graph {
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    ~Graph() {
      if (exec) cudaGraphExecDestroy(exec);
      if (graph) cudaGraphDestroy(graph);
    }
  } g;
  for (int s = 0; s < 2; ++s) {
    f.set_gradients(s);
    d_grads2.upload(f.store.grads(), f.ctx.stream());
    const double momentum = 0.85 + 0.05 * s;
    eager.set_step(kLrScales[s], momentum);
    eager.step(kClip);  // before the capture: every kernel is loaded
    replayed.set_step(kLrScales[s], momentum);
    if (s == 0) {
      f.ctx.synchronize();
      ASSERT_EQ(cudaStreamBeginCapture(f.ctx.stream(), cudaStreamCaptureModeGlobal), cudaSuccess);
      replayed.step(kClip);
      ASSERT_EQ(cudaStreamEndCapture(f.ctx.stream(), &g.graph), cudaSuccess);
      ASSERT_EQ(cudaGraphInstantiate(&g.exec, g.graph, 0), cudaSuccess);
    }
    ASSERT_EQ(cudaGraphLaunch(g.exec, f.ctx.stream()), cudaSuccess);
  }
  f.ctx.synchronize();
  EXPECT_EQ(download(f.ctx, d_params2), f.gpu_params());
  EXPECT_EQ(download(f.ctx, d_grads2), download(f.ctx, f.d_grads));  // clipped alike
  const StateCopy got = device_state(f, replayed), want = device_state(f, eager);
  EXPECT_EQ(got.tensors, want.tensors);
  EXPECT_EQ(got.counts, want.counts);
}

}  // namespace
