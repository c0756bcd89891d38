// Score-first TTT (eval/ttt.h, SPEC §4): lr 0 is the sliding evaluation; an instrumented run
// proves every trained target was scored first and the last chunk is never trained; the
// adapted-parameter rules; SGD with momentum as torch's.
#include "eval/ttt.h"

#include <gtest/gtest.h>

#include <cstring>
#include <map>

#include "core/error.h"
#include "eval/sliding.h"
#include "eval/sliding_test_support.h"
#include "optim/sgd.h"

using namespace pgolf;
using pgolf::test::small_random_model;
using pgolf::test::test_luts;
using pgolf::test::test_tokens;

namespace {

TttOptions small_ttt() {
  TttOptions o;
  o.chunk_tokens = 40;
  o.epochs = 2;
  o.lr = 0.01;
  o.batch_seqs = 2;
  o.micro_seqs = 1;
  return o;
}

}  // namespace

// One window per forward on both sides: a batch's composition (which windows share a
// forward; TTT's batches stop at chunk ends) moves results in the last bits.
TEST(Ttt, LearningRateZeroIsTheSlidingEvaluation) {
  const auto tokens = test_tokens(203);
  const ByteLuts luts = test_luts();
  auto reference = small_random_model<float>();
  const EvalResult sliding = evaluate_sliding(*reference, tokens, 16, 4, 1, luts);
  for (const char* optimizer : {"sgd", "adamw"}) {
    auto model = small_random_model<float>();
    TttOptions o = small_ttt();
    o.lr = 0;
    o.optimizer = optimizer;
    const EvalResult ttt = evaluate_ttt(*model, tokens, 16, 4, 1, luts, o);
    EXPECT_EQ(ttt.tokens, sliding.tokens);
    EXPECT_EQ(ttt.bytes, sliding.bytes);
    EXPECT_EQ(ttt.val_loss, sliding.val_loss) << optimizer;
    EXPECT_EQ(ttt.val_bpb, sliding.val_bpb) << optimizer;
    const auto a = model->params().values(), b = reference->params().values();
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size_bytes()), 0) << "weights unchanged";
    // With 3 windows per forward the two batch differently but agree to rounding.
    auto again = small_random_model<float>();
    const EvalResult batched = evaluate_ttt(*again, tokens, 16, 4, 3, luts, o);
    EXPECT_NEAR(batched.val_loss, sliding.val_loss, 1e-6 * sliding.val_loss) << optimizer;
  }
}

TEST(Ttt, EveryTrainedTargetWasScoredFirstAndTheLastChunkNeverTrains) {
  const int64_t n = 203, seq = 16;
  const auto tokens = test_tokens(n);
  auto model = small_random_model<float>();
  const TttOptions o = small_ttt();
  std::vector<int> scored(n, 0);  // times each target was scored
  std::vector<TttEvent> events;
  int64_t trains = 0, last_chunk = 0;
  TttHooks hooks;
  hooks.on_event = [&](const TttEvent& e) {
    events.push_back(e);
    last_chunk = std::max(last_chunk, e.chunk);
    if (!e.train) {
      for (int64_t t = e.begin; t < e.end; ++t) ++scored[t];
      return;
    }
    ++trains;
    for (int64_t t = e.begin; t < e.end; ++t)
      ASSERT_EQ(scored[t], 1) << "target " << t << " trained before it was scored";
    EXPECT_GE(e.begin, e.chunk * o.chunk_tokens);
    EXPECT_LE(e.end, (e.chunk + 1) * o.chunk_tokens) << "training stays inside its chunk";
  };
  const EvalResult r = evaluate_ttt(*model, tokens, seq, 4, 3, test_luts(), o, hooks);
  EXPECT_EQ(last_chunk, 5);  // ceil(203 / 40) = 6 chunks
  for (const TttEvent& e : events) EXPECT_FALSE(e.train && e.chunk == last_chunk);
  for (int64_t t = 0; t < n; ++t) ASSERT_EQ(scored[t], 1) << "target " << t;
  EXPECT_EQ(r.tokens, n);
  // 5 trained chunks × 2 epochs × ceil(2 sequences of 16 in 40 targets / 2 per step).
  EXPECT_EQ(trains, 5 * 2 * 1);
  // Scores after training differ from the sliding evaluation: the weights did adapt.
  auto fresh = small_random_model<float>();
  EXPECT_NE(r.val_loss, evaluate_sliding(*fresh, tokens, seq, 4, 3, test_luts()).val_loss);
}

TEST(Ttt, MicroBatchesAverageToTheFullBatch) {
  const auto tokens = test_tokens(203);
  auto a = small_random_model<float>(), b = small_random_model<float>();
  TttOptions o = small_ttt();
  o.micro_seqs = 2;
  const EvalResult whole = evaluate_ttt(*a, tokens, 16, 4, 3, test_luts(), o);
  o.micro_seqs = 1;
  const EvalResult split = evaluate_ttt(*b, tokens, 16, 4, 3, test_luts(), o);
  EXPECT_NEAR(whole.val_loss, split.val_loss, 1e-5 * whole.val_loss);
  EXPECT_NE(whole.val_loss, evaluate_sliding(*small_random_model<float>(), tokens, 16, 4, 3,
                                             test_luts()).val_loss);
}

TEST(Ttt, FreezeRuleKeepsSharedMatricesOfLaterLayers) {
  auto model = small_random_model<float>();  // schedule {0, 1, 0}
  const ModelPlan& plan = model->plan();
  TttOptions o;
  o.freeze_blocks = 1;  // layer 0 frozen; block 0 is also used by layer 2, so it adapts
  std::vector<bool> adapted = ttt_adapted(plan, o);
  EXPECT_FALSE(adapted[size_t(plan.layers[0].attn_scale)]);
  EXPECT_FALSE(adapted[size_t(plan.layers[0].q_gain)]);
  EXPECT_TRUE(adapted[size_t(plan.layers[1].attn_scale)]);
  EXPECT_TRUE(adapted[size_t(plan.blocks[0].c_q)]);
  EXPECT_TRUE(adapted[size_t(plan.tok_emb)]);
  o.freeze_blocks = 2;  // layers 0, 1: block 1 only serves layer 1, so it freezes
  adapted = ttt_adapted(plan, o);
  EXPECT_FALSE(adapted[size_t(plan.blocks[1].mlp_fc)]);
  EXPECT_TRUE(adapted[size_t(plan.blocks[0].mlp_fc)]);
  EXPECT_TRUE(adapted[size_t(plan.layers[2].resid_mix)]);
  o.freeze_blocks = 3;
  adapted = ttt_adapted(plan, o);
  EXPECT_FALSE(adapted[size_t(plan.blocks[0].mlp_fc)]);
  EXPECT_TRUE(adapted[size_t(plan.bigram_embed)]);  // not a layer's: adapts

  // #490's rule: the last layer, names with norm/scale/gain/lm_head, and tok_emb.
  o = TttOptions{};
  o.adapt_last = 1;
  adapted = ttt_adapted(plan, o);
  EXPECT_TRUE(adapted[size_t(plan.blocks[0].c_q)]);   // block 0 serves layer 2
  EXPECT_FALSE(adapted[size_t(plan.blocks[1].c_q)]);
  EXPECT_FALSE(adapted[size_t(plan.layers[1].resid_mix)]);
  EXPECT_TRUE(adapted[size_t(plan.layers[1].attn_scale)]);
  EXPECT_TRUE(adapted[size_t(plan.layers[0].q_gain)]);
  EXPECT_TRUE(adapted[size_t(plan.tok_emb)]);
  EXPECT_FALSE(adapted[size_t(plan.bigram_embed)]);
  EXPECT_TRUE(adapted[size_t(plan.bigram_scale)]);
}

// A scoring temperature divides the capped logits: 1 is the plain result; another value
// scores differently, and the same in sliding evaluation and in TTT at lr 0.
TEST(Ttt, ScoringTemperature) {
  const auto tokens = test_tokens(203);
  const ByteLuts luts = test_luts();
  auto m = small_random_model<float>();
  const EvalResult plain = evaluate_sliding(*m, tokens, 16, 4, 1, luts);
  EXPECT_EQ(evaluate_sliding(*m, tokens, 16, 4, 1, luts, false, 1.0).val_loss, plain.val_loss);
  const EvalResult warm = evaluate_sliding(*m, tokens, 16, 4, 1, luts, false, 0.9);
  EXPECT_NE(warm.val_loss, plain.val_loss);
  EXPECT_EQ(warm.tokens, plain.tokens);
  TttOptions o = small_ttt();
  o.lr = 0;
  o.temperature = 0.9;
  EXPECT_EQ(evaluate_ttt(*m, tokens, 16, 4, 1, luts, o).val_loss, warm.val_loss);
}

TEST(Ttt, RejectsBadOptions) {
  const auto tokens = test_tokens(50);
  auto model = small_random_model<float>();
  for (auto bad : std::vector<std::function<void(TttOptions&)>>{
           [](TttOptions& o) { o.chunk_tokens = 0; }, [](TttOptions& o) { o.lr = -1; },
           [](TttOptions& o) { o.momentum = 1; }, [](TttOptions& o) { o.batch_seqs = 0; },
           [](TttOptions& o) { o.optimizer = "lion"; }, [](TttOptions& o) { o.epochs = -1; },
           [](TttOptions& o) { o.temperature = 0; }}) {
    TttOptions o = small_ttt();
    bad(o);
    EXPECT_THROW(evaluate_ttt(*model, tokens, 16, 4, 3, test_luts(), o), Error);
  }
}

// torch.optim.SGD(momentum=0.9): buf = g, then buf = 0.9 buf + g; p -= lr buf.
TEST(Sgd, MatchesTorchMomentum) {
  double value[2] = {1.0, -2.0}, grad[2] = {0.5, 0.25};
  ParamRef<double> ref{value, grad, 1, 2};
  SgdMomentum<double> sgd({ref}, 0.9);
  sgd.step(0.1);  // buf = g
  EXPECT_DOUBLE_EQ(value[0], 1.0 - 0.1 * 0.5);
  grad[0] = 1.0;
  sgd.step(0.1);  // buf = 0.9 * 0.5 + 1.0 = 1.45
  EXPECT_DOUBLE_EQ(value[0], 1.0 - 0.05 - 0.1 * 1.45);
  EXPECT_DOUBLE_EQ(value[1], -2.0 - 0.1 * 0.25 - 0.1 * (0.9 * 0.25 + 0.25));
}

// Untied TTT (#686's TTT_UNTIE): the twin computes the same function, so lr 0 gives the
// tied score; with learning, the twin adapts (a score differs from tied TTT's) and the
// caller's model is left as it was.
TEST(Ttt, UntiedAdaptsTheTwinAndLeavesTheModel) {
  const auto tokens = test_tokens(203);
  const ByteLuts luts = test_luts();
  TttOptions o = small_ttt();
  o.lr = 0;
  auto tied_model = small_random_model<float>();
  const EvalResult tied0 = evaluate_ttt(*tied_model, tokens, 16, 4, 1, luts, o);
  o.untie = true;
  auto untied_model = small_random_model<float>();
  const EvalResult untied0 = evaluate_ttt(*untied_model, tokens, 16, 4, 1, luts, o);
  EXPECT_EQ(untied0.val_loss, tied0.val_loss);

  o.lr = 0.05;
  auto before = small_random_model<float>();
  auto model = small_random_model<float>();
  const EvalResult untied = evaluate_ttt(*model, tokens, 16, 4, 1, luts, o);
  const auto a = model->params().values(), b = before->params().values();
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size_bytes()), 0) << "the model is not adapted";
  o.untie = false;
  const EvalResult tied = evaluate_ttt(*model, tokens, 16, 4, 1, luts, o);
  EXPECT_NE(untied.val_loss, tied.val_loss);
  EXPECT_LT(untied.val_loss, untied0.val_loss);  // adapting helps on this sequence
}
