// A protobuf wire-format reader for the few ModelProto fields pgolf needs (see the header).
// Wire format: each field is a varint key (field_number << 3 | wire_type) followed by a
// varint (type 0), 8 bytes (1), a varint length and that many bytes (2), or 4 bytes (5);
// integers are little-endian, int32 negatives are 10-byte varints of the sign-extended value.
// Fields this reader does not know are skipped, as protobuf itself does.
#include "data/sp_model_spec.h"

#include <bit>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

#include "core/error.h"
#include "io/file_size.h"

namespace pgolf {
namespace {

enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

struct Field {
  uint32_t number = 0;
  uint32_t wire_type = 0;
  uint64_t value = 0;      // kVarint, kFixed64, kFixed32
  std::string_view bytes;  // kLengthDelimited
};

class WireReader {
 public:
  WireReader(std::string_view bytes, const std::string& origin) : in_(bytes), origin_(origin) {}

  bool done() const { return pos_ == in_.size(); }

  Field next() {
    const uint64_t key = varint();
    Field f;
    f.number = static_cast<uint32_t>(key >> 3);
    f.wire_type = static_cast<uint32_t>(key & 7);
    switch (f.wire_type) {
      case kVarint:
        f.value = varint();
        break;
      case kFixed64:
        f.value = little_endian(8);
        break;
      case kFixed32:
        f.value = little_endian(4);
        break;
      case kLengthDelimited: {
        const uint64_t n = varint();
        if (n > in_.size() - pos_) broken("a field runs past the end of the file");
        f.bytes = in_.substr(pos_, n);
        pos_ += n;
        break;
      }
      default:
        broken("it uses protobuf wire type " + std::to_string(f.wire_type));
    }
    return f;
  }

  // Typed views of a field, each checking that the wire type fits the proto type.
  int32_t as_int32(const Field& f) const { return static_cast<int32_t>(expect(f, kVarint).value); }
  bool as_bool(const Field& f) const { return expect(f, kVarint).value != 0; }
  float as_float(const Field& f) const {
    return std::bit_cast<float>(static_cast<uint32_t>(expect(f, kFixed32).value));
  }
  std::string_view as_bytes(const Field& f) const { return expect(f, kLengthDelimited).bytes; }

 private:
  [[noreturn]] void broken(const std::string& why) const {
    fail(origin_, ": not a valid SentencePiece model (", why, ")");
  }

  const Field& expect(const Field& f, WireType t) const {
    if (f.wire_type != t)
      broken("field " + std::to_string(f.number) + " has wire type " + std::to_string(f.wire_type) +
             " instead of " + std::to_string(t));
    return f;
  }

  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ == in_.size()) broken("it ends inside a number");
      const auto byte = static_cast<uint8_t>(in_[pos_++]);
      v |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if (!(byte & 0x80)) return v;
    }
    broken("a number is longer than 10 bytes");
  }

  uint64_t little_endian(size_t n) {
    if (in_.size() - pos_ < n) broken("it ends inside a number");
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i)
      v |= static_cast<uint64_t>(static_cast<uint8_t>(in_[pos_ + i])) << (8 * i);
    pos_ += n;
    return v;
  }

  std::string_view in_;
  size_t pos_ = 0;
  const std::string& origin_;
};

void parse_trainer(std::string_view bytes, const std::string& origin, SpTrainerSettings& t) {
  WireReader r(bytes, origin);
  while (!r.done()) {
    const Field f = r.next();
    switch (f.number) {
      case 3:
        t.model_type = static_cast<SpModelType>(r.as_int32(f));
        break;
      case 4:
        t.vocab_size = r.as_int32(f);
        break;
      case 10:
        t.character_coverage = r.as_float(f);
        break;
      case 18:
        t.max_sentence_length = r.as_int32(f);
        break;
      case 20:
        t.max_sentencepiece_length = r.as_int32(f);
        break;
      case 21:
        t.split_by_unicode_script = r.as_bool(f);
        break;
      case 22:
        t.split_by_whitespace = r.as_bool(f);
        break;
      case 23:
        t.split_by_number = r.as_bool(f);
        break;
      case 24:
        t.treat_whitespace_as_suffix = r.as_bool(f);
        break;
      case 25:
        t.split_digits = r.as_bool(f);
        break;
      case 26:
        t.allow_whitespace_only_pieces = r.as_bool(f);
        break;
      case 33:
        t.hard_vocab_limit = r.as_bool(f);
        break;
      case 34:
        t.use_all_vocab = r.as_bool(f);
        break;
      case 35:
        t.byte_fallback = r.as_bool(f);
        break;
      case 40:
        t.unk_id = r.as_int32(f);
        break;
      case 41:
        t.bos_id = r.as_int32(f);
        break;
      case 42:
        t.eos_id = r.as_int32(f);
        break;
      case 43:
        t.pad_id = r.as_int32(f);
        break;
      default:
        break;
    }
  }
}

void parse_normalizer(std::string_view bytes, const std::string& origin, SpModelSpec& spec) {
  SpNormalizerSettings& n = spec.settings.normalizer;
  WireReader r(bytes, origin);
  while (!r.done()) {
    const Field f = r.next();
    switch (f.number) {
      case 1:
        n.name = r.as_bytes(f);
        break;
      case 2:
        spec.precompiled_charsmap = r.as_bytes(f);
        break;
      case 3:
        n.add_dummy_prefix = r.as_bool(f);
        break;
      case 4:
        n.remove_extra_whitespaces = r.as_bool(f);
        break;
      case 5:
        n.escape_whitespaces = r.as_bool(f);
        break;
      default:
        break;
    }
  }
}

}  // namespace

SpModelSpec parse_sp_model_spec(std::string_view bytes, const std::string& origin) {
  // ModelProto: 1 pieces, 2 trainer_spec, 3 normalizer_spec, 4 self_test_data,
  // 5 denormalizer_spec. A message field given twice is merged, as protobuf does.
  SpModelSpec spec;
  bool has_trainer = false;
  WireReader r(bytes, origin);
  while (!r.done()) {
    const Field f = r.next();
    if (f.number == 2) {
      parse_trainer(r.as_bytes(f), origin, spec.settings.trainer);
      has_trainer = true;
    } else if (f.number == 3) {
      parse_normalizer(r.as_bytes(f), origin, spec);
    }
  }
  // Every model SentencePiece writes has a trainer_spec; without one this is some other file.
  if (!has_trainer) fail(origin, ": not a SentencePiece model (it has no trainer settings)");
  return spec;
}

std::string read_sp_model_bytes(const std::string& path) {
  io::file_size_or_fail(path, "SentencePiece model");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open the SentencePiece model (", std::strerror(errno), ")");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) fail(path, ": reading the SentencePiece model failed");
  return bytes;
}

SpModelSpec read_sp_model_spec(const std::string& path) {
  return parse_sp_model_spec(read_sp_model_bytes(path), path);
}

SpSettings challenge_tokenizer_settings() {
  SpSettings s;
  s.trainer.model_type = SpModelType::kBpe;
  s.trainer.vocab_size = 1024;
  s.trainer.character_coverage = 0.999f;
  s.trainer.split_digits = true;
  s.trainer.hard_vocab_limit = false;
  s.trainer.byte_fallback = false;
  s.trainer.unk_id = 3;
  s.trainer.bos_id = 1;
  s.trainer.eos_id = 2;
  s.trainer.pad_id = 0;
  s.normalizer.name = "nmt_nfkc";
  s.normalizer.add_dummy_prefix = false;
  s.normalizer.remove_extra_whitespaces = true;
  s.normalizer.escape_whitespaces = true;
  return s;
}

}  // namespace pgolf
