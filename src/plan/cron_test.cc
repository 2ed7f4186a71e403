// Unit tests of cron expressions, time zones (TZif files of the system tz database) and the
// daylight saving rules of schedules.
#include "plan/cron.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace lb::plan {
namespace {

// "2024-03-31T01:00" (UTC) to seconds.
UnixSeconds T(const std::string& s) {
  int y, mo, d, h, mi, sec = 0;
  EXPECT_GE(sscanf(s.c_str(), "%d-%d-%dT%d:%d:%d", &y, &mo, &d, &h, &mi, &sec), 5) << s;
  return DaysFromCivil(y, unsigned(mo), unsigned(d)) * 86400 + h * 3600 + mi * 60 + sec;
}

CronSchedule Sched(const std::string& expr, const std::string& zone = "UTC") {
  auto e = CronExpression::Parse(expr);
  EXPECT_TRUE(e.ok()) << expr << ": " << e.status().ToString();
  auto z = TimeZone::Load(zone);
  EXPECT_TRUE(z.ok()) << zone << ": " << z.status().ToString();
  return CronSchedule(*e, *z);
}

std::vector<std::string> Runs(const CronSchedule& s, const std::string& after, size_t n) {
  std::vector<std::string> out;
  for (auto t : s.NextRuns(T(after), n)) out.push_back(FormatUtc(t));
  return out;
}

struct NextCase {
  const char* expr;
  const char* zone;
  const char* after;  // UTC
  std::vector<std::string> want;  // UTC, the next runs in order
};

void RunCases(const std::vector<NextCase>& cases) {
  for (const auto& c : cases) {
    auto got = Runs(Sched(c.expr, c.zone), c.after, c.want.size());
    EXPECT_EQ(got, c.want) << "'" << c.expr << "' in " << c.zone << " after " << c.after;
  }
}

TEST(CalendarTest, CivilRoundTrip) {
  EXPECT_EQ(DaysFromCivil(1970, 1, 1), 0);
  EXPECT_EQ(DaysFromCivil(2000, 3, 1), 11017);
  for (int64_t d = -800000; d < 800000; d += 997) {
    CivilDate c = CivilFromDays(d);
    EXPECT_EQ(DaysFromCivil(c.year, c.month, c.day), d);
  }
  EXPECT_EQ(WeekdayFromDays(0), 4u);  // a Thursday
  EXPECT_EQ(WeekdayFromDays(DaysFromCivil(2024, 1, 7)), 0u);
  EXPECT_EQ(WeekdayFromDays(-1), 3u);
  EXPECT_EQ(DaysInMonth(2024, 2), 29u);
  EXPECT_EQ(DaysInMonth(2100, 2), 28u);
  EXPECT_EQ(DaysInMonth(2000, 2), 29u);
  EXPECT_EQ(FormatUtc(T("2024-03-31T01:02:03")), "2024-03-31T01:02:03Z");
}

TEST(CronTest, FieldSyntax) {
  RunCases({
      {"*/15 * * * *", "UTC", "2024-01-01T00:07:30", {"2024-01-01T00:15:00Z", "2024-01-01T00:30:00Z", "2024-01-01T00:45:00Z", "2024-01-01T01:00:00Z"}},
      {"10-50/20 * * * *", "UTC", "2024-01-01T00:10:00", {"2024-01-01T00:30:00Z", "2024-01-01T00:50:00Z", "2024-01-01T01:10:00Z"}},
      {"5,10,55 3 * * *", "UTC", "2024-01-01T03:10:00", {"2024-01-01T03:55:00Z", "2024-01-02T03:05:00Z"}},
      {"0 8-10 * * *", "UTC", "2024-01-01T08:00:00", {"2024-01-01T09:00:00Z", "2024-01-01T10:00:00Z", "2024-01-02T08:00:00Z"}},
      {"30/10 * * * *", "UTC", "2024-01-01T00:00:00", {"2024-01-01T00:30:00Z", "2024-01-01T00:40:00Z", "2024-01-01T00:50:00Z", "2024-01-01T01:30:00Z"}},
      {"1-3,58 0 * * *", "UTC", "2024-01-01T00:02:00", {"2024-01-01T00:03:00Z", "2024-01-01T00:58:00Z", "2024-01-02T00:01:00Z"}},
      {"0 0 * jan-mar mon-fri", "UTC", "2024-03-28T12:00:00", {"2024-03-29T00:00:00Z", "2025-01-01T00:00:00Z"}},
      {"0 0 * * 7", "UTC", "2024-01-01T00:00:00", {"2024-01-07T00:00:00Z", "2024-01-14T00:00:00Z"}},
      {"0 0 * * SUN", "UTC", "2024-01-01T00:00:00", {"2024-01-07T00:00:00Z"}},
      {"0 0 * * 5-7", "UTC", "2024-01-01T00:00:00", {"2024-01-05T00:00:00Z", "2024-01-06T00:00:00Z", "2024-01-07T00:00:00Z", "2024-01-12T00:00:00Z"}},
      {"0 12 * */6 *", "UTC", "2024-01-31T12:00:00", {"2024-07-01T12:00:00Z"}},
      // Strictly after: a run at exactly `after` is not returned again.
      {"0 1 * * *", "UTC", "2024-01-01T01:00:00", {"2024-01-02T01:00:00Z"}},
      {"0 1 * * *", "UTC", "2024-01-01T00:59:59", {"2024-01-01T01:00:00Z"}},
  });
}

TEST(CronTest, Macros) {
  RunCases({
      {"@hourly", "UTC", "2024-01-01T00:00:00", {"2024-01-01T01:00:00Z"}},
      {"@daily", "UTC", "2024-01-01T00:00:00", {"2024-01-02T00:00:00Z"}},
      {"@midnight", "UTC", "2024-01-01T00:00:00", {"2024-01-02T00:00:00Z"}},
      {"@weekly", "UTC", "2024-01-01T00:00:00", {"2024-01-07T00:00:00Z"}},
      {"@monthly", "UTC", "2024-01-15T00:00:00", {"2024-02-01T00:00:00Z"}},
      {"@yearly", "UTC", "2024-01-15T00:00:00", {"2025-01-01T00:00:00Z"}},
      {"@annually", "UTC", "2024-01-15T00:00:00", {"2025-01-01T00:00:00Z"}},
      {"@DAILY", "UTC", "2024-01-01T00:00:00", {"2024-01-02T00:00:00Z"}},
  });
}

// "@every N": multiples of N seconds since the epoch, whatever the zone.
TEST(CronTest, Every) {
  RunCases({
      {"@every 5s", "UTC", "2024-01-01T00:00:00",
       {"2024-01-01T00:00:05Z", "2024-01-01T00:00:10Z", "2024-01-01T00:00:15Z"}},
      {"@every 5s", "UTC", "2024-01-01T00:00:03", {"2024-01-01T00:00:05Z"}},
      {"@every 1m30s", "Europe/Berlin", "2024-01-01T00:00:00",
       {"2024-01-01T00:01:30Z", "2024-01-01T00:03:00Z"}},
      {"@EVERY 1h", "UTC", "2024-01-01T00:59:59", {"2024-01-01T01:00:00Z"}},
  });
  auto iv = Sched("@every 10s").IntervalsWithin(T("2024-01-01T00:00:00"), 3600);
  EXPECT_EQ(iv.shortest, 10);
  EXPECT_EQ(iv.longest, 10);
  EXPECT_EQ(Sched("@every 10s").expression().every(), 10);
  EXPECT_EQ(Sched("0 1 * * *").expression().every(), 0);
  for (const char* bad : {"@every", "@every 0s", "@every 5", "@every 5x", "@every 5s 3",
                          "@every 1s1s", "@every 169h", "@every s"}) {
    auto err = CronExpression::Check(bad);
    EXPECT_TRUE(err.has_value()) << bad;
  }
  auto err = CronExpression::Check("@every 5x");
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->column, 9u);
}

TEST(CronTest, MonthEnds) {
  RunCases({
      // The 31st runs only in months that have one.
      {"0 0 31 * *", "UTC", "2024-01-31T00:00:00", {"2024-03-31T00:00:00Z", "2024-05-31T00:00:00Z", "2024-07-31T00:00:00Z", "2024-08-31T00:00:00Z", "2024-10-31T00:00:00Z", "2024-12-31T00:00:00Z", "2025-01-31T00:00:00Z"}},
      {"0 0 30 * *", "UTC", "2024-01-30T00:00:00", {"2024-03-30T00:00:00Z"}},
      // February 29 only in leap years (2100 is not one).
      {"0 0 29 2 *", "UTC", "2023-01-01T00:00:00", {"2024-02-29T00:00:00Z", "2028-02-29T00:00:00Z"}},
      {"0 0 29 2 *", "UTC", "2096-03-01T00:00:00", {"2104-02-29T00:00:00Z"}},
      {"0 0 28-31 2 *", "UTC", "2023-02-01T00:00:00", {"2023-02-28T00:00:00Z", "2024-02-28T00:00:00Z", "2024-02-29T00:00:00Z"}},
  });
}

TEST(CronTest, DayOfMonthOrDayOfWeek) {
  RunCases({
      // Both restricted: the 13th or any Friday.
      {"0 0 13 * FRI", "UTC", "2024-01-01T00:00:00", {"2024-01-05T00:00:00Z", "2024-01-12T00:00:00Z", "2024-01-13T00:00:00Z", "2024-01-19T00:00:00Z"}},
      {"0 0 1,15 * 1", "UTC", "2024-01-01T00:00:00", {"2024-01-08T00:00:00Z", "2024-01-15T00:00:00Z", "2024-01-22T00:00:00Z", "2024-01-29T00:00:00Z", "2024-02-01T00:00:00Z"}},
      // Day-of-week '*': only the day of month counts.
      {"0 0 13 * *", "UTC", "2024-01-01T00:00:00", {"2024-01-13T00:00:00Z", "2024-02-13T00:00:00Z"}},
      // Day-of-month '*': only the weekday counts.
      {"0 0 * * FRI", "UTC", "2024-01-01T00:00:00", {"2024-01-05T00:00:00Z", "2024-01-12T00:00:00Z"}},
      // A step counts as a restriction (unlike Vixie cron, where a field starting with '*'
      // does not).
      {"0 0 */10 * MON", "UTC", "2024-01-01T00:00:00", {"2024-01-08T00:00:00Z", "2024-01-11T00:00:00Z", "2024-01-15T00:00:00Z"}},
  });
}

TEST(CronTest, YearRollover) {
  RunCases({
      {"0 0 1 1 *", "UTC", "2024-12-31T23:59:00", {"2025-01-01T00:00:00Z", "2026-01-01T00:00:00Z"}},
      {"59 23 31 12 *", "UTC", "2024-12-31T23:59:00", {"2025-12-31T23:59:00Z"}},
      {"*/30 * * * *", "UTC", "2024-12-31T23:45:00", {"2025-01-01T00:00:00Z", "2025-01-01T00:30:00Z"}},
      {"0 0 1 1 *", "Europe/Berlin", "2024-12-31T22:59:00", {"2024-12-31T23:00:00Z", "2025-12-31T23:00:00Z"}},
  });
}

TEST(CronTest, BerlinSpringForwardGap) {
  // 2024-03-31: 02:00 CET becomes 03:00 CEST at 01:00 UTC.
  RunCases({
      // 02:30 does not exist that day: it runs at 03:00 CEST, the end of the gap, once.
      {"30 2 * * *", "Europe/Berlin", "2024-03-30T12:00:00", {"2024-03-31T01:00:00Z", "2024-04-01T00:30:00Z"}},
      // Every 15 minutes: 02:00-02:45 fold into the 03:00 run, which happens once.
      {"*/15 * * * *", "Europe/Berlin", "2024-03-31T00:30:00", {"2024-03-31T00:45:00Z", "2024-03-31T01:00:00Z", "2024-03-31T01:15:00Z"}},
      // Hourly: 01:00 CET, (02:00 folds into) 03:00 CEST, 04:00 CEST.
      {"0 * * * *", "Europe/Berlin", "2024-03-30T23:30:00", {"2024-03-31T00:00:00Z", "2024-03-31T01:00:00Z", "2024-03-31T02:00:00Z"}},
      // Times outside the gap are untouched.
      {"30 3 * * *", "Europe/Berlin", "2024-03-30T12:00:00", {"2024-03-31T01:30:00Z", "2024-04-01T01:30:00Z"}},
      // After the last transition in the file: the TZ rule of the footer decides.
      {"30 2 * * *", "Europe/Berlin", "2040-03-24T12:00:00", {"2040-03-25T01:00:00Z", "2040-03-26T00:30:00Z"}},
  });
}

TEST(CronTest, BerlinFallBackOverlap) {
  // 2024-10-27: 03:00 CEST becomes 02:00 CET at 01:00 UTC; 02:00-02:59 happen twice.
  RunCases({
      // 02:30 runs at its first occurrence (CEST) only.
      {"30 2 * * *", "Europe/Berlin", "2024-10-26T12:00:00", {"2024-10-27T00:30:00Z", "2024-10-28T01:30:00Z"}},
      // Hourly: 01:00 CEST, 02:00 CEST, (not 02:00 CET), 03:00 CET.
      {"0 * * * *", "Europe/Berlin", "2024-10-26T22:30:00", {"2024-10-26T23:00:00Z", "2024-10-27T00:00:00Z", "2024-10-27T02:00:00Z"}},
      // Asked during the second pass of the hour: nothing more runs in it.
      {"*/15 * * * *", "Europe/Berlin", "2024-10-27T01:10:00", {"2024-10-27T02:00:00Z"}},
      {"30 2 * * *", "Europe/Berlin", "2040-10-27T12:00:00", {"2040-10-28T00:30:00Z", "2040-10-29T01:30:00Z"}},
  });
}

TEST(CronTest, NewYorkTransitions) {
  RunCases({
      // 2024-03-10: 02:00 EST becomes 03:00 EDT at 07:00 UTC.
      {"30 2 * * *", "America/New_York", "2024-03-09T12:00:00", {"2024-03-10T07:00:00Z", "2024-03-11T06:30:00Z"}},
      {"0 3 * * *", "America/New_York", "2024-03-09T12:00:00", {"2024-03-10T07:00:00Z", "2024-03-11T07:00:00Z"}},
      // 2024-11-03: 02:00 EDT becomes 01:00 EST at 06:00 UTC; 01:30 runs once, in EDT.
      {"30 1 * * *", "America/New_York", "2024-11-02T12:00:00", {"2024-11-03T05:30:00Z", "2024-11-04T06:30:00Z"}},
      {"0 0 * * *", "America/New_York", "2024-11-02T12:00:00", {"2024-11-03T04:00:00Z", "2024-11-04T05:00:00Z"}},
  });
}

TEST(CronTest, FixedOffsetZone) {
  // Etc/GMT-3 is UTC+3 (POSIX sign).
  RunCases({{"0 12 * * *", "Etc/GMT-3", "2024-01-01T00:00:00", {"2024-01-01T09:00:00Z"}}});
}

TEST(CronTest, Intervals) {
  auto daily = Sched("0 1 * * *");
  auto iv = daily.IntervalsWithin(T("2024-01-01T00:00:00"), 366 * 86400);
  EXPECT_EQ(iv.longest, 86400);
  EXPECT_EQ(iv.shortest, 86400);
  // In Berlin a daily 02:30 is 25 hours apart across the fall back, 23.5 across the gap.
  auto berlin = Sched("30 2 * * *", "Europe/Berlin");
  iv = berlin.IntervalsWithin(T("2024-01-01T00:00:00"), 366 * 86400);
  EXPECT_EQ(iv.longest, 25 * 3600);
  EXPECT_EQ(iv.shortest, 23 * 3600 + 1800);
  auto leap = Sched("0 0 29 2 *");
  iv = leap.IntervalsWithin(T("2024-03-01T00:00:00"), 366 * 86400);
  EXPECT_EQ(iv.runs, 0u);
  EXPECT_EQ(iv.longest, 366 * 86400);
}

TEST(TimeZoneTest, Offsets) {
  auto berlin = TimeZone::Load("Europe/Berlin");
  ASSERT_TRUE(berlin.ok()) << berlin.status().ToString();
  EXPECT_EQ(berlin->name(), "Europe/Berlin");
  EXPECT_FALSE(berlin->IsFixed());
  EXPECT_EQ(berlin->OffsetAt(T("2024-03-31T00:59:59")), 3600);
  EXPECT_EQ(berlin->OffsetAt(T("2024-03-31T01:00:00")), 7200);
  EXPECT_EQ(berlin->OffsetAt(T("2024-10-27T00:59:59")), 7200);
  EXPECT_EQ(berlin->OffsetAt(T("2024-10-27T01:00:00")), 3600);
  EXPECT_EQ(berlin->OffsetAt(T("2040-03-25T00:59:59")), 3600);
  EXPECT_EQ(berlin->OffsetAt(T("2040-03-25T01:00:00")), 7200);
  EXPECT_EQ(berlin->OffsetAt(T("2040-10-28T01:00:00")), 3600);
  EXPECT_EQ(FormatLocal(T("2024-07-01T10:00:00"), *berlin), "2024-07-01T12:00:00+02:00");

  auto ny = TimeZone::Load("America/New_York");
  ASSERT_TRUE(ny.ok());
  EXPECT_EQ(ny->OffsetAt(T("2024-03-10T06:59:59")), -5 * 3600);
  EXPECT_EQ(ny->OffsetAt(T("2024-03-10T07:00:00")), -4 * 3600);
  EXPECT_EQ(ny->OffsetAt(T("2024-11-03T06:00:00")), -5 * 3600);

  // Local to UTC: the gap maps to the transition, the overlap to the first occurrence.
  EXPECT_EQ(berlin->LocalToUtc(T("2024-03-31T01:59:00")), T("2024-03-31T00:59:00"));
  EXPECT_EQ(berlin->LocalToUtc(T("2024-03-31T02:00:00")), T("2024-03-31T01:00:00"));
  EXPECT_EQ(berlin->LocalToUtc(T("2024-03-31T02:59:00")), T("2024-03-31T01:00:00"));
  EXPECT_EQ(berlin->LocalToUtc(T("2024-03-31T03:00:00")), T("2024-03-31T01:00:00"));
  EXPECT_EQ(berlin->LocalToUtc(T("2024-10-27T02:30:00")), T("2024-10-27T00:30:00"));
  EXPECT_EQ(berlin->LocalToUtc(T("2024-10-27T03:00:00")), T("2024-10-27T02:00:00"));

  auto utc = TimeZone::Load("UTC");
  ASSERT_TRUE(utc.ok());
  EXPECT_TRUE(utc->IsUtc());
  EXPECT_EQ(utc->OffsetAt(T("2024-03-31T01:00:00")), 0);
}

TEST(TimeZoneTest, LoadErrors) {
  auto bad = TimeZone::Load("../etc/passwd");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(TimeZone::Load("/etc/localtime").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(TimeZone::Load("").status().code(), Code::kInvalidArgument);
  auto missing = TimeZone::Load("Europe/Berln");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  EXPECT_EQ(missing.status().message(), "unknown time zone 'Europe/Berln'");
  // A directory of the database is not a zone.
  EXPECT_FALSE(TimeZone::Load("Europe").ok());
}

TEST(CronTest, InvalidExpressions) {
  struct Case {
    const char* expr;
    size_t column;
    const char* message;
  };
  const Case cases[] = {
      {"", 1, "empty expression; expected 5 fields (minute hour day-of-month month day-of-week) or a macro such as @daily"},
      {"60 * * * *", 1, "minute field: 60 is out of range 0-59"},
      {"0 24 * * *", 3, "hour field: 24 is out of range 0-23"},
      {"0 0 32 * *", 5, "day-of-month field: 32 is out of range 1-31"},
      {"0 0 0 * *", 5, "day-of-month field: 0 is out of range 1-31"},
      {"0 0 * 13 *", 7, "month field: 13 is out of range 1-12"},
      {"0 0 * * 8", 9, "day-of-week field: 8 is out of range 0-7"},
      {"0 0 * JAM *", 7, "month field: unknown name 'JAM'; expected JAN-DEC or 1-12"},
      {"0 0 * * MON-FRJ", 13, "day-of-week field: unknown name 'FRJ'; expected SUN-SAT or 0-7"},
      {"0 0 * * MON-", 13, "day-of-week field: expected a number"},
      {"*/0 * * * *", 3, "minute field: a step is at least 1"},
      {"*/x * * * *", 3, "minute field: expected a step number after '/', got 'x'"},
      {"5-1 * * * *", 1, "minute field: range '5-1' goes backwards; write it as two ranges"},
      {"0 0 * *", 8, "expected 5 fields (minute hour day-of-month month day-of-week), got 4; the day-of-week field is missing"},
      {"0 0 * * * 2024", 11, "unexpected 6th field '2024'; an expression has 5 fields (minute hour day-of-month month day-of-week), without seconds or years"},
      {"1,,2 * * * *", 3, "minute field: empty list item"},
      {"0 0 1x * *", 6, "day-of-month field: unexpected 'x' in '1x'"},
      {"0 x * * *", 3, "hour field: expected a number 0-23, '*' or a range, got 'x'"},
      {"0 0 30 2 *", 5, "day-of-month field: '30' never occurs in the selected months, so the schedule never runs"},
      {"0 0 31 4,6,9,11 *", 5, "day-of-month field: '31' never occurs in the selected months, so the schedule never runs"},
      {"@hourlyy", 1, "unknown macro '@hourlyy'; expected @hourly, @daily, @weekly, @monthly or @yearly"},
      {"@reboot", 1, "@reboot is not a schedule (a plan job runs at times of day)"},
      {"@daily 5", 8, "unexpected text after @daily; a macro stands alone"},
  };
  for (const auto& c : cases) {
    auto err = CronExpression::Check(c.expr);
    ASSERT_TRUE(err.has_value()) << "'" << c.expr << "' parsed";
    EXPECT_EQ(err->column, c.column) << c.expr;
    EXPECT_EQ(err->message, c.message) << c.expr;
    auto parsed = CronExpression::Parse(c.expr);
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.status().code(), Code::kInvalidArgument);
    EXPECT_EQ(parsed.status().message(),
              fmt::format("bad cron expression '{}': column {}: {}", c.expr, c.column, c.message));
  }
  // 30 February is fine when a weekday may match instead.
  EXPECT_FALSE(CronExpression::Check("0 0 30 2 MON").has_value());
}

TEST(CronTest, Matches) {
  auto e = CronExpression::Parse("15 1 * * *");
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(e->Matches(T("2024-01-01T01:15:00")));
  EXPECT_TRUE(e->Matches(T("2024-01-01T01:15:59")));
  EXPECT_FALSE(e->Matches(T("2024-01-01T01:16:00")));
  EXPECT_EQ(e->text(), "15 1 * * *");
}

}  // namespace
}  // namespace lb::plan
