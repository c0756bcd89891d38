// ParamRef<T>: a 2-D view of one parameter and its gradient, the unit every optimizer of
// SPEC §3 works on. Vectors and scalars are one row; a tensor of rank > 2 is rows = the
// first dimension and cols = the product of the rest (the reference's Muon only ever sees
// rank-2 matrices, so that case is AdamW's, where the shape does not matter).
#pragma once
#include <algorithm>
#include <cstdint>
#include <functional>
#include <vector>

#include "core/param_store.h"

namespace pgolf {

template <typename T>
struct ParamRef {
  T* value = nullptr;
  T* grad = nullptr;
  int64_t rows = 1, cols = 0;
  int64_t numel() const { return rows * cols; }
};

// The view of parameter `i` of a store.
template <typename T>
ParamRef<T> param_ref(ParamStore<T>& store, int i) {
  const ParamInfo& info = store.layout().info(i);
  ParamRef<T> ref{store.value(i), store.grad(i), 1, info.numel};
  if (info.shape.size() >= 2) {
    ref.rows = info.shape[0];
    ref.cols = info.shape[0] == 0 ? 0 : info.numel / info.shape[0];
  }
  return ref;
}

// An optimizer given the same tensor twice would update it twice per step (and race in
// Muon's parallel loop): reject overlapping parameters.
template <typename T>
void check_disjoint(std::vector<ParamRef<T>> refs, const char* optimizer) {
  std::erase_if(refs, [](const ParamRef<T>& r) { return r.numel() == 0; });
  std::sort(refs.begin(), refs.end(), [](const ParamRef<T>& a, const ParamRef<T>& b) {
    return std::less<>()(a.value, b.value);
  });
  for (size_t i = 1; i < refs.size(); ++i)
    PGOLF_CHECK(!std::less<>()(refs[i].value, refs[i - 1].value + refs[i - 1].numel()),
                optimizer, " was given the same parameter twice");
}

}  // namespace pgolf
