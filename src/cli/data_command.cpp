// `pgolf data`: a tokenizer and token shards from text (SPEC §6), in the data-directory layout
// of SPEC §5; with no --text, the built-in default corpus.
#include <cstdio>

#include "cli/commands.h"
#include "data/prepare.h"

namespace pgolf {
namespace {

void print_split(const char* name, const SplitStats& s) {
  std::printf("  %-5s %6lld documents %10lld tokens %11lld bytes %7lld <unk>  -> %s%s\n", name,
              (long long)s.documents, (long long)s.tokens, (long long)s.bytes, (long long)s.unk,
              s.shards.front().c_str(), s.shards.size() > 1 ? " ..." : "");
}

void print_report(const PrepareOptions& o, const PrepareReport& r) {
  if (r.tokenizer_source == "trained")
    std::printf("tokenizer: trained SentencePiece BPE, vocab %d, byte fallback %s (%.1f s)\n",
                r.vocab_size, r.byte_fallback ? "on" : "off", r.tokenizer_seconds);
  else
    std::printf("tokenizer: %s, vocab %d, byte fallback %s\n", r.tokenizer_source.c_str(),
                r.vocab_size, r.byte_fallback ? "on" : "off");
  print_split("train", r.train);
  print_split("val", r.val);
  std::printf("wrote %s (tokenizer.model, shards, data.json) in %.1f s\n", o.out_dir.c_str(),
              r.seconds);
}

}  // namespace

void add_data_command(CLI::App& app) {
  auto o = std::make_shared<PrepareOptions>();
  auto* cmd = app.add_subcommand(
      "data", "Build a tokenizer and token shards from text (default: the built-in corpus)");
  cmd->add_option("--text", o->texts,
                  "A text file (one document) or a directory of .txt files; repeatable");
  auto* vocab =
      cmd->add_option("--vocab", o->vocab_size, "Vocabulary size of the trained tokenizer")
          ->capture_default_str();
  auto* fallback = cmd->add_flag(
      "--byte-fallback", o->byte_fallback,
      "Train with byte fallback: unseen characters become byte pieces instead of <unk>");
  cmd->add_option("--tokenizer", o->tokenizer,
                  "Use this SentencePiece .model instead of training one")
      ->excludes(vocab)
      ->excludes(fallback);
  cmd->add_option("--val-fraction", o->val_fraction,
                  "Share of documents (by a hash of the file name) held out for validation")
      ->capture_default_str();
  cmd->add_option("--out", o->out_dir, "Data directory to write")->required();
  cmd->add_flag("--force", o->force, "Replace the shards already in --out");
  cmd->callback([o] { print_report(*o, prepare_data(*o)); });
}

}  // namespace pgolf
