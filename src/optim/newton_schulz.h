// Newton–Schulz orthogonalisation of Muon (SPEC §3; the reference's
// zeropower_via_newtonschulz5): X = G / (‖G‖_F + 1e-7), worked on as X^T when rows > cols;
// then `steps` times A = X X^T, B = b A + c A A, X = a X + B X with
// (a, b, c) = (3.4445, -4.7750, 2.0315); transposed back.
//
// The reference runs this in bf16 on the GPU; pgolf runs it in T (fp32 or fp64) through
// BLAS, so the update agrees with the reference to bf16 precision, not bitwise.
#pragma once
#include <cstdint>

namespace pgolf {

// Elements of T the workspace of newton_schulz5 needs for a rows x cols matrix:
// two m x n iterates and two m x m products, m = min(rows, cols), n = max(rows, cols).
int64_t newton_schulz5_workspace(int64_t rows, int64_t cols);

// X[rows, cols] = NS5(G[rows, cols]). X may be G; neither may overlap the workspace.
// The GEMMs always run single-threaded (see the .cpp), so the bits of X do not depend
// on the thread count nor on whether the caller is inside an OpenMP region.
template <typename T>
void newton_schulz5(const T* G, T* X, int64_t rows, int64_t cols, int steps, T* workspace);

}  // namespace pgolf
