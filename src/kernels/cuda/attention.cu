// Causal grouped-query flash attention on the GPU (SPEC §2, Block), FlashAttention-2 style,
// with the products on the tensor cores through WMMA (bf16 16×16×16 fragments, fp32
// accumulate). Notation as in kernels/cpu/attention.cpp: scale = 1/sqrt(hd), S = scale Q K^T,
// key s is visible to query t when s <= t, P = softmax(S) by rows, y = P V,
// lse_t = log Σ_s exp(S_ts).
//
// Forward (one block per (query tile of 64 rows, head, batch); 4 warps, 16 query rows each):
// Q is loaded once; key tiles s0 = 0, kKeys, ... up to the tile's last query are streamed
// through shared memory (tiles past it are fully masked and never loaded; a warp also skips
// a tile whose keys are all after its own 16 rows). Per warp and key tile, with m the running
// row max and l the running row sum:
//   S = scale Q K^T;  m' = max(m, rowmax S);  P = exp(S - m');  l' = l e^{m-m'} + rowsum P;
//   O' = O e^{m-m'} + P V,
// and at the end y = O / l, lse = m + log l.
//
// Backward (SPEC §2 by the chain rule; P recomputed from lse, so nothing of size T×T is kept):
//   D_t = Σ_d dy_td y_td (= Σ_s P_ts dP_ts);  dP = dY V^T;  dS = P ∘ (dP - D);
//   dV = P^T dY;  dK = scale dS^T Q;  dQ = scale dS K.
// Three launches: D (one warp per row); dK/dV with one block per (key tile, kv head, batch)
// whose warps own 16 keys each and which walks every query head of the group and every query
// tile at or after its keys, so the sums over heads and queries stay in one block's fp32
// shared memory (no atomics); dQ with one block per (query tile, head, batch) walking the key
// tiles, recomputing S and dP (two extra products, the price of determinism). Every output
// element is owned by one warp and summed in a fixed order: the same bits on every run.
//
// Layout of every product: operands are bf16 tiles in shared memory (rows padded to a
// multiple of 16 columns with zeros, so hd = 72 runs as 80 and the padding adds nothing);
// scores and accumulators are fp32 tiles in shared memory, loaded into WMMA accumulators,
// updated and stored back, so the online-softmax rescale and the masking work on plain
// arrays (the WMMA fragment layout is never assumed). Probabilities and dS are rounded to
// bf16 only as operands of the next product, as FlashAttention does; sums stay in fp32.
#include "kernels/cuda/attention.h"

#include <mma.h>

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <type_traits>
#include <utility>

#include "kernels/cuda/common.cuh"

namespace pgolf::cuda {

namespace {

namespace wmma = nvcuda::wmma;

constexpr int kMinHeadDim = 16, kMaxHeadDim = 256;
constexpr int kFrag = 16;  // WMMA's m = n = k, and the rows one warp owns
constexpr int kWarpSize = 32;
// Every block fits the largest per-block shared memory of Ampere (A100: 163 KiB), the oldest
// architecture the compute_80 PTX runs on (H100: 227 KiB).
constexpr int64_t kMaxSharedBytes = 163 * 1024;

// Row strides (elements) of the shared tiles: bf16 rows padded by 16 bytes and fp32 rows by
// 16 bytes, so consecutive rows start in different banks. Both keep WMMA's ldm a multiple of
// 16 bytes and (with 128-byte aligned arrays) every fragment pointer 32-byte aligned:
// fragments start at multiples of 16 rows and 16 columns.
__host__ __device__ constexpr int bf16_ld(int cols) { return cols + 8; }
__host__ __device__ constexpr int f32_ld(int cols) { return cols + 4; }
constexpr int64_t aligned(int64_t bytes) { return (bytes + 127) / 128 * 128; }
constexpr int64_t bf16_tile(int rows, int cols) {
  return aligned(int64_t(rows) * bf16_ld(cols) * 2);
}
constexpr int64_t f32_tile(int rows, int cols) { return aligned(int64_t(rows) * f32_ld(cols) * 4); }

// Tiles of the forward for a padded head dim HDP (a multiple of 16). Shared memory, bytes:
// Q [kRows][HDP], K and V [kKeys][HDP] (bf16); O [kRows][HDP], S [kRows][kKeys] (fp32);
// P [kRows][kKeys] (bf16). HDP 64: 70 KiB; 128: 110 KiB; 256 (kKeys 32): 145 KiB.
template <int HDP>
struct ForwardTiles {
  static constexpr int kRows = 64, kWarps = kRows / kFrag, kThreads = kWarps * kWarpSize;
  static constexpr int kKeys = HDP <= 128 ? 64 : 32;
  static constexpr int64_t kK = bf16_tile(kRows, HDP), kV = kK + bf16_tile(kKeys, HDP),
                           kO = kV + bf16_tile(kKeys, HDP), kS = kO + f32_tile(kRows, HDP),
                           kP = kS + f32_tile(kRows, kKeys), kBytes = kP + bf16_tile(kRows, kKeys);
  static_assert(kKeys % kWarpSize == 0 && kBytes <= kMaxSharedBytes);
};

// Tiles of the dK/dV pass: kKeys keys per block (16 per warp), query tiles of kQueries rows.
// K, V [kKeys][HDP], Q, dY [kQueries][HDP] (bf16); dK, dV [kKeys][HDP], S^T, dP^T
// [kKeys][kQueries] (fp32); P^T, dS^T [kKeys][kQueries] (bf16); lse, D [kQueries] (fp32).
// HDP 64: 89 KiB; 128: 145 KiB; 256 (kKeys 32): 145 KiB.
template <int HDP>
struct KeyTiles {
  static constexpr int kKeys = HDP <= 128 ? 64 : 32, kWarps = kKeys / kFrag,
                       kThreads = kWarps * kWarpSize, kQueries = 32;
  static constexpr int64_t kV = bf16_tile(kKeys, HDP), kQ = kV + bf16_tile(kKeys, HDP),
                           kDY = kQ + bf16_tile(kQueries, HDP),
                           kDK = kDY + bf16_tile(kQueries, HDP), kDV = kDK + f32_tile(kKeys, HDP),
                           kS = kDV + f32_tile(kKeys, HDP), kDP = kS + f32_tile(kKeys, kQueries),
                           kP = kDP + f32_tile(kKeys, kQueries),
                           kDS = kP + bf16_tile(kKeys, kQueries),
                           kLse = kDS + bf16_tile(kKeys, kQueries),
                           kD = kLse + aligned(kQueries * 4), kBytes = kD + aligned(kQueries * 4);
  static_assert(kBytes <= kMaxSharedBytes);
};

// Tiles of the dQ pass: kRows query rows per block (16 per warp), key tiles of kKeys.
// Q, dY [kRows][HDP], K, V [kKeys][HDP] (bf16); dQ [kRows][HDP], S, dP [kRows][kKeys] (fp32);
// dS [kRows][kKeys] (bf16); lse, D [kRows] (fp32). HDP 64: 67 KiB; 128: 108 KiB; 256: 110 KiB.
template <int HDP>
struct QueryTiles {
  static constexpr int kRows = HDP <= 128 ? 64 : 32, kWarps = kRows / kFrag,
                       kThreads = kWarps * kWarpSize, kKeys = 32;
  static constexpr int64_t kDY = bf16_tile(kRows, HDP), kK = kDY + bf16_tile(kRows, HDP),
                           kV = kK + bf16_tile(kKeys, HDP), kDQ = kV + bf16_tile(kKeys, HDP),
                           kS = kDQ + f32_tile(kRows, HDP), kDP = kS + f32_tile(kRows, kKeys),
                           kDS = kDP + f32_tile(kRows, kKeys), kLse = kDS + bf16_tile(kRows, kKeys),
                           kD = kLse + aligned(kRows * 4), kBytes = kD + aligned(kRows * 4);
  static_assert(kBytes <= kMaxSharedBytes);
};

using FragA = wmma::fragment<wmma::matrix_a, kFrag, kFrag, kFrag, bf16, wmma::row_major>;
using FragB = wmma::fragment<wmma::matrix_b, kFrag, kFrag, kFrag, bf16, wmma::row_major>;
using FragBt = wmma::fragment<wmma::matrix_b, kFrag, kFrag, kFrag, bf16, wmma::col_major>;
using FragC = wmma::fragment<wmma::accumulator, kFrag, kFrag, kFrag, float>;

// One warp: C[16][N] = A[16][K] B[N][K]^T, both operands stored by rows (as Q and K are: a
// col-major view of B's rows is B^T); C (fp32) is overwritten. The __syncwarp()s order the
// lanes' plain shared-memory writes before and reads after the collective WMMA accesses.
template <int N, int K>
__device__ void warp_mm_nt(const bf16* A, int lda, const bf16* B, int ldb, float* C, int ldc) {
  __syncwarp();
  for (int j = 0; j < N; j += kFrag) {
    FragC c;
    wmma::fill_fragment(c, 0.0f);
#pragma unroll
    for (int kk = 0; kk < K; kk += kFrag) {
      FragA a;
      FragBt b;
      wmma::load_matrix_sync(a, A + kk, lda);
      wmma::load_matrix_sync(b, B + j * ldb + kk, ldb);
      wmma::mma_sync(c, a, b, c);
    }
    wmma::store_matrix_sync(C + j, c, ldc, wmma::mem_row_major);
  }
  __syncwarp();
}

// One warp: C[16][N] += A[16][K] B[K][N], A and B stored by rows, C an fp32 accumulator tile.
template <int N, int K>
__device__ void warp_mm_nn_acc(const bf16* A, int lda, const bf16* B, int ldb, float* C, int ldc) {
  __syncwarp();
  for (int n = 0; n < N; n += kFrag) {
    FragC c;
    wmma::load_matrix_sync(c, C + n, ldc, wmma::mem_row_major);
#pragma unroll
    for (int kk = 0; kk < K; kk += kFrag) {
      FragA a;
      FragB b;
      wmma::load_matrix_sync(a, A + kk, lda);
      wmma::load_matrix_sync(b, B + kk * ldb + n, ldb);
      wmma::mma_sync(c, a, b, c);
    }
    wmma::store_matrix_sync(C + n, c, ldc, wmma::mem_row_major);
  }
  __syncwarp();
}

// The whole block copies rows [row0, row0 + R) of one head (src: that head's row 0; rows
// `stride` elements apart) into dst[R][bf16_ld(HDP)] as 16-byte vectors (hd is a multiple of
// 8 and the tensors 16-byte aligned). Rows past T and columns in [hd, HDP) become zeros.
template <int R, int HDP>
__device__ void load_rows(bf16* dst, const bf16* src, int64_t stride, int row0, int T, int hd) {
  constexpr int kVec = 8, kChunks = HDP / kVec;
  for (int i = threadIdx.x; i < R * kChunks; i += blockDim.x) {
    const int r = i / kChunks, c = (i % kChunks) * kVec;
    uint4 x = make_uint4(0, 0, 0, 0);
    if (row0 + r < T && c < hd)
      x = *reinterpret_cast<const uint4*>(src + int64_t(row0 + r) * stride + c);
    *reinterpret_cast<uint4*>(dst + r * bf16_ld(HDP) + c) = x;
  }
}

// The whole block copies src[row0 .. row0 + R) (one head's lse or D) into dst; 0 past T.
template <int R>
__device__ void load_row_values(float* dst, const float* src, int row0, int T) {
  for (int i = threadIdx.x; i < R; i += blockDim.x) dst[i] = row0 + i < T ? src[row0 + i] : 0.0f;
}

template <int R, int C>
__device__ void zero_f32_tile(float* dst) {
  for (int i = threadIdx.x; i < R * f32_ld(C); i += blockDim.x) dst[i] = 0.0f;
}

// Grid: (query tiles, H, B), the last query tile (the most keys) first. T, H, Hkv, hd as in
// attention_forward; q/y rows are H·hd apart, k/v rows Hkv·hd.
template <int HDP>
__global__ void __launch_bounds__(ForwardTiles<HDP>::kThreads)
    attention_forward_kernel(const bf16* q, const bf16* k, const bf16* v, bf16* y, float* lse,
                             int T, int H, int Hkv, int hd, float scale) {
  using C = ForwardTiles<HDP>;
  constexpr int kRows = C::kRows, kKeys = C::kKeys, ldh = bf16_ld(HDP), ldo = f32_ld(HDP),
                lds = f32_ld(kKeys), ldp = bf16_ld(kKeys);
  extern __shared__ __align__(128) unsigned char smem[];
  bf16* Qs = reinterpret_cast<bf16*>(smem);
  bf16* Ks = reinterpret_cast<bf16*>(smem + C::kK);
  bf16* Vs = reinterpret_cast<bf16*>(smem + C::kV);
  float* Os = reinterpret_cast<float*>(smem + C::kO);
  float* Ss = reinterpret_cast<float*>(smem + C::kS);
  bf16* Ps = reinterpret_cast<bf16*>(smem + C::kP);

  const int warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize;
  const int t0 = (gridDim.x - 1 - blockIdx.x) * kRows, h = blockIdx.y, b = blockIdx.z;
  const int g = h / (H / Hkv);
  const int64_t qs = int64_t(H) * hd, ks = int64_t(Hkv) * hd;
  const bf16* Q = q + int64_t(b) * T * qs + int64_t(h) * hd;
  const bf16* K = k + int64_t(b) * T * ks + int64_t(g) * hd;
  const bf16* V = v + int64_t(b) * T * ks + int64_t(g) * hd;
  // This warp's 16 query rows t = row0 + r and its slices of the shared tiles.
  const int row0 = t0 + warp * kFrag;
  const bf16* Qw = Qs + warp * kFrag * ldh;
  float* Ow = Os + warp * kFrag * ldo;
  float* Sw = Ss + warp * kFrag * lds;
  bf16* Pw = Ps + warp * kFrag * ldp;

  load_rows<kRows, HDP>(Qs, Q, qs, t0, T, hd);
  zero_f32_tile<kRows, HDP>(Os);
  // Every lane keeps the running max and sum of all 16 rows (the same values on every lane).
  float m[kFrag], l[kFrag];
#pragma unroll
  for (int r = 0; r < kFrag; r++) m[r] = -INFINITY, l[r] = 0.0f;

  const int kv_end = min(T, t0 + kRows);  // keys after the tile's last query are all masked
  for (int s0 = 0; s0 < kv_end; s0 += kKeys) {
    __syncthreads();  // every warp is done with the previous K, V (and Q, O are in place)
    load_rows<kKeys, HDP>(Ks, K, ks, s0, T, hd);
    load_rows<kKeys, HDP>(Vs, V, ks, s0, T, hd);
    __syncthreads();
    // Rows all past T, or every key of the tile after the warp's last row: nothing to add.
    if (row0 >= T || s0 > row0 + kFrag - 1) continue;

    warp_mm_nt<kKeys, HDP>(Qw, ldh, Ks, ldh, Sw, lds);  // S (unscaled) = Q K^T
    // Online softmax, one row at a time across the warp (lane covers keys lane + 32i).
#pragma unroll
    for (int r = 0; r < kFrag; r++) {
      const int t = row0 + r;
      float s[kKeys / kWarpSize];
      float mx = m[r];
#pragma unroll
      for (int i = 0; i < kKeys / kWarpSize; i++) {
        const int c = lane + kWarpSize * i, key = s0 + c;
        s[i] = key <= t && key < T ? Sw[r * lds + c] * scale : -INFINITY;
        mx = fmaxf(mx, s[i]);
      }
      mx = warp_max(mx);  // m' = max(m, rowmax S)
      // e^{m-m'}: 0 on a row's first visible keys (m = -inf). m' = -inf would mean no key yet
      // (impossible: key 0 is in the first tile and visible to every row); kept finite anyway.
      const float corr = mx == -INFINITY ? 1.0f : expf(m[r] - mx);
      float sum = 0.0f;
#pragma unroll
      for (int i = 0; i < kKeys / kWarpSize; i++) {
        const float p = s[i] == -INFINITY ? 0.0f : expf(s[i] - mx);
        Pw[r * ldp + lane + kWarpSize * i] = to_bf16(p);
        sum += p;
      }
      l[r] = l[r] * corr + warp_sum(sum);
      m[r] = mx;
      if (corr != 1.0f)
        for (int d = lane; d < HDP; d += kWarpSize) Ow[r * ldo + d] *= corr;
    }
    warp_mm_nn_acc<HDP, kKeys>(Pw, ldp, Vs, ldh, Ow, ldo);  // O += P V
  }

  if (row0 >= T) return;
#pragma unroll
  for (int r = 0; r < kFrag; r++) {
    const int t = row0 + r;
    if (t >= T) break;
    const float inv = 1.0f / l[r];
    bf16* Y = y + (int64_t(b) * T + t) * qs + int64_t(h) * hd;
    for (int d = lane; d < hd; d += kWarpSize) Y[d] = to_bf16(Ow[r * ldo + d] * inv);
    if (lane == 0) lse[(int64_t(b) * H + h) * T + t] = m[r] + logf(l[r]);
  }
}

// D[b,h,t] = Σ_d dy_d y_d in fp32 (the softmax backward's row term), one warp per row
// (b, t, h) of dy and y; D has lse's layout [B, H, T].
__global__ void attention_rowdot_kernel(const bf16* dy, const bf16* y, float* D, int64_t rows,
                                        int T, int H, int hd) {
  const int64_t row = int64_t(blockIdx.x) * (kThreads / kWarpSize) + threadIdx.x / kWarpSize;
  if (row >= rows) return;
  const int lane = threadIdx.x % kWarpSize;
  const bf16 *dyr = dy + row * hd, *yr = y + row * hd;
  float s = 0.0f;
  for (int d = lane; d < hd; d += kWarpSize) s += to_float(dyr[d]) * to_float(yr[d]);
  s = warp_sum(s);
  const int64_t b = row / (int64_t(T) * H), t = row / H % T, h = row % H;
  if (lane == 0) D[(b * H + h) * T + t] = s;
}

// Grid: (key tiles, Hkv, B). Warp w owns keys key0 = s0 + 16w .. +15 of kv head g and sums,
// over the group's query heads and the query tiles from the one holding s0 to the end:
//   S^T = K Q^T, P^T = exp(scale S^T - lse) (masked: key <= t < T), dP^T = V dY^T,
//   dS^T = scale P^T ∘ (dP^T - D), dV += P^T dY, dK += dS^T Q,
// then adds dK, dV to dk, dv (rounded to bf16 once).
template <int HDP>
__global__ void __launch_bounds__(KeyTiles<HDP>::kThreads)
    attention_dkdv_kernel(const bf16* dy, const bf16* q, const bf16* k, const bf16* v,
                          const float* lse, const float* D, bf16* dk, bf16* dv, int T, int H,
                          int Hkv, int hd, float scale) {
  using C = KeyTiles<HDP>;
  constexpr int kKeys = C::kKeys, kQueries = C::kQueries, ldh = bf16_ld(HDP), lda = f32_ld(HDP),
                lds = f32_ld(kQueries), ldp = bf16_ld(kQueries);
  extern __shared__ __align__(128) unsigned char smem[];
  bf16* Ks = reinterpret_cast<bf16*>(smem);
  bf16* Vs = reinterpret_cast<bf16*>(smem + C::kV);
  bf16* Qs = reinterpret_cast<bf16*>(smem + C::kQ);
  bf16* dYs = reinterpret_cast<bf16*>(smem + C::kDY);
  float* dKs = reinterpret_cast<float*>(smem + C::kDK);
  float* dVs = reinterpret_cast<float*>(smem + C::kDV);
  float* Ss = reinterpret_cast<float*>(smem + C::kS);
  float* dPs = reinterpret_cast<float*>(smem + C::kDP);
  bf16* Ps = reinterpret_cast<bf16*>(smem + C::kP);
  bf16* dSs = reinterpret_cast<bf16*>(smem + C::kDS);
  float* Ls = reinterpret_cast<float*>(smem + C::kLse);
  float* Ds = reinterpret_cast<float*>(smem + C::kD);

  const int warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize;
  const int s0 = blockIdx.x * kKeys, g = blockIdx.y, b = blockIdx.z, group = H / Hkv;
  const int64_t qs = int64_t(H) * hd, ks = int64_t(Hkv) * hd;
  const int64_t kv_off = int64_t(b) * T * ks + int64_t(g) * hd;
  const int key0 = s0 + warp * kFrag;
  const bf16* Kw = Ks + warp * kFrag * ldh;
  const bf16* Vw = Vs + warp * kFrag * ldh;
  float* dKw = dKs + warp * kFrag * lda;
  float* dVw = dVs + warp * kFrag * lda;
  float* Sw = Ss + warp * kFrag * lds;
  float* dPw = dPs + warp * kFrag * lds;
  bf16* Pw = Ps + warp * kFrag * ldp;
  bf16* dSw = dSs + warp * kFrag * ldp;

  load_rows<kKeys, HDP>(Ks, k + kv_off, ks, s0, T, hd);
  load_rows<kKeys, HDP>(Vs, v + kv_off, ks, s0, T, hd);
  zero_f32_tile<kKeys, HDP>(dKs);
  zero_f32_tile<kKeys, HDP>(dVs);

  for (int h = g * group; h < (g + 1) * group; h++) {
    const int64_t q_off = int64_t(b) * T * qs + int64_t(h) * hd;
    const int64_t l_off = (int64_t(b) * H + h) * T;
    // Queries before s0 see none of these keys: start at the query tile holding s0.
    for (int t0 = s0 / kQueries * kQueries; t0 < T; t0 += kQueries) {
      __syncthreads();  // every warp is done with the previous Q, dY (K, V, dK, dV in place)
      load_rows<kQueries, HDP>(Qs, q + q_off, qs, t0, T, hd);
      load_rows<kQueries, HDP>(dYs, dy + q_off, qs, t0, T, hd);
      load_row_values<kQueries>(Ls, lse + l_off, t0, T);
      load_row_values<kQueries>(Ds, D + l_off, t0, T);
      __syncthreads();
      // Keys all past T, or every query of the tile before the warp's first key.
      if (key0 >= T || t0 + kQueries - 1 < key0) continue;

      warp_mm_nt<kQueries, HDP>(Kw, ldh, Qs, ldh, Sw, lds);    // S^T (unscaled) = K Q^T
      warp_mm_nt<kQueries, HDP>(Vw, ldh, dYs, ldh, dPw, lds);  // dP^T = V dY^T
      for (int i = lane; i < kFrag * kQueries; i += kWarpSize) {
        const int r = i / kQueries, c = i % kQueries, key = key0 + r, t = t0 + c;
        float p = 0.0f, ds = 0.0f;
        if (key <= t && t < T) {
          p = expf(Sw[r * lds + c] * scale - Ls[c]);
          ds = scale * p * (dPw[r * lds + c] - Ds[c]);
        }
        Pw[r * ldp + c] = to_bf16(p);
        dSw[r * ldp + c] = to_bf16(ds);
      }
      warp_mm_nn_acc<HDP, kQueries>(Pw, ldp, dYs, ldh, dVw, lda);  // dV += P^T dY
      warp_mm_nn_acc<HDP, kQueries>(dSw, ldp, Qs, ldh, dKw, lda);  // dK += dS^T Q (scaled)
    }
  }

  // The warp's own rows: written only by its own WMMA stores, last ordered by __syncwarp
  // (or, for a warp that never computed, zeroed before the loop's __syncthreads).
  for (int r = 0; r < kFrag; r++) {
    const int key = key0 + r;
    if (key >= T) break;
    bf16* dK = dk + kv_off + int64_t(key) * ks;
    bf16* dV = dv + kv_off + int64_t(key) * ks;
    for (int d = lane; d < hd; d += kWarpSize) {
      dK[d] = to_bf16(to_float(dK[d]) + dKw[r * lda + d]);
      dV[d] = to_bf16(to_float(dV[d]) + dVw[r * lda + d]);
    }
  }
}

// Grid: (query tiles, H, B), the last query tile first. Warp w owns query rows
// row0 = t0 + 16w .. +15 of head h and sums over the key tiles up to its last row:
//   S = Q K^T, P = exp(scale S - lse) (masked: s <= t < T), dP = dY V^T,
//   dS = scale P ∘ (dP - D), dQ += dS K,
// then adds dQ to dq (rounded to bf16 once).
template <int HDP>
__global__ void __launch_bounds__(QueryTiles<HDP>::kThreads)
    attention_dq_kernel(const bf16* dy, const bf16* q, const bf16* k, const bf16* v,
                        const float* lse, const float* D, bf16* dq, int T, int H, int Hkv, int hd,
                        float scale) {
  using C = QueryTiles<HDP>;
  constexpr int kRows = C::kRows, kKeys = C::kKeys, ldh = bf16_ld(HDP), lda = f32_ld(HDP),
                lds = f32_ld(kKeys), ldp = bf16_ld(kKeys);
  extern __shared__ __align__(128) unsigned char smem[];
  bf16* Qs = reinterpret_cast<bf16*>(smem);
  bf16* dYs = reinterpret_cast<bf16*>(smem + C::kDY);
  bf16* Ks = reinterpret_cast<bf16*>(smem + C::kK);
  bf16* Vs = reinterpret_cast<bf16*>(smem + C::kV);
  float* dQs = reinterpret_cast<float*>(smem + C::kDQ);
  float* Ss = reinterpret_cast<float*>(smem + C::kS);
  float* dPs = reinterpret_cast<float*>(smem + C::kDP);
  bf16* dSs = reinterpret_cast<bf16*>(smem + C::kDS);
  float* Ls = reinterpret_cast<float*>(smem + C::kLse);
  float* Ds = reinterpret_cast<float*>(smem + C::kD);

  const int warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize;
  const int t0 = (gridDim.x - 1 - blockIdx.x) * kRows, h = blockIdx.y, b = blockIdx.z;
  const int g = h / (H / Hkv);
  const int64_t qs = int64_t(H) * hd, ks = int64_t(Hkv) * hd;
  const int64_t q_off = int64_t(b) * T * qs + int64_t(h) * hd;
  const int64_t kv_off = int64_t(b) * T * ks + int64_t(g) * hd;
  const int64_t l_off = (int64_t(b) * H + h) * T;
  const int row0 = t0 + warp * kFrag;
  const bf16* Qw = Qs + warp * kFrag * ldh;
  const bf16* dYw = dYs + warp * kFrag * ldh;
  float* dQw = dQs + warp * kFrag * lda;
  float* Sw = Ss + warp * kFrag * lds;
  float* dPw = dPs + warp * kFrag * lds;
  bf16* dSw = dSs + warp * kFrag * ldp;
  const float* Lw = Ls + warp * kFrag;
  const float* Dw = Ds + warp * kFrag;

  load_rows<kRows, HDP>(Qs, q + q_off, qs, t0, T, hd);
  load_rows<kRows, HDP>(dYs, dy + q_off, qs, t0, T, hd);
  load_row_values<kRows>(Ls, lse + l_off, t0, T);
  load_row_values<kRows>(Ds, D + l_off, t0, T);
  zero_f32_tile<kRows, HDP>(dQs);

  const int kv_end = min(T, t0 + kRows);
  for (int s0 = 0; s0 < kv_end; s0 += kKeys) {
    __syncthreads();  // every warp is done with the previous K, V (and Q, dY, dQ are in place)
    load_rows<kKeys, HDP>(Ks, k + kv_off, ks, s0, T, hd);
    load_rows<kKeys, HDP>(Vs, v + kv_off, ks, s0, T, hd);
    __syncthreads();
    if (row0 >= T || s0 > row0 + kFrag - 1) continue;

    warp_mm_nt<kKeys, HDP>(Qw, ldh, Ks, ldh, Sw, lds);    // S (unscaled) = Q K^T
    warp_mm_nt<kKeys, HDP>(dYw, ldh, Vs, ldh, dPw, lds);  // dP = dY V^T
    for (int i = lane; i < kFrag * kKeys; i += kWarpSize) {
      const int r = i / kKeys, c = i % kKeys, t = row0 + r, key = s0 + c;
      float ds = 0.0f;
      if (key <= t && t < T) {
        const float p = expf(Sw[r * lds + c] * scale - Lw[r]);
        ds = scale * p * (dPw[r * lds + c] - Dw[r]);
      }
      dSw[r * ldp + c] = to_bf16(ds);
    }
    warp_mm_nn_acc<HDP, kKeys>(dSw, ldp, Ks, ldh, dQw, lda);  // dQ += dS K (scaled)
  }

  for (int r = 0; r < kFrag; r++) {
    const int t = row0 + r;
    if (t >= T) break;
    bf16* dQ = dq + q_off + int64_t(t) * qs;
    for (int d = lane; d < hd; d += kWarpSize) dQ[d] = to_bf16(to_float(dQ[d]) + dQw[r * lda + d]);
  }
}

// Calls f(std::integral_constant<int, HDP>) with hd rounded up to a multiple of 16 (the
// kernels' template argument); hd has passed attention_check.
template <int HDP = kMinHeadDim, typename F>
void with_padded_head_dim(int64_t hd, F&& f) {
  if constexpr (HDP <= kMaxHeadDim) {
    if ((hd + kFrag - 1) / kFrag * kFrag == HDP) return f(std::integral_constant<int, HDP>{});
    with_padded_head_dim<HDP + kFrag>(hd, std::forward<F>(f));
  }
}

// Lets `kernel` take `bytes` of dynamic shared memory (above the default 48 KiB).
template <typename Kernel>
void allow_shared(Kernel kernel, int64_t bytes) {
  check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)),
        "cudaFuncSetAttribute(attention kernel, MaxDynamicSharedMemorySize)");
}

// The launch-size and alignment checks both wrappers share.
void check_shape_and_alignment(int64_t B, int64_t T, int64_t H, int64_t Hkv, int64_t hd,
                               std::initializer_list<const void*> vector_loaded) {
  attention_check(H, Hkv, hd);
  PGOLF_CHECK(B <= 65535 && H <= 65535 && T <= (int64_t(1) << 30),
              "CUDA attention supports B and num_heads up to 65535 and T up to 2^30, got B=", B,
              ", H=", H, ", T=", T);
  for (const void* p : vector_loaded)
    PGOLF_CHECK(reinterpret_cast<uintptr_t>(p) % 16 == 0,
                "CUDA attention needs its q, k, v and dy tensors 16-byte aligned");
}

unsigned tiles(int64_t T, int rows) { return unsigned((T + rows - 1) / rows); }

}  // namespace

void attention_check(int64_t H, int64_t Hkv, int64_t hd) {
  PGOLF_CHECK(Hkv > 0 && H > 0 && H % Hkv == 0, "attention needs num_heads (", H,
              ") to be a multiple of num_kv_heads (", Hkv, ")");
  PGOLF_CHECK(hd >= kMinHeadDim && hd <= kMaxHeadDim && hd % 8 == 0,
              "the CUDA attention kernels support head dims 16 to 256 in steps of 8, got ", hd);
}

void attention_forward(Context& ctx, const bf16* q, const bf16* k, const bf16* v, bf16* y,
                       float* lse, int64_t B, int64_t T, int64_t H, int64_t Hkv, int64_t hd) {
  check_shape_and_alignment(B, T, H, Hkv, hd, {q, k, v});
  if (B == 0 || T == 0) return;
  const float scale = 1.0f / std::sqrt(float(hd));  // as cpu::attention_forward<float>
  with_padded_head_dim(hd, [&](auto hdp) {
    constexpr int HDP = decltype(hdp)::value;
    using C = ForwardTiles<HDP>;
    allow_shared(attention_forward_kernel<HDP>, C::kBytes);
    const dim3 grid(tiles(T, C::kRows), unsigned(H), unsigned(B));
    attention_forward_kernel<HDP><<<grid, C::kThreads, C::kBytes, ctx.stream()>>>(
        q, k, v, y, lse, int(T), int(H), int(Hkv), int(hd), scale);
    check_launch("attention_forward_kernel");
  });
}

void attention_backward(Context& ctx, const bf16* dy, const bf16* q, const bf16* k, const bf16* v,
                        const bf16* y, const float* lse, bf16* dq, bf16* dk, bf16* dv, int64_t B,
                        int64_t T, int64_t H, int64_t Hkv, int64_t hd) {
  check_shape_and_alignment(B, T, H, Hkv, hd, {dy, q, k, v});
  if (B == 0 || T == 0) return;
  const float scale = 1.0f / std::sqrt(float(hd));
  const int64_t rows = B * T * H;
  float* D = ctx.scratch(rows);
  constexpr int kRowsPerBlock = kThreads / kWarpSize;
  attention_rowdot_kernel<<<unsigned((rows + kRowsPerBlock - 1) / kRowsPerBlock), kThreads, 0,
                            ctx.stream()>>>(dy, y, D, rows, int(T), int(H), int(hd));
  check_launch("attention_rowdot_kernel");
  with_padded_head_dim(hd, [&](auto hdp) {
    constexpr int HDP = decltype(hdp)::value;
    using KT = KeyTiles<HDP>;
    allow_shared(attention_dkdv_kernel<HDP>, KT::kBytes);
    const dim3 kgrid(tiles(T, KT::kKeys), unsigned(Hkv), unsigned(B));
    attention_dkdv_kernel<HDP><<<kgrid, KT::kThreads, KT::kBytes, ctx.stream()>>>(
        dy, q, k, v, lse, D, dk, dv, int(T), int(H), int(Hkv), int(hd), scale);
    check_launch("attention_dkdv_kernel");

    using QT = QueryTiles<HDP>;
    allow_shared(attention_dq_kernel<HDP>, QT::kBytes);
    const dim3 qgrid(tiles(T, QT::kRows), unsigned(H), unsigned(B));
    attention_dq_kernel<HDP><<<qgrid, QT::kThreads, QT::kBytes, ctx.stream()>>>(
        dy, q, k, v, lse, D, dq, int(T), int(H), int(Hkv), int(hd), scale);
    check_launch("attention_dq_kernel");
  });
}

}  // namespace pgolf::cuda
