#include "optim/muon_shards.h"

#include <algorithm>
#include <numeric>

namespace pgolf {

std::vector<int> deal_largest_first(const std::vector<double>& cost, int ranks) {
  std::vector<double> load(size_t(ranks), 0.0);
  std::vector<int> owner(cost.size(), 0);
  for (size_t i : largest_first(cost)) {
    const int r = int(std::min_element(load.begin(), load.end()) - load.begin());
    owner[i] = r;
    load[size_t(r)] += cost[i];
  }
  return owner;
}

MuonShards::MuonShards(Muon<float>& muon, const dist::Comm& comm) : muon_(muon), comm_(comm) {
  const auto& params = muon_.params();
  std::vector<double> cost;
  for (const auto& p : params) cost.push_back(newton_schulz_cost(p.rows, p.cols));
  const std::vector<int> owner = deal_largest_first(cost, comm_.size());
  // Each rank's piece lists its matrices largest first.
  by_rank_.assign(size_t(comm_.size()), {});
  counts_.assign(size_t(comm_.size()), 0);
  for (size_t i : largest_first(cost)) {
    by_rank_[size_t(owner[i])].push_back(i);
    counts_[size_t(owner[i])] += params[i].numel();
  }
  owned_.resize(params.size());
  for (size_t i = 0; i < params.size(); ++i) owned_[i] = owner[i] == comm_.rank();
  if (comm_.distributed()) {
    all_.resize(std::accumulate(counts_.begin(), counts_.end(), int64_t(0)));
    own_.resize(counts_[size_t(comm_.rank())]);
  }
}

float* MuonShards::field(size_t i, Field f) {
  const ParamRef<float>& p = muon_.params()[i];
  return f == Field::kGrad ? p.grad : f == Field::kValue ? p.value : muon_.momentum(i);
}

void MuonShards::pack_all(Field f, float* to) {
  for (const auto& mine : by_rank_)
    for (size_t i : mine) to = std::copy_n(field(i, f), muon_.params()[i].numel(), to);
}

void MuonShards::pack_own(Field f, float* to) {
  for (size_t i : by_rank_[size_t(comm_.rank())])
    to = std::copy_n(field(i, f), muon_.params()[i].numel(), to);
}

void MuonShards::unpack_own(Field f, const float* from) {
  for (size_t i : by_rank_[size_t(comm_.rank())]) {
    const int64_t n = muon_.params()[i].numel();
    std::copy_n(from, n, field(i, f));
    from += n;
  }
}

void MuonShards::unpack_all(Field f, const float* from) {
  for (const auto& mine : by_rank_)
    for (size_t i : mine) {
      const int64_t n = muon_.params()[i].numel();
      std::copy_n(from, n, field(i, f));
      from += n;
    }
}

void MuonShards::start_gradients() {
  if (!comm_.distributed()) return;
  pack_all(Field::kGrad, all_.data());
  pending_ = comm_.reduce_scatter_sum<float>(all_.span(), own_.span(), counts_);
}

std::span<float> MuonShards::finish_gradients() {
  pending_.wait();
  return own_.span();
}

void MuonShards::write_gradients() {
  if (comm_.distributed()) unpack_own(Field::kGrad, own_.data());
}

void MuonShards::start_weights() {
  if (!comm_.distributed()) return;
  pack_own(Field::kValue, own_.data());
  pending_ = comm_.all_gather<float>(own_.span(), all_.span(), counts_);
}

void MuonShards::finish_weights() {
  if (!comm_.distributed()) return;
  pending_.wait();
  unpack_all(Field::kValue, all_.data());
}

void MuonShards::gather_momentum() {
  if (!comm_.distributed()) return;
  pack_own(Field::kMomentum, own_.data());
  comm_.all_gather<float>(own_.span(), all_.span(), counts_).wait();
  unpack_all(Field::kMomentum, all_.data());
}

}  // namespace pgolf
