// pgolf::Tokenizer: a SentencePiece `.model` (SPEC §5; the challenge's fineweb_*_bpe.model
// load as is), and training new ones with the challenge's settings.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "data/sp_model_spec.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace pgolf {

// Token ids and the normalised text they spell (SentencePiece's normaliser: NFKC, whitespace
// runs collapsed, leading/trailing whitespace dropped), which is what bpb counts bytes of.
struct Encoding {
  std::vector<int32_t> ids;
  std::string normalized;
};

class Tokenizer {
 public:
  // Loads a `.model` file; errors name it (missing, unreadable, not a SentencePiece model).
  static Tokenizer load(const std::string& path);
  // Loads a serialized model; `origin` names it in errors.
  static Tokenizer from_bytes(std::string model_bytes, const std::string& origin);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  std::vector<int32_t> encode(std::string_view text) const;
  Encoding encode_normalized(std::string_view text) const;
  std::string decode(const std::vector<int32_t>& ids) const;

  int vocab_size() const;
  int bos_id() const;
  int unk_id() const;
  const std::string& piece(int id) const;
  bool is_control(int id) const;  // <s>, </s>, <pad>
  bool is_unknown(int id) const;  // <unk>
  bool is_unused(int id) const;
  bool is_byte(int id) const;  // <0x00>..<0xFF> (byte fallback)
  // Pieces that spell no text: control, unknown or unused (SPEC §4 "boundaries").
  bool is_boundary(int id) const { return is_control(id) || is_unknown(id) || is_unused(id); }

  // The `.model` file's bytes as loaded (copied verbatim into a data directory).
  const std::string& model_bytes() const { return model_bytes_; }
  // Its trainer and normaliser settings.
  const SpModelSpec& spec() const { return spec_; }

 private:
  Tokenizer(std::unique_ptr<sentencepiece::SentencePieceProcessor> sp, std::string model_bytes,
            SpModelSpec spec, std::string origin);

  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  std::string model_bytes_;
  SpModelSpec spec_;
  std::string origin_;  // names the model in errors
};

// Splits one document into training sentences of at most `max_bytes` bytes each, because
// SentencePiece skips any training sentence longer than its max_sentence_length. Cuts fall
// after a sentence end (. ? ! followed by whitespace) when the window has one, else at the
// last whitespace, else at the last UTF-8 character boundary; the whitespace at a cut is
// dropped (the normaliser would strip it anyway). Consecutive sentences are packed up to the
// limit so that few words start a training sentence: with add_dummy_prefix off, such a word
// is seen without its leading U+2581, unlike in the encoded document.
std::vector<std::string_view> training_sentences(std::string_view document, size_t max_bytes);

// Trains a tokenizer on `documents` (each cut by training_sentences at
// settings.trainer.max_sentence_length) with `settings` (normally
// challenge_tokenizer_settings() with the vocab size and byte fallback changed); returns the
// serialized `.model`. The same documents and settings give the same bytes: with
// input_sentence_size left at 0 SentencePiece keeps every sentence, so it samples nothing
// and needs no seed (DefaultCorpusData.WritesTheDataDirectory trains twice and compares).
std::string train_tokenizer(const std::vector<std::string>& documents, const SpSettings& settings);

}  // namespace pgolf
