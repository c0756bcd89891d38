// The untied twin of a depth-recurrent model (docs/recurrence.md; #686's untie_recurrence):
// the same function, with every repeat owning copies of the matrices it shared. Untied
// TTT (eval/ttt.h) adapts such a twin, so each virtual layer adapts its own matrices.
// Per-block scalars (scalar_sharing "block") stay shared: only matrices untie.
#pragma once
#include <memory>

#include "model/model.h"

namespace pgolf {

std::unique_ptr<Model<float>> untied_twin(const Model<float>& model);

}  // namespace pgolf
