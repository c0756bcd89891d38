// Batched Newton–Schulz orthogonalisation of Muon on the GPU (SPEC §3), the twin of
// optim/newton_schulz.h in the reference's precision (zeropower_via_newtonschulz5 in bf16):
// X = bf16(G) / (‖bf16(G)‖_F + 1e-7), worked on as X^T when rows > cols; then `steps` times
// A = X X^T, B = b A + c A A, X = a X + B X with (a, b, c) = (3.4445, -4.7750, 2.0315).
// Each product is a bf16 cuBLASLt GEMM (fp32 accumulation, bf16 result); a batch of
// same-shaped matrices (e.g. every layer's Wq) runs as one strided-batched GEMM per product.
#pragma once
#include <cstdint>

#include "core/cuda/runtime.h"

namespace pgolf::cuda {

// bf16 elements of workspace for `count` matrices of rows x cols: per matrix two iterates of
// rows x cols and two m x m products, m = min(rows, cols).
int64_t newton_schulz5_workspace(int64_t count, int64_t rows, int64_t cols);

// X[i] = NS5(G[i]) for the count matrices G[count, rows, cols] (fp32, e.g. the Muon update)
// into X[count, rows, cols] (bf16). The workspace must not overlap G or X. The Frobenius
// norms stay on the device, in `count` floats of ctx.scratch (reserve them before capturing a
// CUDA graph: growing the scratch synchronises); nothing waits for the host.
void newton_schulz5(Context& ctx, const float* G, bf16* X, int64_t count, int64_t rows,
                    int64_t cols, int steps, bf16* workspace);

}  // namespace pgolf::cuda
