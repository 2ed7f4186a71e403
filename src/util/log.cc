#include "util/log.h"

#include <atomic>
#include <cstdio>
#include <mutex>

#include <unistd.h>

namespace lb {

namespace {
std::atomic<int> g_level{int(LogLevel::kWarning)};
std::mutex g_mu;
}  // namespace

void SetLogLevel(LogLevel level) { g_level = int(level); }
LogLevel GetLogLevel() { return LogLevel(g_level.load()); }

void LogLine(LogLevel level, const std::string& line) {
  if (int(level) > g_level.load()) return;
  static const char* kPrefix[] = {"error: ", "warning: ", "", "debug: "};
  std::lock_guard lock(g_mu);
  // A progress bar may share a terminal's line: clear it first so messages start at column 0.
  static const bool tty = isatty(2);
  std::fprintf(stderr, "%s%s%s\n", tty ? "\r\033[K" : "", kPrefix[int(level)], line.c_str());
}

std::string HumanBytes(uint64_t n) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = double(n);
  int u = 0;
  while (v >= 1024 && u < 5) {
    v /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", n) : fmt::format("{:.1f} {}", v, kUnits[u]);
}

std::string PrintableName(std::string_view raw) {
  std::string out;
  for (unsigned char c : raw) {
    if (c == '\n') out += "\\n";
    else if (c == '\\') out += "\\\\";
    else if (c < 0x20 || c == 0x7f) out += fmt::format("\\x{:02x}", c);
    else out += char(c);
  }
  // Bytes >= 0x80 pass through; invalid UTF-8 is escaped by the JSON layer where it matters.
  return out;
}

}  // namespace lb
