// Checkpoints (SPEC §5): names, shapes, dtypes and the config travel together; a load
// reports the first mismatch in one sentence.
#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <string>

#include "core/error.h"
#include "model/checkpoint.h"
#include "model/init.h"
#include "support/temp_dir_test.h"

namespace pgolf {
namespace {

using test::error_of;

ModelConfig small_config() {
  ModelConfig c;
  c.vocab_size = 50;
  c.num_layers = 2;
  c.layer_schedule = {0, 1, 1};
  c.model_dim = 32;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.bigram_vocab_size = 9;
  c.bigram_dim = 8;
  c.ve_enabled = true;
  c.ve_dim = 8;
  c.ve_layers = {2};
  c.value_residual = true;
  return c;
}

class Checkpoint : public test::TempDirTest {
 protected:
  Checkpoint() : TempDirTest("pgolf_checkpoint"), model_(make_plan(small_config())) {
    init_params(model_.plan(), model_.params(), 7);
    file_ = to_safetensors(model_.plan(), model_.params().values().data());
  }
  std::string load_error(const io::StFile& f) {
    return error_of([&] {
      ModelPlan plan = make_plan(checkpoint_config(f, "ckpt"));
      std::vector<float> values(size_t(plan.layout.total()));
      load_tensors(f, "ckpt", plan, values.data());
    });
  }
  io::StTensor& tensor(const std::string& name) {
    for (auto& t : file_.tensors)
      if (t.name == name) return t;
    throw std::runtime_error("no tensor " + name);
  }
  Model<float> model_;
  io::StFile file_;
};

TEST_F(Checkpoint, RoundTripThroughAFileIsExact) {
  const std::string file = path("model.safetensors");
  save_checkpoint(file, model_);
  auto loaded = load_checkpoint<float>(file);
  EXPECT_EQ(to_json(loaded->config()), to_json(model_.config()));
  ASSERT_EQ(loaded->params().values().size(), model_.params().values().size());
  for (const auto& p : model_.plan().layout.infos())
    for (int64_t i = 0; i < p.numel; ++i)
      ASSERT_EQ(loaded->params().values()[size_t(p.offset + i)],
                model_.params().values()[size_t(p.offset + i)])
          << p.name;
}

TEST_F(Checkpoint, EveryParameterIsStoredUnderItsSpecName) {
  EXPECT_EQ(file_.tensors.size(), model_.plan().layout.infos().size());
  EXPECT_NE(file_.find("blocks.2.attn.vr_lambda"), nullptr);
  EXPECT_NE(file_.find("ve_layer_scales.0"), nullptr);
  EXPECT_EQ(file_.find("bigram.scale")->shape, Shape{});
  EXPECT_EQ(file_.find("blocks.1.mlp.proj.weight")->shape, (Shape{32, 64}));
}

TEST_F(Checkpoint, MissingTensorIsNamed) {
  file_.tensors.erase(file_.tensors.begin() + 3);
  std::string name = model_.plan().layout.info(3).name;
  EXPECT_NE(load_error(file_).find("missing tensor " + name), std::string::npos)
      << load_error(file_);
}

TEST_F(Checkpoint, WrongShapeIsNamed) {
  tensor("smear.gate").shape = {16, 2};
  std::string e = load_error(file_);
  EXPECT_NE(e.find("smear.gate has shape [16, 2] but the config needs [32]"), std::string::npos)
      << e;
}

TEST_F(Checkpoint, WrongDtypeIsNamed) {
  auto& t = tensor("smear.gate");
  t.dtype = io::DType::F16;
  t.data.resize(t.data.size() / 2);
  std::string e = load_error(file_);
  EXPECT_NE(e.find("smear.gate has dtype F16, expected F32"), std::string::npos) << e;
}

TEST_F(Checkpoint, NonFiniteValueIsNamed) {
  auto& t = tensor("blocks.1.attn_scale");
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::memcpy(t.data.data() + 4 * 5, &nan, 4);
  std::string e = load_error(file_);
  EXPECT_NE(e.find("blocks.1.attn_scale holds a non-finite value (nan) at element 5"),
            std::string::npos)
      << e;
}

TEST_F(Checkpoint, ExtraTensorIsNamed) {
  float one = 1;
  file_.add_f32("blocks.9.attn_scale", {1}, &one);
  std::string e = load_error(file_);
  EXPECT_NE(e.find("holds tensor blocks.9.attn_scale"), std::string::npos) << e;
}

TEST_F(Checkpoint, MissingOrBrokenConfigIsAnError) {
  io::StFile no_meta = file_;
  no_meta.metadata.clear();
  EXPECT_NE(load_error(no_meta).find("no __metadata__.pgolf_config"), std::string::npos);
  io::StFile bad_json = file_;
  bad_json.metadata[kConfigMetadataKey] = "{not json";
  EXPECT_NE(load_error(bad_json).find("not valid JSON"), std::string::npos);
  io::StFile bad_key = file_;
  bad_key.metadata[kConfigMetadataKey] = R"({"num_layerz": 2})";
  EXPECT_NE(load_error(bad_key).find("num_layerz"), std::string::npos);
}

// A config that no longer matches its tensors (here: one more block) is caught by shape.
TEST_F(Checkpoint, ConfigAndTensorsMustAgree) {
  auto cfg = nlohmann::json::parse(file_.metadata[kConfigMetadataKey]);
  cfg["model_dim"] = 64;
  file_.metadata[kConfigMetadataKey] = cfg.dump();
  EXPECT_NE(load_error(file_).find("tok_emb.weight has shape [50, 32] but the config needs "
                                   "[50, 64]"),
            std::string::npos)
      << load_error(file_);
}

}  // namespace
}  // namespace pgolf
