#include "model/untie.h"

#include <algorithm>

namespace pgolf {

std::unique_ptr<Model<float>> untied_twin(const Model<float>& model) {
  ModelConfig cfg = model.config();
  cfg.repeat_untie_mlp = "full";
  cfg.repeat_untie_attn = true;
  auto twin = std::make_unique<Model<float>>(make_plan(cfg));
  const ParamLayout& from = model.plan().layout;
  const ParamLayout& to = twin->plan().layout;
  // Every tensor the model has keeps its values (names are stable across untying) ...
  for (const ParamInfo& p : to.infos()) {
    const int i = from.find(p.name);
    if (i >= 0) std::copy_n(model.params().value(i), p.numel, twin->params().value(to.find(p.name)));
  }
  // ... and a matrix that was shared starts as the block's.
  for (const auto& r : twin->plan().untied_matrix_sources)
    if (from.find(to.info(r.copy).name) < 0)
      std::copy_n(twin->params().value(r.source), to.info(r.source).numel,
                  twin->params().value(r.copy));
  twin->set_active_repeats(model.active_repeats());
  return twin;
}

}  // namespace pgolf
