// Diagnostics to stderr. Nothing below cli/ prints to stdout; warnings go through here so
// the CLI can count them and tests can capture them.
#pragma once

#include <fmt/core.h>

#include <string>

namespace lb {

enum class LogLevel { kError = 0, kWarning = 1, kInfo = 2, kDebug = 3 };

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
void LogLine(LogLevel level, const std::string& line);

template <typename... Args>
void LogWarning(fmt::format_string<Args...> f, Args&&... args) {
  LogLine(LogLevel::kWarning, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void LogInfo(fmt::format_string<Args...> f, Args&&... args) {
  if (GetLogLevel() >= LogLevel::kInfo) LogLine(LogLevel::kInfo, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void LogDebug(fmt::format_string<Args...> f, Args&&... args) {
  if (GetLogLevel() >= LogLevel::kDebug) LogLine(LogLevel::kDebug, fmt::format(f, std::forward<Args>(args)...));
}

// Renders bytes in the user's words: "1.5 GiB".
std::string HumanBytes(uint64_t n);
// Escapes a file name for display: printable bytes as they are, others as \xNN, newline as \n.
std::string PrintableName(std::string_view raw);

}  // namespace lb
