// The model's one input check (SPEC §2): every token id must index the embedding tables.
// Shared by the CPU model and the GPU model, which must refuse the same inputs.
#pragma once
#include <cstdint>

#include "core/error.h"

namespace pgolf {

// ids[0..n) must lie in [0, vocab); `offset` is ids[0]'s position in the caller's batch, for
// the message.
inline void check_token_ids(const int32_t* ids, int64_t offset, int64_t n, int64_t vocab) {
  for (int64_t i = 0; i < n; ++i)
    PGOLF_CHECK(ids[i] >= 0 && ids[i] < vocab, "token id ", ids[i], " at position ",
                offset + i, " is outside the vocabulary of ", vocab);
}

}  // namespace pgolf
