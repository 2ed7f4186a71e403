// Time zones for schedules: UTC offsets of an IANA zone ("Europe/Berlin") read from the
// system's compiled tz database (TZif files, RFC 8536), and the conversion of a local wall
// clock time to UTC with the cron rules for the daylight saving gaps and overlaps.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "util/status.h"

namespace lb::plan {

// Seconds since 1970-01-01 00:00:00 UTC, leap seconds not counted (POSIX time).
using UnixSeconds = int64_t;

// A civil time without zone: the same count as UnixSeconds, read as a wall clock
// ("2024-03-31 02:30" in the zone is the number of seconds from 1970-01-01 00:00 to it).
using LocalSeconds = int64_t;

// Immutable after loading, so a TimeZone may be copied and used from any thread.
class TimeZone {
 public:
  // UTC, needs no tz database.
  TimeZone();
  static TimeZone Utc() { return TimeZone(); }

  // Loads "UTC", "Etc/UTC" or an IANA name such as "Europe/Berlin" from $TZDIR, else
  // /usr/share/zoneinfo. Errors: kInvalidArgument for a name that is not a zone name
  // (absolute, "..", characters other than letters, digits, '/', '_', '-', '+');
  // kNotFound when no such zone is installed; kCorruption when the file is not TZif.
  static Result<TimeZone> Load(std::string_view name);

  const std::string& name() const;
  bool IsUtc() const;

  // The offset from UTC (seconds east, +3600 for CET) in force at `t`.
  int32_t OffsetAt(UnixSeconds t) const;

  // The UTC instant of the local wall time `local` under the rules of schedules:
  // - a local time that occurs once maps to that instant;
  // - a local time skipped by a forward transition (the spring-forward gap) maps to the
  //   instant of the transition, the first instant after the gap;
  // - a local time that occurs twice (fall back) maps to its first occurrence.
  // The mapping never decreases as `local` grows.
  UnixSeconds LocalToUtc(LocalSeconds local) const;

  // The smallest offset in force at any instant in [from, to]; a local time below
  // from + MinOffsetBetween(from, to) is earlier than every instant of that interval.
  int32_t MinOffsetBetween(UnixSeconds from, UnixSeconds to) const;

  // True when the zone has a single offset forever (UTC, Etc/GMT+5).
  bool IsFixed() const;

  struct Data;

 private:
  explicit TimeZone(std::shared_ptr<const Data> data) : data_(std::move(data)) {}
  // Shared, not unique: a zone is immutable after loading and copied into every schedule
  // that uses it.
  std::shared_ptr<const Data> data_;
};

// Days since 1970-01-01 of a proleptic Gregorian date, and back (H. Hinnant's algorithms).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d);
struct CivilDate {
  int64_t year;
  unsigned month;  // 1-12
  unsigned day;    // 1-31
};
CivilDate CivilFromDays(int64_t days);
// 0 = Sunday ... 6 = Saturday.
unsigned WeekdayFromDays(int64_t days);
bool IsLeapYear(int64_t y);
unsigned DaysInMonth(int64_t y, unsigned m);

// "2024-03-31T01:00:00Z".
std::string FormatUtc(UnixSeconds t);
// "2024-03-31 03:00 CEST"-like local rendering without the abbreviation:
// "2024-03-31T03:00:00+02:00".
std::string FormatLocal(UnixSeconds t, const TimeZone& zone);

}  // namespace lb::plan
