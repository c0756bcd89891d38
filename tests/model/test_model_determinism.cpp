// Determinism is a property the tests keep (STYLE.md): for a given thread count the float
// model's loss and every gradient are bitwise identical from run to run, also after the
// arena was re-planned for another shape. (pgolf's own kernels give the same bits for any
// thread count — each kernel test checks that — but OpenBLAS's single-threaded GEMM rounds
// differently from its threaded one, so whole-model results are compared at one count.)
#include <gtest/gtest.h>

#include <vector>

#include "core/philox.h"
#include "model/init.h"
#include "model/model.h"

namespace pgolf {
namespace {

std::vector<float> run(Model<float>& m, const std::vector<int32_t>& x,
                       const std::vector<int32_t>& y, int64_t B, double* loss) {
  *loss = m.forward(x.data(), y.data(), B, int64_t(x.size()) / B);
  m.params().zero_grads();
  m.backward();
  return {m.params().grads().begin(), m.params().grads().end()};
}

TEST(ModelDeterminism, GradientsAreBitwiseEqualFromRunToRun) {
  ModelConfig c;
  c.vocab_size = 64;
  c.num_layers = 2;
  c.layer_schedule = {0, 1, 0, 1};
  c.model_dim = 64;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.bigram_vocab_size = 31;
  c.xsa_last_n = 2;
  c.ve_enabled = true;
  c.ve_layers = {1};
  c.ve_dim = 16;
  c.gated_attention = true;
  c.value_residual = true;
  Model<float> m(make_plan(c));
  init_params(m.plan(), m.params(), 3);
  // Perturb the zero-initialised projections so every path carries gradient.
  for (const auto& b : m.plan().blocks)
    for (int i : {b.attn_proj, b.mlp_proj}) {
      Philox rng(11, uint64_t(i));
      float* w = m.params().value(i);
      for (int64_t k = 0; k < m.plan().layout.info(i).numel; ++k)
        w[k] = float(0.02 * rng.normal(uint64_t(k)));
    }
  std::vector<int32_t> x(128), y(128);
  for (size_t i = 0; i < x.size(); ++i) {
    x[i] = int32_t((i * 37 + 5) % 64);
    y[i] = int32_t((i * 11 + 3) % 64);
  }
  double l1, l2, l3, other;
  auto g1 = run(m, x, y, 2, &l1);
  auto g2 = run(m, x, y, 2, &l2);
  run(m, x, y, 4, &other);  // another shape: the arena is planned anew
  auto g3 = run(m, x, y, 2, &l3);
  EXPECT_NE(l1, other);  // different sequences, so the shape change is real
  EXPECT_EQ(l1, l2);
  EXPECT_EQ(l1, l3);
  EXPECT_TRUE(g1 == g2) << "second run";
  EXPECT_TRUE(g1 == g3) << "after another shape";
}

}  // namespace
}  // namespace pgolf
