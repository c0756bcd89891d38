// The bpb byte tables of SPEC §4, entry for entry as the reference's build_sentencepiece_luts.
#include "eval/byte_luts.h"

#include <algorithm>
#include <string_view>

#include "core/error.h"

namespace pgolf {

ByteLuts build_byte_luts(const Tokenizer& tokenizer, int64_t model_vocab) {
  constexpr std::string_view kSpaceSymbol = "\xe2\x96\x81";  // U+2581
  const int64_t sp_vocab = tokenizer.vocab_size();
  const auto size = static_cast<size_t>(std::max(sp_vocab, model_vocab));
  ByteLuts l;
  l.base_bytes.assign(size, 0);
  l.has_leading_space.assign(size, 0);
  l.is_boundary.assign(size, 1);
  for (int id = 0; id < sp_vocab; ++id) {
    if (tokenizer.is_boundary(id)) continue;
    l.is_boundary[id] = 0;
    if (tokenizer.is_byte(id)) {
      l.base_bytes[id] = 1;
      continue;
    }
    std::string_view piece = tokenizer.piece(id);
    if (piece.starts_with(kSpaceSymbol)) {
      l.has_leading_space[id] = 1;
      piece.remove_prefix(kSpaceSymbol.size());
    }
    l.base_bytes[id] = static_cast<int16_t>(piece.size());
  }
  return l;
}

double count_bytes(const ByteLuts& luts, const int32_t* prev, const int32_t* tgt, int64_t n) {
  const auto size = static_cast<int64_t>(luts.base_bytes.size());
  double bytes = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int32_t p = prev[i], t = tgt[i];
    if (p < 0 || p >= size || t < 0 || t >= size)
      fail("token id ", (p < 0 || p >= size) ? p : t, " is outside the byte tables of ", size,
           " ids");
    bytes += luts.base_bytes[t] + (luts.has_leading_space[t] && !luts.is_boundary[p]);
  }
  return bytes;
}

}  // namespace pgolf
