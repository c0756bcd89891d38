// Reference initialisation of every parameter (SPEC §2 Init), from a seeded Philox stream
// per tensor (keyed by the tensor's name), so the same seed gives the same weights on
// every backend and in every build.
#pragma once
#include <cstdint>

#include "core/param_store.h"
#include "model/plan.h"

namespace pgolf {

template <typename T>
void init_params(const ModelPlan& plan, ParamStore<T>& store, uint64_t seed);

}  // namespace pgolf
