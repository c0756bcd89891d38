// Muon (SPEC §3): momentum, nesterov, Newton–Schulz, aspect-ratio scale, decoupled decay.
#include "optim/muon.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "optim/newton_schulz.h"

namespace pgolf {

std::vector<size_t> largest_first(const std::vector<double>& cost) {
  std::vector<size_t> order(cost.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return cost[a] > cost[b]; });
  return order;
}

template <typename T>
Muon<T>::Muon(std::vector<ParamRef<T>> params) : params_(std::move(params)) {
  int64_t total = 0;
  std::vector<double> cost;
  for (const auto& p : params_) {
    PGOLF_CHECK(p.value && p.grad, "Muon was given a parameter without value or gradient");
    PGOLF_CHECK(p.rows > 0 && p.cols > 0, "Muon needs non-empty matrices, got ", p.rows, "x",
                p.cols);
    offsets_.push_back(total);
    total += (p.numel() + 15) / 16 * 16;  // 64-byte aligned in float, like ParamLayout
    workspace_size_ = std::max(workspace_size_,
                               2 * p.numel() + newton_schulz5_workspace(p.rows, p.cols));
    cost.push_back(newton_schulz_cost(p.rows, p.cols));
  }
  check_disjoint(params_, "Muon");
  momentum_.resize(total);
  order_ = largest_first(cost);
}

template <typename T>
void Muon<T>::step(double lr, double momentum, double weight_decay, int backend_steps,
                   const std::vector<bool>& only) {
  PGOLF_CHECK(only.empty() || only.size() == params_.size(), "Muon was given a shard of ",
              only.size(), " flags for ", params_.size(), " matrices");
  PGOLF_CHECK(backend_steps >= 0, "Muon needs a non-negative Newton-Schulz step count, got ",
              backend_steps);
  // One workspace per thread that may run; a nested call gets a team of one.
  const size_t nthreads = size_t(std::max(1, omp_get_max_threads()));
  if (workspaces_.size() < nthreads) workspaces_.resize(nthreads);
  for (size_t t = 0; t < nthreads; ++t)
    if (workspaces_[t].size() < workspace_size_) workspaces_[t].resize(workspace_size_);

  // Python floats are doubles: the scalars are formed in double, then rounded to T.
  const T mu = T(momentum), tlr = T(lr);
  const bool decay = weight_decay > 0;
  const T keep = T(1.0 - lr * weight_decay);

  // Which thread takes which matrix varies with the schedule; a matrix's result does not,
  // since it is computed by one thread with single-threaded BLAS in a fixed order.
#pragma omp parallel if (order_.size() > 1)
  {
    T* ws = workspaces_[size_t(omp_get_thread_num())].data();
#pragma omp for schedule(dynamic, 1)
    for (size_t k = 0; k < order_.size(); ++k) {
      const size_t i = order_[k];
      if (!only.empty() && !only[i]) continue;
      const ParamRef<T>& p = params_[i];
      const int64_t n = p.numel();
      T* buf = momentum_.data() + offsets_[i];
      T* gp = ws;           // g', the nesterov gradient
      T* u = ws + n;        // the orthogonalised update
      T* ns = ws + 2 * n;   // Newton–Schulz workspace
      const T* g = p.grad;
      for (int64_t j = 0; j < n; ++j) buf[j] = buf[j] * mu + g[j];
      for (int64_t j = 0; j < n; ++j) gp[j] = g[j] + mu * buf[j];
      newton_schulz5(gp, u, p.rows, p.cols, backend_steps, ns);
      const T scale = T(std::sqrt(std::max(1.0, double(p.rows) / double(p.cols))));
      T* w = p.value;
      for (int64_t j = 0; j < n; ++j) {
        const T uj = u[j] * scale;
        const T wj = decay ? w[j] * keep : w[j];
        w[j] = wj - tlr * uj;
      }
    }
  }
}

template class Muon<float>;
template class Muon<double>;

}  // namespace pgolf
