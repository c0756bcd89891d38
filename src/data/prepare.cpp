// `pgolf data` (SPEC §6): the order of the steps is what keeps validation text out of the
// tokenizer — validation documents are read only after the tokenizer exists.
#include "data/prepare.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/corpus.h"
#include "data/data_dir.h"
#include "data/tokenizer.h"
#include "io/atomic_file.h"
#include "io/shard.h"

namespace fs = std::filesystem;

namespace pgolf {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// SPEC §5: a data directory's shards are DIR/*_train_*.bin and DIR/*_val_*.bin.
bool is_shard_name(const std::string& name) {
  return is_split_shard(name, "train") || is_split_shard(name, "val");
}

std::vector<std::string> shards_in(const fs::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (is_shard_name(entry.path().filename().string()))
      names.push_back(entry.path().filename().string());
  if (ec) fail(dir.string(), ": cannot list the output directory (", ec.message(), ")");
  std::sort(names.begin(), names.end());
  return names;
}

// Refuses to mix new shards with old ones; the directory itself is made only once there is
// something to write, so a failed run leaves nothing behind.
void check_out_dir(const PrepareOptions& o) {
  PGOLF_CHECK(!o.out_dir.empty(), "an output directory (--out) is required");
  std::error_code ec;
  if (!fs::exists(o.out_dir, ec)) return;
  if (!fs::is_directory(o.out_dir)) fail(o.out_dir, ": exists and is not a directory");
  const auto shards = shards_in(o.out_dir);
  if (!shards.empty() && !o.force)
    fail(o.out_dir, ": already holds token shards (", shards.front(),
         shards.size() > 1 ? ", ..." : "", "); give --force to replace them");
}

void make_out_dir(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail(dir, ": cannot create the output directory (", ec.message(), ")");
}

std::vector<std::string> read_documents(const std::vector<Document>& docs) {
  std::vector<std::string> texts;
  texts.reserve(docs.size());
  for (const Document& d : docs) texts.push_back(read_document(d));
  return texts;
}

// Shards hold token ids as uint16, and every document starts with BOS.
void check_tokenizer(const Tokenizer& tok, const std::string& origin) {
  if (tok.vocab_size() > 65536)
    fail(origin, ": its vocabulary of ", tok.vocab_size(),
         " pieces does not fit token shards, which hold 16-bit ids");
  if (tok.bos_id() < 0) fail(origin, ": the tokenizer has no <s> piece to start documents with");
}

Tokenizer make_tokenizer(const PrepareOptions& o, const std::vector<std::string>& train_texts,
                         PrepareReport& report) {
  if (!o.tokenizer.empty()) {
    Tokenizer tok = Tokenizer::load(o.tokenizer);
    check_tokenizer(tok, o.tokenizer);
    report.tokenizer_source = o.tokenizer;
    return tok;
  }
  if (o.vocab_size < 1 || o.vocab_size > 65536)
    fail("the vocabulary size must lie between 1 and 65536 (token shards hold 16-bit ids); got ",
         o.vocab_size);
  SpSettings settings = challenge_tokenizer_settings();
  settings.trainer.vocab_size = o.vocab_size;
  settings.trainer.byte_fallback = o.byte_fallback;
  const auto start = Clock::now();
  std::string model = train_tokenizer(train_texts, settings);
  report.tokenizer_seconds = seconds_since(start);
  report.tokenizer_source = "trained";
  Tokenizer tok = Tokenizer::from_bytes(std::move(model), "the trained tokenizer");
  check_tokenizer(tok, "the trained tokenizer");
  return tok;
}

struct TokenizedSplit {
  std::vector<uint16_t> tokens;
  SplitStats stats;
};

// Each document becomes BOS followed by its tokens, documents in order (SPEC §5, as the
// challenge's shards). Documents are encoded in parallel; the result does not depend on it.
TokenizedSplit tokenize(const Tokenizer& tok, const std::vector<std::string>& texts) {
  const auto n = static_cast<int64_t>(texts.size());
  std::vector<Encoding> encoded(texts.size());
  std::exception_ptr error;
#pragma omp parallel for schedule(dynamic)
  for (int64_t i = 0; i < n; ++i) {
    try {
      encoded[i] = tok.encode_normalized(texts[i]);
    } catch (...) {
#pragma omp critical
      error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);

  TokenizedSplit out;
  out.stats.documents = n;
  for (const Encoding& e : encoded) {
    out.tokens.push_back(static_cast<uint16_t>(tok.bos_id()));
    for (int32_t id : e.ids) {
      out.tokens.push_back(static_cast<uint16_t>(id));
      out.stats.unk += id == tok.unk_id();
    }
    out.stats.bytes += static_cast<int64_t>(e.normalized.size());
  }
  out.stats.tokens = static_cast<int64_t>(out.tokens.size());
  return out;
}

// <prefix>_<split>_NNNNNN.bin, kMaxShardTokens tokens each (the last one fewer).
std::vector<std::string> write_shards(const fs::path& dir, const std::string& prefix,
                                      const std::string& split,
                                      const std::vector<uint16_t>& tokens) {
  std::vector<std::string> names;
  for (size_t begin = 0; begin < tokens.size(); begin += kMaxShardTokens) {
    char name[64];
    std::snprintf(name, sizeof name, "%s_%s_%06zu.bin", prefix.c_str(), split.c_str(),
                  names.size());
    const size_t end = std::min(tokens.size(), begin + static_cast<size_t>(kMaxShardTokens));
    io::write_shard((dir / name).string(),
                    std::vector<uint16_t>(tokens.begin() + begin, tokens.begin() + end));
    names.push_back(name);
  }
  return names;
}

// With --force, shards of an earlier run that this run did not rewrite would otherwise be
// read as part of the new data.
void remove_stale_shards(const fs::path& dir, const PrepareReport& r) {
  for (const std::string& name : shards_in(dir)) {
    const auto& t = r.train.shards;
    const auto& v = r.val.shards;
    if (std::find(t.begin(), t.end(), name) != t.end() ||
        std::find(v.begin(), v.end(), name) != v.end())
      continue;
    std::error_code ec;
    fs::remove(dir / name, ec);
    if (ec) fail((dir / name).string(), ": cannot remove this old shard (", ec.message(), ")");
  }
}

nlohmann::json split_json(const SplitStats& s) {
  return {{"documents", s.documents},
          {"tokens", s.tokens},
          {"bytes", s.bytes},
          {"unk", s.unk},
          {"shards", s.shards}};
}

void write_data_json(const fs::path& dir, const PrepareOptions& o, const PrepareReport& r) {
  const nlohmann::json j = {
      {"corpus", o.texts.empty() ? nlohmann::json(default_corpus_dir()) : nlohmann::json(o.texts)},
      {"tokenizer", "tokenizer.model"},  // relative to this directory
      {"tokenizer_source", r.tokenizer_source},
      {"vocab_size", r.vocab_size},
      {"byte_fallback", r.byte_fallback},
      {"val_fraction", o.val_fraction},
      {"train", split_json(r.train)},
      {"val", split_json(r.val)},
      {"val_documents", r.val_names},
  };
  io::write_file_atomic((dir / "data.json").string(),
                        [&](std::ostream& out) { out << j.dump(2) << '\n'; });
}

}  // namespace

PrepareReport prepare_data(const PrepareOptions& o) {
  const auto start = Clock::now();
  check_out_dir(o);
  const DocumentSplit split = split_documents(list_documents(o.texts), o.val_fraction);

  PrepareReport r;
  for (const Document& d : split.val) r.val_names.push_back(d.name);
  const std::vector<std::string> train_texts = read_documents(split.train);
  const Tokenizer tok = make_tokenizer(o, train_texts, r);
  const TokenizedSplit train = tokenize(tok, train_texts);
  const TokenizedSplit val = tokenize(tok, read_documents(split.val));
  r.vocab_size = tok.vocab_size();
  r.byte_fallback = tok.spec().settings.trainer.byte_fallback;

  make_out_dir(o.out_dir);
  const fs::path dir = o.out_dir;
  const std::string prefix = o.texts.empty() ? "sotu" : "text";
  io::write_file_atomic((dir / "tokenizer.model").string(),
                        [&](std::ostream& out) { out << tok.model_bytes(); });
  r.train = train.stats;
  r.val = val.stats;
  r.train.shards = write_shards(dir, prefix, "train", train.tokens);
  r.val.shards = write_shards(dir, prefix, "val", val.tokens);
  remove_stale_shards(dir, r);
  write_data_json(dir, o, r);
  r.seconds = seconds_since(start);
  return r;
}

}  // namespace pgolf
