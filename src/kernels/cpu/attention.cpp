// Causal grouped-query attention on CPU (SPEC §2, Block), flash-attention style:
// queries and keys are walked in BQ×BK tiles, the products go through gemm<T> (BLAS,
// single-threaded inside our OpenMP regions) and the softmax is folded in online, so the
// only per-thread state is one tile of scores. Nothing of size T×T is ever stored.
#include "kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "core/error.h"
#include "kernels/cpu/fast_math.h"
#include "kernels/cpu/linear.h"

namespace pgolf::cpu {

namespace {

constexpr int64_t BQ = 64;  // query rows per tile
constexpr int64_t BK = 64;  // key columns per tile

// Below ~1M multiply-adds per score matrix pass, threads cost more than they save (and the
// gradient checks call these kernels thousands of times).
bool attention_worth_threads(int64_t B, int64_t T_, int64_t H, int64_t hd) {
  return B * H * T_ * T_ * hd >= (int64_t(1) << 21);
}

}  // namespace

// For each (b, h) and query tile: S = scale·Q K^T over the key tiles s0 <= t, with the
// online softmax m' = max(m, rowmax S), l' = l·e^{m-m'} + Σ e^{S-m'},
// y' = y·e^{m-m'} + e^{S-m'} V; at the end y = y'/l, lse = m + log l.
template <typename T>
void attention_forward(const T* q, const T* k, const T* v, T* y, T* lse, int64_t B, int64_t T_,
                       int64_t H, int64_t Hkv, int64_t hd) {
  PGOLF_CHECK(Hkv > 0 && H % Hkv == 0, "attention needs num_heads (", H,
              ") to be a multiple of num_kv_heads (", Hkv, ")");
  const int64_t group = H / Hkv, nq = (T_ + BQ - 1) / BQ;
  const int64_t qs = H * hd, ks = Hkv * hd;  // row strides of q/y and k/v
  const T scale = T(1) / std::sqrt(T(hd));
  const T neg_inf = -std::numeric_limits<T>::infinity();
#pragma omp parallel if (attention_worth_threads(B, T_, H, hd))
  {
    std::vector<T> S(BQ * BK), m(BQ), l(BQ);
    // Later query tiles see more keys: hand them out first.
#pragma omp for collapse(3) schedule(dynamic)
    for (int64_t b = 0; b < B; b++)
      for (int64_t h = 0; h < H; h++)
        for (int64_t it = 0; it < nq; it++) {
          const int64_t t0 = (nq - 1 - it) * BQ, rows = std::min(BQ, T_ - t0);
          const int64_t off = (b * T_ + t0) * qs + h * hd;
          const T* Q = q + off;
          T* Y = y + off;
          const T* K = k + b * T_ * ks + (h / group) * hd;
          const T* V = v + b * T_ * ks + (h / group) * hd;
          for (int64_t r = 0; r < rows; r++) {
            m[r] = neg_inf;
            l[r] = 0;
            std::fill(Y + r * qs, Y + r * qs + hd, T(0));
          }
          for (int64_t s0 = 0; s0 < t0 + rows; s0 += BK) {
            const int64_t cols = std::min(BK, t0 + rows - s0);
            gemm<T>(false, true, rows, cols, hd, scale, Q, qs, K + s0 * ks, ks, T(0), S.data(), BK);
            for (int64_t r = 0; r < rows; r++) {
              T* Sr = S.data() + r * BK;
              const int64_t valid = std::clamp<int64_t>(t0 + r - s0 + 1, 0, cols);  // s <= t
              T mx = m[r], sum = 0;
#pragma omp simd reduction(max : mx)
              for (int64_t c = 0; c < valid; c++) mx = std::max(mx, Sr[c]);
#pragma omp simd reduction(+ : sum)
              for (int64_t c = 0; c < valid; c++) {
                Sr[c] = fast_exp(Sr[c] - mx);
                sum += Sr[c];
              }
              std::fill(Sr + valid, Sr + cols, T(0));
              if (valid == 0) continue;
              const T corr = std::exp(m[r] - mx);  // 0 on the first tile (m = -inf)
              l[r] = l[r] * corr + sum;
              m[r] = mx;
              if (corr != T(1))
                for (int64_t d = 0; d < hd; d++) Y[r * qs + d] *= corr;
            }
            gemm<T>(false, false, rows, hd, cols, T(1), S.data(), BK, V + s0 * ks, ks, T(1), Y, qs);
          }
          T* L = lse + (b * H + h) * T_ + t0;
          for (int64_t r = 0; r < rows; r++) {
            const T inv = T(1) / l[r];
            for (int64_t d = 0; d < hd; d++) Y[r * qs + d] *= inv;
            L[r] = m[r] + std::log(l[r]);
          }
        }
  }
}

// With P = exp(scale·Q K^T - lse) recomputed per tile, D_t = Σ_d dy_t y_t, dP = dY V^T and
// dS = P ⊙ (dP - D): dq += scale·dS K, dk += scale·dS^T Q, dv += P^T dY (SPEC §2).
// One thread owns a (b, kv head) pair and every query head of its group, so each element
// of dq, dk and dv is written by exactly one thread, in a fixed order.
template <typename T>
void attention_backward(const T* dy, const T* q, const T* k, const T* v, const T* y, const T* lse,
                        T* dq, T* dk, T* dv, int64_t B, int64_t T_, int64_t H, int64_t Hkv,
                        int64_t hd) {
  PGOLF_CHECK(Hkv > 0 && H % Hkv == 0, "attention needs num_heads (", H,
              ") to be a multiple of num_kv_heads (", Hkv, ")");
  const int64_t group = H / Hkv;
  const int64_t qs = H * hd, ks = Hkv * hd;
  const T scale = T(1) / std::sqrt(T(hd));
#pragma omp parallel if (attention_worth_threads(B, T_, H, hd))
  {
    std::vector<T> P(BQ * BK), dP(BQ * BK), D(BQ);
#pragma omp for collapse(2) schedule(dynamic)
    for (int64_t b = 0; b < B; b++)
      for (int64_t g = 0; g < Hkv; g++) {
        const int64_t koff = b * T_ * ks + g * hd;
        const T *K = k + koff, *V = v + koff;
        T *dK = dk + koff, *dV = dv + koff;
        for (int64_t h = g * group; h < (g + 1) * group; h++)
          for (int64_t t0 = 0; t0 < T_; t0 += BQ) {
            const int64_t rows = std::min(BQ, T_ - t0);
            const int64_t off = (b * T_ + t0) * qs + h * hd;
            const T *Q = q + off, *Y = y + off, *dY = dy + off;
            T* dQ = dq + off;
            const T* L = lse + (b * H + h) * T_ + t0;
            for (int64_t r = 0; r < rows; r++) {
              T s = 0;
              for (int64_t d = 0; d < hd; d++) s += dY[r * qs + d] * Y[r * qs + d];
              D[r] = s;
            }
            for (int64_t s0 = 0; s0 < t0 + rows; s0 += BK) {
              const int64_t cols = std::min(BK, t0 + rows - s0);
              gemm<T>(false, true, rows, cols, hd, scale, Q, qs, K + s0 * ks, ks, T(0), P.data(), BK);
              gemm<T>(false, true, rows, cols, hd, T(1), dY, qs, V + s0 * ks, ks, T(0), dP.data(), BK);
              for (int64_t r = 0; r < rows; r++) {
                T *Pr = P.data() + r * BK, *dSr = dP.data() + r * BK;
                const int64_t valid = std::clamp<int64_t>(t0 + r - s0 + 1, 0, cols);
                const T Lr = L[r], Dr = D[r];
#pragma omp simd
                for (int64_t c = 0; c < valid; c++) {
                  const T p = fast_exp(Pr[c] - Lr);
                  Pr[c] = p;
                  dSr[c] = p * (dSr[c] - Dr);
                }
                std::fill(Pr + valid, Pr + cols, T(0));
                std::fill(dSr + valid, dSr + cols, T(0));
              }
              gemm<T>(true, false, cols, hd, rows, T(1), P.data(), BK, dY, qs, T(1), dV + s0 * ks, ks);
              gemm<T>(false, false, rows, hd, cols, scale, dP.data(), BK, K + s0 * ks, ks, T(1), dQ, qs);
              gemm<T>(true, false, cols, hd, rows, scale, dP.data(), BK, Q, qs, T(1), dK + s0 * ks, ks);
            }
          }
      }
  }
}

template void attention_forward<float>(const float*, const float*, const float*, float*, float*,
                                       int64_t, int64_t, int64_t, int64_t, int64_t);
template void attention_forward<double>(const double*, const double*, const double*, double*,
                                        double*, int64_t, int64_t, int64_t, int64_t, int64_t);
template void attention_backward<float>(const float*, const float*, const float*, const float*,
                                        const float*, const float*, float*, float*, float*,
                                        int64_t, int64_t, int64_t, int64_t, int64_t);
template void attention_backward<double>(const double*, const double*, const double*,
                                         const double*, const double*, const double*, double*,
                                         double*, double*, int64_t, int64_t, int64_t, int64_t,
                                         int64_t);

}  // namespace pgolf::cpu
