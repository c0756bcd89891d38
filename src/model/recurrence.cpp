#include "model/recurrence.h"

#include <algorithm>

#include "core/error.h"

namespace pgolf {

int64_t DepthSchedule::active_repeats(int64_t step, double frac, int64_t num_repeats) const {
  if (!progressive_repeats.empty()) {
    size_t phase = 0;
    while (phase < progressive_fractions.size() && frac >= progressive_fractions[phase]) ++phase;
    return std::min(progressive_repeats[phase], num_repeats);
  }
  return step < recur_start_step ? 1 : num_repeats;
}

void validate(const DepthSchedule& s, const ModelConfig& cfg) {
  PGOLF_CHECK(s.recur_start_step >= 0, "recur_start_step must be >= 0, got ", s.recur_start_step);
  PGOLF_CHECK(s.recur_init == "copy" || s.recur_init == "identity",
              "recur_init must be \"copy\" or \"identity\", got \"", s.recur_init, "\"");
  PGOLF_CHECK(s.recur_init != "identity" || !cfg.block_scalars(),
              "recur_init \"identity\" needs scalar_sharing \"layer\" (with block scalars the "
              "repeats read their first use's scales and cannot start as identities)");
  const auto& k = s.progressive_repeats;
  const auto& f = s.progressive_fractions;
  if (k.empty()) {
    PGOLF_CHECK(f.empty(), "progressive_fractions needs progressive_repeats");
    return;
  }
  PGOLF_CHECK(s.recur_start_step == 0, "give recur_start_step or progressive_repeats, not both");
  PGOLF_CHECK(f.size() + 1 == k.size(), "progressive_repeats has ", k.size(),
              " phases, so progressive_fractions needs ", k.size() - 1, " start fractions, got ",
              f.size());
  for (size_t i = 0; i < k.size(); ++i) {
    PGOLF_CHECK(k[i] >= 1 && k[i] <= cfg.num_repeats(), "progressive_repeats entry ", k[i],
                " is not between 1 and the schedule's ", cfg.num_repeats(), " repeats");
    PGOLF_CHECK(i == 0 || k[i] > k[i - 1], "progressive_repeats must increase");
  }
  for (size_t i = 0; i < f.size(); ++i)
    PGOLF_CHECK(f[i] > 0 && f[i] < 1 && (i == 0 || f[i] > f[i - 1]),
                "progressive_fractions must increase within (0, 1)");
}

template <typename T>
void switch_on_repeats(Model<T>& model, int64_t from, int64_t to, const std::string& recur_init) {
  const ModelPlan& plan = model.plan();
  auto& store = model.params();
  const auto turned_on = [&](int64_t v) {
    const int64_t r = plan.wiring[size_t(v)].repeat;
    return r >= from && r < to;
  };
  auto copy = [&](const std::vector<ModelPlan::RepeatCopy>& pairs) {
    for (const auto& c : pairs)
      if (turned_on(c.layer))
        std::copy_n(store.value(c.source), plan.layout.info(c.source).numel, store.value(c.copy));
  };
  copy(plan.untied_matrix_sources);
  copy(plan.repeat_scalar_sources);
  if (recur_init == "identity") {
    PGOLF_CHECK(!plan.cfg.block_scalars(), "recur_init \"identity\" needs scalar_sharing \"layer\"");
    const int64_t d = plan.cfg.model_dim;
    for (int64_t v = 0; v < int64_t(plan.layers.size()); ++v) {
      if (!turned_on(v)) continue;
      const LayerParams& lp = plan.layers[size_t(v)];
      std::fill_n(store.value(lp.attn_scale), d, T(0));
      std::fill_n(store.value(lp.mlp_scale), d, T(0));
      std::fill_n(store.value(lp.resid_mix), d, T(1));
      std::fill_n(store.value(lp.resid_mix) + d, d, T(0));
    }
  }
  model.set_active_repeats(to);
}

template void switch_on_repeats<float>(Model<float>&, int64_t, int64_t, const std::string&);
template void switch_on_repeats<double>(Model<double>&, int64_t, int64_t, const std::string&);

}  // namespace pgolf
