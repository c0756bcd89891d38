// Parallel Muon's pieces that a single process can check (the collectives themselves run
// in tests/dist/, under mpirun): how matrices are dealt to ranks, and Muon updating a shard
// — exactly the full step on its matrices, nothing on the others.
#include <gtest/gtest.h>

#include <vector>

#include "dist/comm.h"
#include "optim/muon.h"
#include "optim/muon_shards.h"
#include "support/gradcheck.h"

namespace {

using pgolf::ParamRef;

TEST(MuonShards, DealsLargestFirstToTheLeastLoadedRank) {
  // Order 8, 4, 4, 2, 1: 8 → r0; 4 → r1; 4 → r1 (4 < 8); 2 → r0 (8 = 8, lowest rank);
  // 1 → r1 (8 < 10).
  EXPECT_EQ(pgolf::deal_largest_first({1, 8, 4, 4, 2}, 2), (std::vector<int>{1, 0, 1, 1, 0}));
  EXPECT_EQ(pgolf::deal_largest_first({1, 8, 4}, 1), (std::vector<int>{0, 0, 0}));
  // More ranks than matrices: each matrix gets its own rank.
  EXPECT_EQ(pgolf::deal_largest_first({3, 5}, 4), (std::vector<int>{1, 0}));
}

TEST(MuonShards, LargestFirstKeepsTiesInIndexOrder) {
  EXPECT_EQ(pgolf::largest_first({2, 5, 2, 5}), (std::vector<size_t>{1, 3, 0, 2}));
}

TEST(MuonShards, AWorldOfOneOwnsEveryMatrix) {
  std::vector<float> v(12, 0.1f), g(12, 0.2f);
  pgolf::Muon<float> muon({{v.data(), g.data(), 2, 3}, {v.data() + 6, g.data() + 6, 3, 2}});
  pgolf::MuonShards shards(muon, pgolf::dist::world());
  EXPECT_EQ(shards.owned(), (std::vector<bool>{true, true}));
}

TEST(MuonShards, AShardStepIsTheFullStepOnItsMatricesOnly) {
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{6, 4}, {3, 8}, {5, 5}};
  auto make = [&](std::vector<std::vector<float>>& v, std::vector<std::vector<float>>& g) {
    uint32_t seed = 11;
    for (auto [r, c] : shapes) {
      auto x = pgolf::test::random_vector(r * c, seed++, 0.05);
      auto y = pgolf::test::random_vector(r * c, seed++, 0.01);
      v.emplace_back(x.begin(), x.end());
      g.emplace_back(y.begin(), y.end());
    }
    std::vector<ParamRef<float>> refs;
    for (size_t i = 0; i < shapes.size(); ++i)
      refs.push_back({v[i].data(), g[i].data(), shapes[i].first, shapes[i].second});
    return pgolf::Muon<float>(refs);
  };
  std::vector<std::vector<float>> v_full, g_full, v_shard, g_shard, v_start, g_start;
  pgolf::Muon<float> full = make(v_full, g_full), shard = make(v_shard, g_shard);
  make(v_start, g_start);  // the values before any step
  const std::vector<bool> only = {true, false, true};
  for (int step = 0; step < 2; ++step) {  // the second step reads the first's momentum
    full.step(0.02, 0.95, 0.04, 5);
    shard.step(0.02, 0.95, 0.04, 5, only);
  }
  for (size_t i = 0; i < shapes.size(); ++i) {
    const int64_t n = shapes[i].first * shapes[i].second;
    for (int64_t j = 0; j < n; ++j) {
      if (only[i]) {
        ASSERT_EQ(v_shard[i][size_t(j)], v_full[i][size_t(j)]) << "matrix " << i;
        ASSERT_EQ(shard.momentum(i)[j], full.momentum(i)[j]) << "matrix " << i;
      } else {
        ASSERT_EQ(v_shard[i][size_t(j)], v_start[i][size_t(j)]) << "matrix " << i;
        ASSERT_EQ(shard.momentum(i)[j], 0.0f) << "matrix " << i;
      }
    }
  }
}

}  // namespace
