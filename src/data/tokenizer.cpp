// SentencePiece behind pgolf::Tokenizer (SPEC §5), and tokenizer training.
#include "data/tokenizer.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cstdio>
#include <unordered_map>

#include "core/error.h"
#include "data/sp_model_spec.h"

namespace pgolf {
namespace {

constexpr std::string_view kSpaceSymbol = "\xe2\x96\x81";  // U+2581, SentencePiece's space

// A byte piece is spelled "<0xHH>"; it stands for that one byte of the text.
char byte_of_piece(const std::string& piece) {
  return static_cast<char>(std::stoi(piece.substr(3, 2), nullptr, 16));
}

}  // namespace

Tokenizer::Tokenizer(std::unique_ptr<sentencepiece::SentencePieceProcessor> sp,
                     std::string model_bytes, SpModelSpec spec, std::string origin)
    : sp_(std::move(sp)),
      model_bytes_(std::move(model_bytes)),
      spec_(std::move(spec)),
      origin_(std::move(origin)) {}

Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::load(const std::string& path) {
  return from_bytes(read_sp_model_bytes(path), path);
}

Tokenizer Tokenizer::from_bytes(std::string model_bytes, const std::string& origin) {
  SpModelSpec spec = parse_sp_model_spec(model_bytes, origin);
  auto sp = std::make_unique<sentencepiece::SentencePieceProcessor>();
  const auto status = sp->LoadFromSerializedProto(model_bytes);
  if (!status.ok())
    fail(origin, ": SentencePiece cannot load this model (", status.ToString(), ")");
  return Tokenizer(std::move(sp), std::move(model_bytes), std::move(spec), origin);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  std::vector<int> ids;
  const auto status = sp_->Encode(text, &ids);
  if (!status.ok()) fail(origin_, ": encoding failed (", status.ToString(), ")");
  return ids;
}

Encoding Tokenizer::encode_normalized(std::string_view text) const {
  // Each encoded piece carries its stretch of the normalised text: the piece itself with
  // U+2581 for a space, the unknown text for <unk>, "<0xHH>" for one byte of a character
  // spelled in bytes. Those stretches tile the normalised text.
  sentencepiece::ImmutableSentencePieceText encoded;
  const auto status = sp_->Encode(text, encoded.mutable_proto());
  if (!status.ok()) fail(origin_, ": encoding failed (", status.ToString(), ")");
  Encoding e;
  e.ids.reserve(encoded.pieces_size());
  for (const auto& p : encoded.pieces()) {
    const int id = static_cast<int>(p.id());
    e.ids.push_back(id);
    if (sp_->IsByte(id)) {
      e.normalized += byte_of_piece(p.piece());
      continue;
    }
    const std::string& s = p.piece();
    for (size_t i = 0; i < s.size();) {
      if (s.compare(i, kSpaceSymbol.size(), kSpaceSymbol) == 0) {
        e.normalized += ' ';
        i += kSpaceSymbol.size();
      } else {
        e.normalized += s[i++];
      }
    }
  }
  // The dummy prefix is a space the normaliser adds in front of the text, not the text's own.
  if (spec_.settings.normalizer.add_dummy_prefix && !e.normalized.empty() &&
      e.normalized.front() == ' ')
    e.normalized.erase(0, 1);
  return e;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string text;
  const auto status = sp_->Decode(ids, &text);
  if (!status.ok()) fail(origin_, ": decoding failed (", status.ToString(), ")");
  return text;
}

int Tokenizer::vocab_size() const { return sp_->GetPieceSize(); }
int Tokenizer::bos_id() const { return sp_->bos_id(); }
int Tokenizer::unk_id() const { return sp_->unk_id(); }
const std::string& Tokenizer::piece(int id) const { return sp_->IdToPiece(id); }
bool Tokenizer::is_control(int id) const { return sp_->IsControl(id); }
bool Tokenizer::is_unknown(int id) const { return sp_->IsUnknown(id); }
bool Tokenizer::is_unused(int id) const { return sp_->IsUnused(id); }
bool Tokenizer::is_byte(int id) const { return sp_->IsByte(id); }

// Training.

namespace {

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }
bool is_sentence_end(char c) { return c == '.' || c == '?' || c == '!'; }
bool is_utf8_continuation(char c) { return (static_cast<unsigned char>(c) & 0xc0) == 0x80; }

// Where the piece starting at `begin` ends when the rest is longer than `max_bytes`: the cut
// c lies in (begin, begin + max_bytes], and the piece is doc[begin, c).
size_t cut_point(std::string_view doc, size_t begin, size_t max_bytes) {
  const size_t limit = begin + max_bytes;
  size_t last_space = 0;
  for (size_t c = limit; c > begin; --c) {
    if (!is_space(doc[c])) continue;
    if (is_sentence_end(doc[c - 1])) return c;
    if (last_space == 0) last_space = c;
  }
  if (last_space != 0) return last_space;
  size_t c = limit;
  while (c > begin + 1 && is_utf8_continuation(doc[c])) --c;
  return c;
}

const char* model_type_name(SpModelType t) {
  switch (t) {
    case SpModelType::kUnigram:
      return "unigram";
    case SpModelType::kBpe:
      return "bpe";
    case SpModelType::kWord:
      return "word";
    case SpModelType::kChar:
      return "char";
  }
  fail("unknown SentencePiece model type ", static_cast<int>(t));
}

// SentencePiece's trainer arguments for `s`: every setting pgolf reads from a model is given
// explicitly, so a trained model carries the same settings whatever SentencePiece's defaults.
std::unordered_map<std::string, std::string> trainer_arguments(const SpSettings& s) {
  const SpTrainerSettings& t = s.trainer;
  const SpNormalizerSettings& n = s.normalizer;
  auto flag = [](bool b) { return std::string(b ? "true" : "false"); };
  char coverage[32];
  std::snprintf(coverage, sizeof coverage, "%.9g", t.character_coverage);  // float round-trip
  return {
      {"model_type", model_type_name(t.model_type)},
      {"vocab_size", std::to_string(t.vocab_size)},
      {"character_coverage", coverage},
      {"max_sentence_length", std::to_string(t.max_sentence_length)},
      {"max_sentencepiece_length", std::to_string(t.max_sentencepiece_length)},
      {"split_by_unicode_script", flag(t.split_by_unicode_script)},
      {"split_by_whitespace", flag(t.split_by_whitespace)},
      {"split_by_number", flag(t.split_by_number)},
      {"treat_whitespace_as_suffix", flag(t.treat_whitespace_as_suffix)},
      {"split_digits", flag(t.split_digits)},
      {"allow_whitespace_only_pieces", flag(t.allow_whitespace_only_pieces)},
      {"hard_vocab_limit", flag(t.hard_vocab_limit)},
      {"use_all_vocab", flag(t.use_all_vocab)},
      {"byte_fallback", flag(t.byte_fallback)},
      {"unk_id", std::to_string(t.unk_id)},
      {"bos_id", std::to_string(t.bos_id)},
      {"eos_id", std::to_string(t.eos_id)},
      {"pad_id", std::to_string(t.pad_id)},
      {"normalization_rule_name", n.name},
      {"add_dummy_prefix", flag(n.add_dummy_prefix)},
      {"remove_extra_whitespaces", flag(n.remove_extra_whitespaces)},
      {"escape_whitespaces", flag(n.escape_whitespaces)},
      {"minloglevel", "1"},  // SentencePiece's progress log (INFO) off, warnings kept
  };
}

// Feeds SentencePiece the training sentences of every document, in order.
class SentenceFeed : public sentencepiece::SentenceIterator {
 public:
  SentenceFeed(const std::vector<std::string>& documents, size_t max_bytes) {
    for (const std::string& d : documents)
      for (std::string_view s : training_sentences(d, max_bytes)) sentences_.push_back(s);
    load();
  }
  bool done() const override { return i_ >= sentences_.size(); }
  void Next() override {
    ++i_;
    load();
  }
  const std::string& value() const override { return value_; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  void load() {
    if (!done()) value_.assign(sentences_[i_]);
  }

  std::vector<std::string_view> sentences_;
  size_t i_ = 0;
  std::string value_;
};

}  // namespace

std::vector<std::string_view> training_sentences(std::string_view document, size_t max_bytes) {
  PGOLF_CHECK(max_bytes >= 4, "training sentences must allow at least one UTF-8 character");
  std::vector<std::string_view> out;
  auto skip_spaces = [&](size_t i) {
    while (i < document.size() && is_space(document[i])) ++i;
    return i;
  };
  for (size_t begin = skip_spaces(0); begin < document.size();) {
    const size_t cut = document.size() - begin <= max_bytes ? document.size()
                                                            : cut_point(document, begin, max_bytes);
    size_t end = cut;
    while (end > begin && is_space(document[end - 1])) --end;
    out.push_back(document.substr(begin, end - begin));
    begin = skip_spaces(cut);
  }
  return out;
}

std::string train_tokenizer(const std::vector<std::string>& documents, const SpSettings& settings) {
  SentenceFeed feed(documents, static_cast<size_t>(settings.trainer.max_sentence_length));
  std::string model;
  const auto status =
      sentencepiece::SentencePieceTrainer::Train(trainer_arguments(settings), &feed, &model);
  if (!status.ok())
    fail("training a SentencePiece tokenizer on ", documents.size(), " documents failed (",
         status.ToString(), ")");
  return model;
}

}  // namespace pgolf
