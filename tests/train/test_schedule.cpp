// The LR multiplier and Muon momentum warm-up against hand-computed values (SPEC §3).
#include <gtest/gtest.h>

#include "train/schedule.h"

namespace pgolf {
namespace {

TEST(Schedule, WarmdownByIterations) {
  TrainConfig t;
  t.iterations = 10;
  t.warmdown_iters = 4;
  t.max_wallclock_seconds = 0;
  // Steps 0-5 full LR; 6..9 give (10-6)/4 = 1, 0.75, 0.5, 0.25.
  EXPECT_EQ(lr_multiplier(t, 0, 0), 1.0);
  EXPECT_EQ(lr_multiplier(t, 5, 0), 1.0);
  EXPECT_EQ(lr_multiplier(t, 6, 0), 1.0);
  EXPECT_EQ(lr_multiplier(t, 7, 0), 0.75);
  EXPECT_EQ(lr_multiplier(t, 9, 0), 0.25);
  EXPECT_EQ(lr_multiplier(t, 10, 0), 1.0);  // the reference's range ends at iterations
  t.warmdown_iters = 0;
  EXPECT_EQ(lr_multiplier(t, 9, 0), 1.0);
  t.warmdown_iters = 20;  // longer than the run: starts at step 0
  EXPECT_EQ(lr_multiplier(t, 0, 0), 0.5);
}

TEST(Schedule, WarmdownByWallClock) {
  TrainConfig t;
  t.max_wallclock_seconds = 10;  // 10,000 ms
  t.warmdown_iters = 10;
  // 100 steps in 5,000 ms: 50 ms/step, warmdown lasts 500 ms; 5,000 ms remain → full LR.
  EXPECT_EQ(lr_multiplier(t, 100, 5000), 1.0);
  // 190 steps in 9,750 ms: 51.3 ms/step → warmdown 513 ms > 250 ms remaining.
  EXPECT_NEAR(lr_multiplier(t, 190, 9750), 250.0 / (10 * 9750.0 / 190), 1e-12);
  EXPECT_EQ(lr_multiplier(t, 200, 12000), 0.0);  // past the cap
}

TEST(Schedule, MuonMomentumWarmup) {
  TrainConfig t;
  t.muon_momentum_warmup_start = 0.85;
  t.muon_momentum = 0.95;
  t.muon_momentum_warmup_steps = 500;
  EXPECT_DOUBLE_EQ(muon_momentum_at(t, 0), 0.85);
  EXPECT_DOUBLE_EQ(muon_momentum_at(t, 250), 0.90);
  EXPECT_DOUBLE_EQ(muon_momentum_at(t, 500), 0.95);
  EXPECT_DOUBLE_EQ(muon_momentum_at(t, 9000), 0.95);
  t.muon_momentum_warmup_steps = 0;
  EXPECT_DOUBLE_EQ(muon_momentum_at(t, 0), 0.95);
}

}  // namespace
}  // namespace pgolf
