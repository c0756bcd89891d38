// Bytes per target token for bits per byte (SPEC §4), as the challenge's
// build_sentencepiece_luts builds them from the SentencePiece model.
#pragma once
#include <cstdint>
#include <vector>

#include "data/tokenizer.h"

namespace pgolf {

// Indexed by token id; max(tokenizer vocab, model vocab) entries.
struct ByteLuts {
  std::vector<int16_t> base_bytes;         // bytes the piece spells, its leading space aside
  std::vector<uint8_t> has_leading_space;  // the piece starts with U+2581
  std::vector<uint8_t> is_boundary;        // the piece spells no text (control/unknown/unused)
};

// For every id < tokenizer vocab: a control, unknown or unused piece is a boundary with 0
// bytes; a byte piece <0xHH> has 1 byte; any other piece has the UTF-8 length of the piece
// with one leading U+2581 removed, and has_leading_space when it had one. Ids from the
// tokenizer's vocab up to model_vocab (a model may have spare rows) are boundaries of 0 bytes.
ByteLuts build_byte_luts(const Tokenizer& tokenizer, int64_t model_vocab);

// Σ_i base_bytes[tgt[i]] + (has_leading_space[tgt[i]] AND NOT is_boundary[prev[i]]), in
// float64: a space before a token counts unless it follows a boundary (a document's start,
// or <unk>, whose text is not counted either). An id outside the tables is an error.
double count_bytes(const ByteLuts& luts, const int32_t* prev, const int32_t* tgt, int64_t n);

}  // namespace pgolf
