// The settings inside a SentencePiece `.model` file that decide how a tokenizer is trained
// and how it normalises text (SPEC §5: the challenge's tokenizer loads as is, and `pgolf data`
// trains new ones the same way).
//
// A `.model` is a protobuf ModelProto; Debian ships no C++ header for it, so this is a small
// reader of the protobuf wire format for just these fields. Field numbers and defaults are
// those of sentencepiece_model.proto (read from the descriptor in python3-sentencepiece's
// sentencepiece/sentencepiece_model_pb2.py, version 0.1.97): a field absent from the file
// has its proto default, which is the default member value below.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace pgolf {

// TrainerSpec.ModelType.
enum class SpModelType : int32_t { kUnigram = 1, kBpe = 2, kWord = 3, kChar = 4 };

// ModelProto.trainer_spec (field 2): the settings that shape the vocabulary.
struct SpTrainerSettings {
  SpModelType model_type = SpModelType::kUnigram;  // 3
  int32_t vocab_size = 8000;                       // 4
  float character_coverage = 0.9995f;              // 10
  int32_t max_sentence_length = 4192;              // 18 (bytes; longer sentences are skipped)
  int32_t max_sentencepiece_length = 16;           // 20
  bool split_by_unicode_script = true;             // 21
  bool split_by_whitespace = true;                 // 22
  bool split_by_number = true;                     // 23
  bool treat_whitespace_as_suffix = false;         // 24
  bool split_digits = false;                       // 25
  bool allow_whitespace_only_pieces = false;       // 26
  bool hard_vocab_limit = true;                    // 33
  bool use_all_vocab = false;                      // 34
  bool byte_fallback = false;                      // 35
  int32_t unk_id = 0;                              // 40
  int32_t bos_id = 1;                              // 41
  int32_t eos_id = 2;                              // 42
  int32_t pad_id = -1;                             // 43

  bool operator==(const SpTrainerSettings&) const = default;
};

// ModelProto.normalizer_spec (field 3), without its compiled rules.
struct SpNormalizerSettings {
  std::string name;                      // 1: a rule set built into SentencePiece ("nmt_nfkc")
  bool add_dummy_prefix = true;          // 3
  bool remove_extra_whitespaces = true;  // 4
  bool escape_whitespaces = true;        // 5

  bool operator==(const SpNormalizerSettings&) const = default;
};

struct SpSettings {
  SpTrainerSettings trainer;
  SpNormalizerSettings normalizer;

  bool operator==(const SpSettings&) const = default;
};

struct SpModelSpec {
  SpSettings settings;
  // normalizer_spec.precompiled_charsmap (field 2): the compiled normalisation rules. Training
  // fills it in from normalizer.name, so two models normalise alike iff these bytes agree.
  std::string precompiled_charsmap;
};

// Parses the serialized ModelProto `bytes`; `origin` (a path) names it in errors.
SpModelSpec parse_sp_model_spec(std::string_view bytes, const std::string& origin);

// The bytes of the `.model` file at `path` (errors name it: missing, a directory, unreadable).
std::string read_sp_model_bytes(const std::string& path);

// Reads and parses the `.model` file at `path`.
SpModelSpec read_sp_model_spec(const std::string& path);

// The settings of the challenge's tokenizers, as read from /work/shared/data/
// fineweb_1024_bpe.model (tests/data/test_sp_model_spec.cpp checks them against that file):
// BPE, vocab 1024, character_coverage 0.999 (as float32), split_digits, hard_vocab_limit off,
// no byte fallback, ids pad 0 / bos 1 / eos 2 / unk 3; normaliser nmt_nfkc without the dummy
// prefix, collapsing whitespace runs and escaping spaces as U+2581. Every other trainer field
// is absent from that file, i.e. the proto default. (fineweb_8192_bpe.model differs only in
// vocab 8192 and byte_fallback on.) It is not read at run time, as CI has no such file.
SpSettings challenge_tokenizer_settings();

}  // namespace pgolf
