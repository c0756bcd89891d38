#include "train/qat.h"

#include <cstring>

#include "kernels/cpu/fake_quant.h"

namespace pgolf {

QatShadow::QatShadow(ParamStore<float>& store, const ModelPlan& plan) : store_(store) {
  for (const auto& b : plan.blocks)
    for (int i : b.all())
      if (i >= 0) matrices_.push_back(i);  // a repeat's set holds only its own matrices
  for (int i : {plan.bigram_proj, plan.ve_proj})
    if (i >= 0) matrices_.push_back(i);
  int64_t total = 0;
  for (int i : matrices_) total += store.layout().info(i).numel;
  saved_.resize(total);
}

void QatShadow::quantise() {
  float* save = saved_.data();
  for (int i : matrices_) {
    const auto& info = store_.layout().info(i);
    float* w = store_.value(i);
    std::memcpy(save, w, size_t(info.numel) * sizeof(float));
    cpu::fake_quant_int6_rows(save, w, info.shape[0], info.shape[1]);
    save += info.numel;
  }
}

void QatShadow::restore() {
  const float* save = saved_.data();
  for (int i : matrices_) {
    const int64_t n = store_.layout().info(i).numel;
    std::memcpy(store_.value(i), save, size_t(n) * sizeof(float));
    save += n;
  }
}

}  // namespace pgolf
