#include "repo/names.h"

#include <ctime>

#include <chrono>

namespace lb::repo {

bool IdFromName(std::string_view name, crypto::Id& out) {
  size_t slash = name.rfind('/');
  std::string_view last = slash == std::string_view::npos ? name : name.substr(slash + 1);
  return crypto::Id::Parse(last, out);
}

std::string FormatRfc3339(int64_t unix_ns) {
  int64_t secs = unix_ns >= 0 ? unix_ns / 1000000000 : (unix_ns - 999999999) / 1000000000;
  int64_t frac = unix_ns - secs * 1000000000;
  time_t t = time_t(secs);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[64];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:09d}Z", buf, frac);
}

std::string NowRfc3339() {
  auto now = std::chrono::system_clock::now().time_since_epoch();
  return FormatRfc3339(std::chrono::duration_cast<std::chrono::nanoseconds>(now).count());
}

size_t ParseFraction(std::string_view text, size_t i, int64_t& ns) {
  ns = 0;
  if (i >= text.size() || text[i] != '.') return i;
  ++i;
  int digits = 0;
  while (i < text.size() && isdigit(static_cast<unsigned char>(text[i]))) {
    if (digits < 9) {
      ns = ns * 10 + (text[i] - '0');
      ++digits;
    }
    ++i;
  }
  while (digits++ < 9) ns *= 10;
  return i;
}

bool ParseRfc3339(std::string_view s, int64_t& unix_ns) {
  struct tm tm {};
  int y, mo, d, h, mi, sec;
  std::string str(s);
  int consumed = 0;
  if (sscanf(str.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &consumed) != 6)
    return false;
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  int64_t ns = 0;
  size_t i = ParseFraction(str, size_t(consumed), ns);
  if (i >= str.size() || str[i] != 'Z') return false;
  unix_ns = int64_t(timegm(&tm)) * 1000000000 + ns;
  return true;
}

}  // namespace lb::repo
