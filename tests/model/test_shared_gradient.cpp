// Depth recurrence (issue 6): a block matrix used by several virtual layers gets the sum of
// its per-use gradients. The tied model (schedule {0, 1, 0, 1}) is compared with its untied
// twin (schedule {0, 1, 2, 3}, blocks 2 and 3 copies of 0 and 1): the same function, so each
// tied matrix's gradient must equal the sum of its copies' gradients.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/philox.h"
#include "model/model.h"
#include "support/small_configs.h"

namespace pgolf {
namespace {

ModelConfig recurrent_config(std::vector<int64_t> schedule, int64_t blocks) {
  ModelConfig c = test::small_switches_on(19, blocks, std::move(schedule));
  c.ve_enabled = true;
  c.ve_dim = 5;
  c.ve_layers = {1, 3};
  return c;
}

// "blocks.{p}.<rest>" of a block matrix, or "" for any other tensor.
std::string block_matrix_rest(const std::string& name, int64_t& block) {
  static const char* const kMatrices[] = {".attn.c_q.", ".attn.c_k.", ".attn.c_v.",
                                          ".attn.proj.", ".mlp.fc.", ".mlp.proj."};
  if (name.rfind("blocks.", 0) != 0) return "";
  const size_t dot = name.find('.', 7);
  const std::string rest = name.substr(dot);
  for (const char* m : kMatrices)
    if (rest.rfind(m, 0) == 0) {
      block = std::stoll(name.substr(7, dot - 7));
      return rest;
    }
  return "";
}

TEST(SharedGradient, TiedMatrixGradientIsTheSumOfItsUses) {
  Model<double> tied(make_plan(recurrent_config({0, 1, 0, 1}, 2)));
  Model<double> untied(make_plan(recurrent_config({0, 1, 2, 3}, 4)));
  const auto& tl = tied.plan().layout;
  const auto& ul = untied.plan().layout;
  // Random tied weights; the untied twin copies them (blocks 2, 3 from blocks 0, 1).
  for (size_t i = 0; i < tl.infos().size(); ++i) {
    Philox rng(31, i);
    double* v = tied.params().value(int(i));
    for (int64_t k = 0; k < tl.info(int(i)).numel; ++k) v[k] = 0.4 * rng.normal(uint64_t(k));
  }
  for (const ParamInfo& p : ul.infos()) {
    int64_t block = -1;
    const std::string rest = block_matrix_rest(p.name, block);
    const std::string source =
        rest.empty() ? p.name : "blocks." + std::to_string(block % 2) + rest;
    const int src = tl.find(source);
    ASSERT_GE(src, 0) << source;
    std::copy_n(tied.params().value(src), p.numel, untied.params().value(ul.find(p.name)));
  }

  const int64_t B = 2, T = 6;
  std::vector<int32_t> x(B * T), y(B * T);
  for (int64_t i = 0; i < B * T; ++i) {
    x[size_t(i)] = int32_t((7 * i + 3) % 19);
    y[size_t(i)] = int32_t((5 * i + 1) % 19);
  }
  tied.params().zero_grads();
  untied.params().zero_grads();
  const double lt = tied.forward(x.data(), y.data(), B, T);
  const double lu = untied.forward(x.data(), y.data(), B, T);
  ASSERT_NEAR(lt, lu, 1e-13 * std::abs(lt)) << "the twins compute the same function";
  tied.backward();
  untied.backward();

  int matrices = 0;
  for (const ParamInfo& p : tl.infos()) {
    const double* gt = tied.params().grad(tl.find(p.name));
    int64_t block = -1;
    const std::string rest = block_matrix_rest(p.name, block);
    if (rest.empty()) {  // not shared: the same gradient
      const double* gu = untied.params().grad(ul.find(p.name));
      for (int64_t k = 0; k < p.numel; ++k)
        ASSERT_NEAR(gt[k], gu[k], 1e-12 * (1 + std::abs(gt[k]))) << p.name;
      continue;
    }
    ++matrices;
    const double* first = untied.params().grad(ul.find(p.name));
    const double* second =
        untied.params().grad(ul.find("blocks." + std::to_string(block + 2) + rest));
    double norm_second = 0;
    for (int64_t k = 0; k < p.numel; ++k) {
      ASSERT_NEAR(gt[k], first[k] + second[k], 1e-12 * (1 + std::abs(gt[k]))) << p.name;
      norm_second += second[k] * second[k];
    }
    EXPECT_GT(norm_second, 0) << p.name << ": the second use carries gradient";
  }
  EXPECT_EQ(matrices, 12);
}

}  // namespace
}  // namespace pgolf
