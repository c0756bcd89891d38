#include "train/run_log.h"

#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "core/error.h"

namespace pgolf {

namespace {
std::FILE* open_append(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "a");
  PGOLF_CHECK(f, "cannot open ", path, " for writing");
  return f;
}
}  // namespace

RunLog::RunLog(const std::string& run_dir, bool enabled) {
  if (!enabled) return;
  log_ = open_append((std::filesystem::path(run_dir) / "log.txt").string());
  metrics_ = open_append((std::filesystem::path(run_dir) / "metrics.jsonl").string());
  tty_ = isatty(fileno(stdout));
}

RunLog::~RunLog() {
  end_progress();
  if (log_) std::fclose(log_);
  if (metrics_) std::fclose(metrics_);
}

void RunLog::end_progress() {
  if (progress_shown_) std::fputs("\r\033[K", stdout);
  progress_shown_ = false;
}

void RunLog::line(const std::string& text) {
  if (!log_) return;
  end_progress();
  std::printf("%s\n", text.c_str());
  std::fflush(stdout);
  std::fprintf(log_, "%s\n", text.c_str());
  std::fflush(log_);
}

void RunLog::event(const nlohmann::json& e) {
  if (!metrics_) return;
  std::fprintf(metrics_, "%s\n", e.dump().c_str());
  std::fflush(metrics_);
}

void RunLog::progress(const std::string& text) {
  if (!tty_) return;
  std::printf("\r\033[K%s", text.c_str());
  std::fflush(stdout);
  progress_shown_ = true;
}

std::string format_duration(double seconds) {
  const int64_t s = int64_t(std::llround(std::max(seconds, 0.0)));
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", (long long)(s / 3600),
                  (long long)(s / 60 % 60), (long long)(s % 60));
  else
    std::snprintf(buf, sizeof buf, "%lld:%02lld", (long long)(s / 60), (long long)(s % 60));
  return buf;
}

}  // namespace pgolf
