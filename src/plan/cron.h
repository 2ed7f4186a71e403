// Cron schedules of the plan file: five-field expressions ("15 * * * *", "0 1 * * MON-FRI",
// "@daily") evaluated in UTC or an IANA time zone. The dialect and the daylight saving
// rules are specified in docs/plan-reference.md, "Schedules".
#pragma once

#include <bitset>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "plan/timezone.h"
#include "util/status.h"

namespace lb::plan {

// Where and why an expression does not parse.
struct CronSyntaxError {
  size_t column = 1;    // 1-based, in the expression as written
  std::string message;  // "hour field: 25 is out of range 0-23"
};

// The parsed fields of an expression; which minutes of which days match.
class CronExpression {
 public:
  // Parses an expression: 5 fields separated by blanks (minute 0-59, hour 0-23,
  // day-of-month 1-31, month 1-12 or JAN-DEC, day-of-week 0-7 or SUN-SAT with 0 and 7 both
  // Sunday), each a comma list of '*', N, N-M, optionally followed by /STEP, or one of
  // @hourly @daily @midnight @weekly @monthly @yearly @annually. Names are case-insensitive.
  // An expression that can never match (day 30 of February) is an error too.
  // Advanced: "@every DURATION" (units s, m, h, e.g. "@every 5s", "@every 1h30m") runs at
  // every multiple of DURATION since the Unix epoch, in UTC whatever the zone; it exists for
  // tests and sub-minute schedules, since cron proper is minute-granular.
  // Errors: kInvalidArgument, "bad cron expression '...': column C: <field> field: <what>".
  static Result<CronExpression> Parse(std::string_view text);
  // The same parser, with the column of the error for callers that point into a file.
  static std::optional<CronSyntaxError> Check(std::string_view text);

  const std::string& text() const { return text_; }
  // Seconds between runs of an "@every" expression; 0 for a cron expression.
  int64_t every() const { return every_; }

  // Whether the wall-clock minute `local` (seconds, any second within the minute) matches.
  // Day-of-month and day-of-week: when both are restricted (neither is written '*'), a day
  // matches when either matches; otherwise both must (the '*' one always does).
  bool Matches(LocalSeconds local) const;
  // The first matching wall-clock minute at or after `local`, or nullopt when there is
  // none within 10 years (never, for an expression that parsed).
  std::optional<LocalSeconds> NextMatch(LocalSeconds local) const;

 private:
  friend class CronParser;
  bool DayMatches(int64_t days) const;

  std::string text_;
  int64_t every_ = 0;
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_;    // bit 1-31
  std::bitset<13> months_;  // bit 1-12
  std::bitset<7> weekdays_;  // bit 0 = Sunday
  bool days_restricted_ = false;
  bool weekdays_restricted_ = false;
};

// An expression in a time zone: when a job runs. Cheap to copy; immutable, so safe to use
// from several threads.
class CronSchedule {
 public:
  CronSchedule() : CronSchedule(*CronExpression::Parse("@daily"), TimeZone::Utc()) {}
  CronSchedule(CronExpression expr, TimeZone zone)
      : expr_(std::move(expr)), zone_(std::move(zone)) {}

  const CronExpression& expression() const { return expr_; }
  const TimeZone& zone() const { return zone_; }

  // The first run strictly after `after`, as a UTC instant (whole minutes; for "@every N",
  // the next multiple of N seconds since the epoch). Matching
  // wall-clock times are converted with TimeZone::LocalToUtc, so a time inside a
  // spring-forward gap runs at the end of the gap, once (several such times run once
  // together), and a time that a fall-back repeats runs at its first occurrence only.
  // nullopt only when the expression matches no time within 10 years (impossible for an
  // expression that parsed).
  std::optional<UnixSeconds> NextRun(UnixSeconds after) const;
  // The next `count` runs after `after`, ascending.
  std::vector<UnixSeconds> NextRuns(UnixSeconds after, size_t count) const;

  // The shortest and longest time between consecutive runs in [from, from + horizon],
  // looking at no more than `max_runs` runs. With fewer than two runs in the window both
  // are `horizon` (the schedule runs less often than that).
  struct Intervals {
    int64_t shortest = 0;
    int64_t longest = 0;
    size_t runs = 0;
  };
  Intervals IntervalsWithin(UnixSeconds from, int64_t horizon, size_t max_runs = 200000) const;

 private:
  CronExpression expr_;
  TimeZone zone_;
};

}  // namespace lb::plan
