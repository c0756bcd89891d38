// What a training run reports (SPEC §6): RUN_DIR/log.txt (human-readable lines, also printed),
// RUN_DIR/metrics.jsonl (one JSON object per event, always with "step"), and a live
// progress line on the console when it is a terminal.
#pragma once
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

namespace pgolf {

class RunLog {
 public:
  // Appends to the files of RUN_DIR (a resumed run continues them). A log that is not
  // `enabled` (every rank but rank 0 of a data-parallel job) writes and prints nothing.
  explicit RunLog(const std::string& run_dir, bool enabled = true);
  ~RunLog();
  RunLog(const RunLog&) = delete;
  RunLog& operator=(const RunLog&) = delete;

  // A line for log.txt and the console.
  void line(const std::string& text);
  // One metrics.jsonl event (flushed at once, so a crash loses nothing logged).
  void event(const nlohmann::json& e);
  // Overwrites the console's progress line (terminals only; nothing is written elsewhere).
  void progress(const std::string& text);

 private:
  void end_progress();
  std::FILE* log_ = nullptr;
  std::FILE* metrics_ = nullptr;
  bool tty_ = false, progress_shown_ = false;
};

// "1:05" / "1:02:03" for elapsed and remaining times.
std::string format_duration(double seconds);

}  // namespace pgolf
