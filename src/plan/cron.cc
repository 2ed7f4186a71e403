#include "plan/cron.h"

#include <algorithm>
#include <array>
#include <cctype>

namespace lb::plan {

namespace {

constexpr int64_t kMinute = 60;
constexpr int64_t kHour = 3600;
constexpr int64_t kDay = 86400;
// The longest wait for a valid expression is 8 years (February 29 across 2100); give up
// after 10.
constexpr int64_t kSearchYears = 10;

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

struct FieldSpec {
  const char* name;
  int min;
  int max;
  const char* const* names;  // names[i] is value i + names_base; nullptr when none
  int names_base;
  size_t names_count;
};

constexpr const char* kMonthNames[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                       "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr const char* kDayNames[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

constexpr FieldSpec kFields[5] = {
    {"minute", 0, 59, nullptr, 0, 0},
    {"hour", 0, 23, nullptr, 0, 0},
    {"day-of-month", 1, 31, nullptr, 0, 0},
    {"month", 1, 12, kMonthNames, 1, 12},
    {"day-of-week", 0, 7, kDayNames, 0, 7},
};

struct Macro {
  const char* name;
  const char* expansion;
};
constexpr Macro kMacros[] = {
    {"@hourly", "0 * * * *"},  {"@daily", "0 0 * * *"},   {"@midnight", "0 0 * * *"},
    {"@weekly", "0 0 * * 0"},  {"@monthly", "0 0 1 * *"}, {"@yearly", "0 0 1 1 *"},
    {"@annually", "0 0 1 1 *"},
};

std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = char(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

// Parses one expression into a CronExpression; the first error wins and says where.
class CronParser {
 public:
  explicit CronParser(std::string_view text) : text_(text) {}

  std::optional<CronSyntaxError> Run(CronExpression& out) {
    out.text_ = std::string(text_);
    size_t first = text_.find_first_not_of(" \t");
    if (first == std::string_view::npos) return Error(1, "empty expression; expected 5 fields "
                                                         "(minute hour day-of-month month "
                                                         "day-of-week) or a macro such as @daily");
    if (text_[first] == '@') return RunMacro(out, first);
    return RunFields(out, text_, 0);
  }

 private:
  std::optional<CronSyntaxError> Error(size_t column, std::string message) {
    return CronSyntaxError{column, std::move(message)};
  }

  std::optional<CronSyntaxError> RunMacro(CronExpression& out, size_t at) {
    size_t end = text_.find_first_of(" \t", at);
    std::string_view word = text_.substr(at, end == std::string_view::npos ? end : end - at);
    std::string lower(word);
    for (char& c : lower) c = char(std::tolower(static_cast<unsigned char>(c)));
    if (lower == "@every") return RunEvery(out, at, end);
    if (end != std::string_view::npos && text_.find_first_not_of(" \t", end) != std::string_view::npos)
      return Error(text_.find_first_not_of(" \t", end) + 1,
                   fmt::format("unexpected text after {}; a macro stands alone", word));
    if (lower == "@reboot")
      return Error(at + 1, "@reboot is not a schedule (a plan job runs at times of day)");
    for (const auto& m : kMacros) {
      if (lower == m.name) {
        auto err = RunFields(out, m.expansion, 0);
        out.text_ = std::string(text_);
        return err;
      }
    }
    return Error(at + 1, fmt::format("unknown macro '{}'; expected @hourly, @daily, @weekly, "
                                     "@monthly or @yearly",
                                     word));
  }

  // "@every 5s", "@every 1h30m": one or more <number><unit>, units s, m (minutes), h, each
  // once; at least 1 second and at most 7 days.
  std::optional<CronSyntaxError> RunEvery(CronExpression& out, size_t at, size_t end) {
    size_t i = end == std::string_view::npos ? text_.size() : text_.find_first_not_of(" \t", end);
    if (i == std::string_view::npos || i >= text_.size())
      return Error(at + 1, "@every needs a duration, e.g. '@every 30s' or '@every 1h30m'");
    size_t stop = text_.find_first_of(" \t", i);
    if (stop != std::string_view::npos && text_.find_first_not_of(" \t", stop) != std::string_view::npos)
      return Error(text_.find_first_not_of(" \t", stop) + 1,
                   "unexpected text after the duration of @every");
    std::string_view d = text_.substr(i, stop == std::string_view::npos ? stop : stop - i);
    int64_t total = 0;
    std::string seen;
    size_t k = 0;
    while (k < d.size()) {
      size_t start = k;
      int64_t n = 0;
      while (k < d.size() && d[k] >= '0' && d[k] <= '9' && n < 100000000) n = n * 10 + (d[k++] - '0');
      if (k == start)
        return Error(i + k + 1, fmt::format("@every: expected a number at '{}'", d.substr(k)));
      if (k == d.size())
        return Error(i + k + 1, fmt::format("@every: '{}' has no unit (s, m or h)", d.substr(start)));
      char u = char(std::tolower(static_cast<unsigned char>(d[k])));
      int64_t mult = u == 's' ? 1 : u == 'm' ? kMinute : u == 'h' ? kHour : 0;
      if (mult == 0 || seen.find(u) != std::string::npos)
        return Error(i + k + 1, fmt::format("@every: unit '{}' is not s, m or h (each once)", d[k]));
      seen += u;
      total += n * mult;
      ++k;
    }
    if (total < 1 || total > 7 * kDay)
      return Error(i + 1, "@every: the interval must be from 1s to 168h");
    out.every_ = total;
    return std::nullopt;
  }

  // `base` is the column offset of `fields` within the text (0 for the text itself).
  std::optional<CronSyntaxError> RunFields(CronExpression& out, std::string_view fields,
                                           size_t base) {
    std::array<std::string_view, 5> field;
    std::array<size_t, 5> column{};
    size_t n = 0, i = 0;
    while (true) {
      i = fields.find_first_not_of(" \t", i);
      if (i == std::string_view::npos) break;
      size_t end = fields.find_first_of(" \t", i);
      if (end == std::string_view::npos) end = fields.size();
      if (n == 5)
        return Error(base + i + 1,
                     fmt::format("unexpected 6th field '{}'; an expression has 5 fields "
                                 "(minute hour day-of-month month day-of-week), without "
                                 "seconds or years",
                                 fields.substr(i, end - i)));
      field[n] = fields.substr(i, end - i);
      column[n] = base + i + 1;
      ++n;
      i = end;
    }
    if (n < 5)
      return Error(fields.size() + base + 1,
                   fmt::format("expected 5 fields (minute hour day-of-month month "
                               "day-of-week), got {}; the {} field is missing",
                               n, kFields[n].name));
    std::array<uint64_t, 5> bits{};
    for (size_t f = 0; f < 5; ++f) {
      auto err = ParseField(kFields[f], field[f], column[f], bits[f]);
      if (err) return err;
    }
    for (int b = 0; b < 60; ++b) out.minutes_[size_t(b)] = bits[0] >> b & 1;
    for (int b = 0; b < 24; ++b) out.hours_[size_t(b)] = bits[1] >> b & 1;
    for (int b = 1; b < 32; ++b) out.days_[size_t(b)] = bits[2] >> b & 1;
    for (int b = 1; b < 13; ++b) out.months_[size_t(b)] = bits[3] >> b & 1;
    for (int b = 0; b < 7; ++b) out.weekdays_[size_t(b)] = bits[4] >> b & 1;
    if (bits[4] >> 7 & 1) out.weekdays_[0] = true;  // 7 is Sunday too
    out.days_restricted_ = field[2] != "*";
    out.weekdays_restricted_ = field[4] != "*";

    // A day-of-month that no selected month has never runs (unless day-of-week may match
    // instead).
    if (out.days_restricted_ && !out.weekdays_restricted_) {
      bool possible = false;
      for (unsigned m = 1; m <= 12 && !possible; ++m) {
        if (!out.months_[m]) continue;
        unsigned max_day = m == 2 ? 29 : DaysInMonth(2001, m);
        for (unsigned d = 1; d <= max_day && !possible; ++d) possible = out.days_[d];
      }
      if (!possible)
        return Error(column[2], fmt::format("day-of-month field: '{}' never occurs in the "
                                            "selected months, so the schedule never runs",
                                            field[2]));
    }
    return std::nullopt;
  }

  // A number or (for month and day-of-week) a name; `column` is where `tok` starts.
  std::optional<CronSyntaxError> ParseValue(const FieldSpec& spec, std::string_view tok,
                                            size_t column, int& value) {
    if (tok.empty())
      return Error(column, fmt::format("{} field: expected a number", spec.name));
    if (std::isdigit(static_cast<unsigned char>(tok[0]))) {
      int v = 0;
      for (size_t k = 0; k < tok.size(); ++k) {
        if (!std::isdigit(static_cast<unsigned char>(tok[k])))
          return Error(column + k, fmt::format("{} field: unexpected '{}' in '{}'", spec.name,
                                               tok[k], tok));
        v = std::min(v * 10 + (tok[k] - '0'), 1000000);
      }
      if (v < spec.min || v > spec.max)
        return Error(column, fmt::format("{} field: {} is out of range {}-{}", spec.name, tok,
                                         spec.min, spec.max));
      value = v;
      return std::nullopt;
    }
    if (spec.names != nullptr) {
      std::string up = Upper(tok);
      for (size_t k = 0; k < spec.names_count; ++k) {
        if (up == spec.names[k]) {
          value = int(k) + spec.names_base;
          return std::nullopt;
        }
      }
      return Error(column, fmt::format("{} field: unknown name '{}'; expected {}-{} or {}-{}",
                                       spec.name, tok, spec.names[0],
                                       spec.names[spec.names_count - 1], spec.min, spec.max));
    }
    return Error(column, fmt::format("{} field: expected a number {}-{}, '*' or a range, got "
                                     "'{}'",
                                     spec.name, spec.min, spec.max, tok));
  }

  std::optional<CronSyntaxError> ParseField(const FieldSpec& spec, std::string_view field,
                                            size_t column, uint64_t& bits) {
    size_t start = 0;
    while (true) {
      size_t comma = field.find(',', start);
      std::string_view item =
          field.substr(start, comma == std::string_view::npos ? comma : comma - start);
      size_t item_col = column + start;
      if (item.empty())
        return Error(item_col, fmt::format("{} field: empty list item", spec.name));
      auto err = ParseItem(spec, item, item_col, bits);
      if (err) return err;
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
    return std::nullopt;
  }

  std::optional<CronSyntaxError> ParseItem(const FieldSpec& spec, std::string_view item,
                                           size_t column, uint64_t& bits) {
    size_t slash = item.find('/');
    std::string_view range = item.substr(0, slash);
    int lo = spec.min, hi = spec.max, step = 1;
    // Day-of-week: '*' means 0-6 (7 is only an alias of 0).
    if (spec.max == 7) hi = 6;
    if (slash != std::string_view::npos) {
      std::string_view s = item.substr(slash + 1);
      size_t s_col = column + slash + 1;
      if (s.empty() || !std::all_of(s.begin(), s.end(), [](char c) {
            return std::isdigit(static_cast<unsigned char>(c));
          }))
        return Error(s_col, fmt::format("{} field: expected a step number after '/', got '{}'",
                                        spec.name, s));
      step = 0;
      for (char c : s) step = std::min(step * 10 + (c - '0'), 1000000);
      if (step < 1)
        return Error(s_col, fmt::format("{} field: a step is at least 1", spec.name));
    }
    if (range == "*") {
      // lo, hi as above
    } else {
      size_t dash = range.find('-', 1);
      auto err = ParseValue(spec, range.substr(0, dash), column, lo);
      if (err) return err;
      if (dash != std::string_view::npos) {
        auto err2 = ParseValue(spec, range.substr(dash + 1), column + dash + 1, hi);
        if (err2) return err2;
        if (hi < lo)
          return Error(column, fmt::format("{} field: range '{}' goes backwards; write it as "
                                           "two ranges",
                                           spec.name, range));
      } else if (slash != std::string_view::npos) {
        hi = spec.max == 7 ? 6 : spec.max;  // "N/STEP": from N to the end of the field
        if (lo > hi) hi = lo;
      } else {
        hi = lo;
      }
    }
    for (int v = lo; v <= hi; v += step) bits |= uint64_t(1) << v;
    return std::nullopt;
  }

  std::string_view text_;
};

Result<CronExpression> CronExpression::Parse(std::string_view text) {
  CronExpression e;
  auto err = CronParser(text).Run(e);
  if (err)
    return Status(Code::kInvalidArgument, fmt::format("bad cron expression '{}': column {}: {}",
                                                      text, err->column, err->message))
        .WithHint("five fields: minute hour day-of-month month day-of-week, e.g. '15 1 * * *' "
                  "(01:15 every day); see docs/plan-reference.md");
  return e;
}

std::optional<CronSyntaxError> CronExpression::Check(std::string_view text) {
  CronExpression e;
  return CronParser(text).Run(e);
}

bool CronExpression::DayMatches(int64_t days) const {
  CivilDate c = CivilFromDays(days);
  if (!months_[c.month]) return false;
  bool dom = days_[c.day];
  bool dow = weekdays_[WeekdayFromDays(days)];
  if (days_restricted_ && weekdays_restricted_) return dom || dow;
  return dom && dow;
}

bool CronExpression::Matches(LocalSeconds local) const {
  if (every_ > 0) return local % every_ == 0;
  int64_t days = FloorDiv(local, kDay);
  int64_t secs = local - days * kDay;
  return DayMatches(days) && hours_[size_t(secs / kHour)] && minutes_[size_t(secs / kMinute % 60)];
}

std::optional<LocalSeconds> CronExpression::NextMatch(LocalSeconds local) const {
  if (every_ > 0) return FloorDiv(local + every_ - 1, every_) * every_;
  int64_t t = FloorDiv(local + kMinute - 1, kMinute) * kMinute;  // round up to a minute
  int64_t limit_year = CivilFromDays(FloorDiv(t, kDay)).year + kSearchYears;
  while (true) {
    int64_t days = FloorDiv(t, kDay);
    CivilDate c = CivilFromDays(days);
    if (c.year > limit_year) return std::nullopt;
    if (!months_[c.month]) {
      // First day of the next month.
      unsigned m = c.month == 12 ? 1 : c.month + 1;
      int64_t y = c.month == 12 ? c.year + 1 : c.year;
      t = DaysFromCivil(y, m, 1) * kDay;
      continue;
    }
    if (!DayMatches(days)) {
      t = (days + 1) * kDay;
      continue;
    }
    int64_t secs = t - days * kDay;
    int hour = int(secs / kHour), minute = int(secs / kMinute % 60);
    if (!hours_[size_t(hour)]) {
      int h = hour + 1;
      while (h < 24 && !hours_[size_t(h)]) ++h;
      t = h < 24 ? days * kDay + h * kHour : (days + 1) * kDay;
      continue;
    }
    int m = minute;
    while (m < 60 && !minutes_[size_t(m)]) ++m;
    if (m == 60) {
      t = days * kDay + (hour + 1) * kHour;
      continue;
    }
    return days * kDay + hour * kHour + m * kMinute;
  }
}

std::optional<UnixSeconds> CronSchedule::NextRun(UnixSeconds after) const {
  if (int64_t every = expr_.every(); every > 0) return (FloorDiv(after, every) + 1) * every;
  if (zone_.IsFixed()) {
    int32_t off = zone_.OffsetAt(after);
    auto l = expr_.NextMatch(FloorDiv(after + off, kMinute) * kMinute + kMinute);
    if (!l) return std::nullopt;
    return *l - off;
  }
  // LocalToUtc never decreases, so the first matching local time whose instant is after
  // `after` gives the earliest run. Start from the earliest local time that could map
  // past `after`: offsets in force near it bound how far local and UTC differ.
  int32_t min_off = zone_.MinOffsetBetween(after - 2 * kDay, after + 2 * kDay);
  LocalSeconds from = FloorDiv(after + min_off, kMinute) * kMinute;
  while (true) {
    auto l = expr_.NextMatch(from);
    if (!l) return std::nullopt;
    UnixSeconds t = zone_.LocalToUtc(*l);
    if (t > after) return t;
    from = *l + kMinute;
  }
}

std::vector<UnixSeconds> CronSchedule::NextRuns(UnixSeconds after, size_t count) const {
  std::vector<UnixSeconds> out;
  for (size_t i = 0; i < count; ++i) {
    auto t = NextRun(after);
    if (!t) break;
    out.push_back(*t);
    after = *t;
  }
  return out;
}

CronSchedule::Intervals CronSchedule::IntervalsWithin(UnixSeconds from, int64_t horizon,
                                                      size_t max_runs) const {
  Intervals out{.shortest = horizon, .longest = 0, .runs = 0};
  std::optional<UnixSeconds> prev;
  UnixSeconds after = from;
  while (out.runs < max_runs) {
    auto t = NextRun(after);
    if (!t || *t > from + horizon) break;
    ++out.runs;
    if (prev) {
      out.shortest = std::min(out.shortest, *t - *prev);
      out.longest = std::max(out.longest, *t - *prev);
    }
    prev = t;
    after = *t;
  }
  if (out.runs < 2) out.shortest = out.longest = horizon;
  return out;
}

}  // namespace lb::plan
