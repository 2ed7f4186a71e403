#include "repo/retention.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <tuple>

#include "repo/names.h"

namespace lb::repo {

namespace {

namespace chr = std::chrono;

constexpr int64_t kNsPerSec = 1000000000;
constexpr int64_t kSecsPerDay = 86400;
// Large enough for any retention anyone means (a million hours is 114 years), small enough
// that no arithmetic below overflows.
constexpr int kMaxDurationNumber = 1000000;

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if (a % b != 0 && ((a < 0) != (b < 0))) --q;
  return q;
}

// The UTC calendar fields of a snapshot time.
struct CivilTime {
  int64_t unix_secs = 0;
  int64_t frac_ns = 0;  // [0, 1e9)
  int64_t days = 0;     // since 1970-01-01
  int64_t secs_of_day = 0;
  int year = 0;
  unsigned month = 0;  // 1..12
  unsigned day = 0;    // 1..31
};

CivilTime ToCivil(int64_t unix_ns) {
  CivilTime c;
  c.unix_secs = FloorDiv(unix_ns, kNsPerSec);
  c.frac_ns = unix_ns - c.unix_secs * kNsPerSec;
  c.days = FloorDiv(c.unix_secs, kSecsPerDay);
  c.secs_of_day = c.unix_secs - c.days * kSecsPerDay;
  chr::year_month_day ymd{chr::sys_days{chr::days{c.days}}};
  c.year = int(ymd.year());
  c.month = unsigned(ymd.month());
  c.day = unsigned(ymd.day());
  return c;
}

int64_t DaysFromCivil(int year, unsigned month, unsigned day) {
  return chr::sys_days{chr::year{year} / chr::month{month} / chr::day{day}}
      .time_since_epoch()
      .count();
}

// ISO 8601 week as iso_year * 100 + week: the week (Monday to Sunday) belongs to the year
// that holds its Thursday, so 2024-12-30 is 2025-W01 and 2027-01-03 is 2026-W53.
int64_t IsoWeekBucket(const CivilTime& c) {
  chr::sys_days day{chr::days{c.days}};
  unsigned iso_weekday = chr::weekday{day}.iso_encoding();  // Monday 1 .. Sunday 7
  chr::sys_days thursday = day - chr::days{iso_weekday - 1} + chr::days{3};
  chr::year_month_day t{thursday};
  chr::sys_days jan1{t.year() / chr::January / 1};
  int64_t week = (thursday - jan1).count() / 7 + 1;
  return int64_t(int(t.year())) * 100 + week;
}

// The instant keep_within counts back to from `newest`, as Go's
// newest.AddDate(-y, -m, -(7w+d)).Add(-h): months are normalised into years first, then
// days and hours count linearly (so March 31 minus one month is March 3, as in restic).
int64_t WithinThreshold(int64_t newest_ns, const Duration& d) {
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  CivilTime c = ToCivil(newest_ns);
  int64_t months = int64_t(c.year) * 12 + (c.month - 1) - (int64_t(d.years) * 12 + d.months);
  int64_t year = FloorDiv(months, 12);
  // Before any time a snapshot can carry (int64 nanoseconds start in 1677): keep everything.
  if (year < 1600) return kMin;
  auto month = unsigned(months - year * 12 + 1);
  int64_t days = DaysFromCivil(int(year), month, 1) + (c.day - 1) - (int64_t(d.weeks) * 7 + d.days);
  int64_t secs = days * kSecsPerDay + c.secs_of_day - int64_t(d.hours) * 3600;
  if (secs <= kMin / kNsPerSec) return kMin;
  return secs * kNsPerSec + c.frac_ns;
}

bool HasTag(const Snapshot& s, const std::string& tag) {
  return std::find(s.tags.begin(), s.tags.end(), tag) != s.tags.end();
}

bool AnyOf(const std::vector<std::string>& set, const std::string& v) {
  return set.empty() || std::find(set.begin(), set.end(), v) != set.end();
}

std::vector<std::string> Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

GroupKey KeyOf(const Snapshot& s, const GroupBy& by) {
  GroupKey k;
  k.by = by;
  if (by.host) k.host = s.host;
  if (by.kind) k.kind = s.kind;
  if (by.source) k.source = s.source;
  if (by.paths) k.paths = Sorted(s.paths);
  if (by.tags) k.tags = Sorted(s.tags);
  return k;
}

auto KeyTuple(const GroupKey& k) {
  return std::tie(k.host, k.kind, k.source, k.paths, k.tags);
}

struct KeyLess {
  bool operator()(const GroupKey& a, const GroupKey& b) const {
    return KeyTuple(a) < KeyTuple(b);
  }
};

std::string JoinList(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : " ") + s;
  return out;
}

// One count rule while walking a group: how many buckets it may still keep and the bucket of
// the snapshot it kept last.
struct CountRule {
  int count;
  int64_t (*bucket)(const CivilTime& c, int64_t index);
  const char* reason;
  std::optional<int64_t> last = std::nullopt;
};

std::vector<KeptSnapshot> SortedNewestFirst(std::vector<Snapshot> snaps) {
  std::sort(snaps.begin(), snaps.end(), [](const Snapshot& a, const Snapshot& b) {
    return a.time_ns != b.time_ns ? a.time_ns > b.time_ns : b.id < a.id;
  });
  std::vector<KeptSnapshot> out;
  out.reserve(snaps.size());
  for (auto& s : snaps) out.push_back({std::move(s), {}});
  return out;
}

ForgetGroup ApplyToGroup(GroupKey key, std::vector<Snapshot> snaps, const RetentionPolicy& p) {
  ForgetGroup g;
  g.key = std::move(key);
  std::vector<KeptSnapshot> list = SortedNewestFirst(std::move(snaps));
  CountRule rules[] = {
      {p.keep_last, [](const CivilTime&, int64_t i) { return i; }, "last snapshot"},
      {p.keep_hourly, [](const CivilTime& c, int64_t) { return FloorDiv(c.unix_secs, 3600); },
       "hourly snapshot"},
      {p.keep_daily, [](const CivilTime& c, int64_t) { return c.days; }, "daily snapshot"},
      {p.keep_weekly, [](const CivilTime& c, int64_t) { return IsoWeekBucket(c); },
       "weekly snapshot"},
      {p.keep_monthly,
       [](const CivilTime& c, int64_t) { return int64_t(c.year) * 12 + (c.month - 1); },
       "monthly snapshot"},
      {p.keep_yearly, [](const CivilTime& c, int64_t) { return int64_t(c.year); },
       "yearly snapshot"},
  };
  std::optional<int64_t> within;
  if (!p.keep_within.IsZero() && !list.empty())
    within = WithinThreshold(list.front().snapshot.time_ns, p.keep_within);
  const std::string within_reason = "within " + p.keep_within.ToString();

  for (size_t i = 0; i < list.size(); ++i) {
    KeptSnapshot& k = list[i];
    for (const auto& tag : p.keep_tags)
      if (HasTag(k.snapshot, tag)) k.reasons.push_back("tagged " + tag);
    if (within && k.snapshot.time_ns > *within) k.reasons.push_back(within_reason);
    CivilTime c = ToCivil(k.snapshot.time_ns);
    for (auto& r : rules) {
      if (r.count == 0) continue;
      int64_t b = r.bucket(c, int64_t(i));
      if (r.last && *r.last == b) continue;
      r.last = b;
      if (r.count > 0) --r.count;
      k.reasons.push_back(r.reason);
    }
    if (k.reasons.empty()) g.remove.push_back(std::move(k.snapshot));
    else g.keep.push_back(std::move(k));
  }
  return g;
}

}  // namespace

std::string Duration::ToString() const {
  std::string out;
  if (years) out += std::to_string(years) + "y";
  if (months) out += std::to_string(months) + "m";
  if (weeks) out += std::to_string(weeks) + "w";
  if (days) out += std::to_string(days) + "d";
  if (hours) out += std::to_string(hours) + "h";
  return out.empty() ? "0h" : out;
}

Result<Duration> ParseDuration(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return Status(Code::kInvalidArgument, fmt::format("bad duration '{}': {}", text, why))
        .WithHint("write a number and a unit, units y m w d h, e.g. 30d, 12h, 2w, 1y6m");
  };
  if (text.empty()) return bad("empty");
  Duration d;
  bool seen[5] = {};
  size_t i = 0;
  while (i < text.size()) {
    int64_t n = 0;
    size_t start = i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      n = n * 10 + (text[i] - '0');
      if (n > kMaxDurationNumber) return bad(fmt::format("more than {}", kMaxDurationNumber));
      ++i;
    }
    if (i == start) return bad(fmt::format("expected a number at '{}'", text.substr(i)));
    if (i == text.size()) return bad(fmt::format("'{}' has no unit", text.substr(start)));
    static constexpr std::string_view kUnits = "ymwdh";
    size_t u = kUnits.find(text[i]);
    if (u == std::string_view::npos)
      return bad(fmt::format("unknown unit '{}'", text[i]));
    if (seen[u]) return bad(fmt::format("unit '{}' given twice", text[i]));
    seen[u] = true;
    int* fields[] = {&d.years, &d.months, &d.weeks, &d.days, &d.hours};
    *fields[u] = int(n);
    ++i;
  }
  return d;
}

bool RetentionPolicy::IsEmpty() const {
  return keep_last == 0 && keep_hourly == 0 && keep_daily == 0 && keep_weekly == 0 &&
         keep_monthly == 0 && keep_yearly == 0 && keep_within.IsZero() && keep_tags.empty();
}

Status ValidatePolicy(const RetentionPolicy& p) {
  if (p.IsEmpty())
    return Err(Code::kInvalidArgument,
               "no retention rule given; refusing to forget every snapshot");
  const std::pair<const char*, int> counts[] = {
      {"keep-last", p.keep_last},       {"keep-hourly", p.keep_hourly},
      {"keep-daily", p.keep_daily},     {"keep-weekly", p.keep_weekly},
      {"keep-monthly", p.keep_monthly}, {"keep-yearly", p.keep_yearly},
  };
  for (const auto& [name, n] : counts)
    if (n < kKeepUnlimited)
      return Err(Code::kInvalidArgument,
                 "{} {}: a count is positive, or -1 for unlimited", name, n);
  for (const auto& t : p.keep_tags)
    if (t.empty()) return Err(Code::kInvalidArgument, "keep-tag: empty tag");
  return Status::Ok();
}

Result<GroupBy> ParseGroupBy(std::string_view list) {
  GroupBy g{.host = false, .kind = false, .source = false, .paths = false, .tags = false};
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view field = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    if (field == "host") g.host = true;
    else if (field == "kind") g.kind = true;
    else if (field == "source") g.source = true;
    else if (field == "paths") g.paths = true;
    else if (field == "tags") g.tags = true;
    else
      return Status(Code::kInvalidArgument, fmt::format("cannot group by '{}'", field))
          .WithHint("give a comma list of host, kind, source, paths, tags (or '' for one group)");
  }
  return g;
}

bool SnapshotFilter::Matches(const Snapshot& s) const {
  if (!AnyOf(hosts, s.host) || !AnyOf(kinds, s.kind) || !AnyOf(sources, s.source)) return false;
  for (const auto& t : tags)
    if (!HasTag(s, t)) return false;
  return true;
}

std::string GroupKey::ToString() const {
  std::vector<std::string> parts;
  if (by.host) parts.push_back(fmt::format("host '{}'", host));
  if (by.kind) parts.push_back(fmt::format("kind '{}'", kind));
  if (by.source) parts.push_back(fmt::format("source '{}'", source));
  if (by.paths) parts.push_back(fmt::format("paths [{}]", JoinList(paths)));
  if (by.tags) parts.push_back(fmt::format("tags [{}]", JoinList(tags)));
  if (parts.empty()) return "all snapshots";
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ", ") + p;
  return out;
}

nlohmann::json GroupKey::ToJson() const {
  nlohmann::json j = nlohmann::json::object();
  if (by.host) j["host"] = host;
  if (by.kind) j["kind"] = kind;
  if (by.source) j["source"] = source;
  if (by.paths) j["paths"] = paths;
  if (by.tags) j["tags"] = tags;
  return j;
}

Result<std::vector<ForgetGroup>> ApplyPolicy(const std::vector<Snapshot>& snaps,
                                             const RetentionPolicy& policy,
                                             const GroupBy& group_by,
                                             const SnapshotFilter& filter) {
  LB_RETURN_IF_ERROR(ValidatePolicy(policy));
  std::map<GroupKey, std::vector<Snapshot>, KeyLess> groups;
  for (const auto& s : snaps)
    if (filter.Matches(s)) groups[KeyOf(s, group_by)].push_back(s);
  std::vector<ForgetGroup> out;
  out.reserve(groups.size());
  for (auto& [key, members] : groups) out.push_back(ApplyToGroup(key, std::move(members), policy));
  return out;
}

Status ForgetSnapshots(Repository& repo, const std::vector<crypto::Id>& ids) {
  size_t removed = 0;
  for (const auto& id : ids) {
    Status s = repo.storage().Remove(SnapshotName(id));
    if (!s.ok() && s.code() != Code::kNotFound)
      return s.WithContext(fmt::format("remove snapshot '{}' ({} of {} removed before)",
                                       id.Short(), removed, ids.size()));
    ++removed;
  }
  return Status::Ok();
}

}  // namespace lb::repo
