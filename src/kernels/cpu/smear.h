// SmearGate (SPEC §2 step 4): g = sigmoid(gate); out_t = (1-g) h_t + g h_{t-1}, h_{-1} = 0,
// over B sequences of T rows of `dim`.
#pragma once
#include <cstdint>

namespace pgolf::cpu {

template <typename T>
void smear_forward(const T* h, const T* gate, T* out, int64_t B, int64_t T_, int64_t dim);

// dh += dout_t (1-g) + dout_{t+1} g;  dgate += sum_{b,t} dout_t (h_{t-1} - h_t) g (1-g).
// Either gradient may be null (skipped).
template <typename T>
void smear_backward(const T* dout, const T* h, const T* gate, T* dh, T* dgate, int64_t B,
                    int64_t T_, int64_t dim);

}  // namespace pgolf::cpu
