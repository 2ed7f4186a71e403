#include "plan/timezone.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <vector>

namespace lb::plan {

namespace {

constexpr int64_t kDay = 86400;
// Offsets never change by more than a day at once (Pacific/Apia skipped 2011-12-30, a
// change of 24 h); a window of two days on each side sees every transition that can
// matter to a local time or to an instant.
constexpr int64_t kWindow = 2 * kDay;

// The POSIX TZ string of a TZif footer ("CET-1CEST,M3.5.0,M10.5.0/3"), which gives the
// offsets after the last transition of the file (RFC 8536 section 3.3).
struct PosixRule {
  int32_t std_offset = 0;  // seconds east of UTC
  bool has_dst = false;
  int32_t dst_offset = 0;
  struct Date {
    char form = 'M';  // 'J' (1-365, no Feb 29), 'N' (0-365), 'M' (month.week.day)
    int n = 0, month = 0, week = 0, weekday = 0;
    int32_t time = 7200;  // local time of day of the transition, may be <0 or >24h
  };
  Date start, end;
};

struct Transition {
  UnixSeconds at;
  int32_t before;
  int32_t after;
};

}  // namespace

struct TimeZone::Data {
  std::string name = "UTC";
  std::vector<UnixSeconds> at;     // transition instants, ascending
  std::vector<int32_t> offset;     // offset in force from at[i]
  int32_t initial = 0;             // before at[0]
  std::optional<PosixRule> rule;   // after at.back() (or always, with no transitions)

  int32_t RuleOffsetAt(UnixSeconds t) const;
  // The rule's transitions in the years around [from, to], ascending.
  void RuleTransitions(UnixSeconds from, UnixSeconds to, std::vector<Transition>& out) const;
  int32_t OffsetAt(UnixSeconds t) const;
  std::vector<Transition> TransitionsIn(UnixSeconds from, UnixSeconds to) const;
};

// ---- calendar ----

int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = unsigned(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + int64_t(doe) - 719468;
}

CivilDate CivilFromDays(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = unsigned(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t y = int64_t(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return {y + (m <= 2), m, d};
}

unsigned WeekdayFromDays(int64_t z) { return unsigned(z >= -4 ? (z + 4) % 7 : (z + 5) % 7 + 6); }

bool IsLeapYear(int64_t y) { return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0); }

unsigned DaysInMonth(int64_t y, unsigned m) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeapYear(y) ? 29 : kDays[m - 1];
}

namespace {

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

std::string FormatWallClock(int64_t secs) {
  int64_t days = FloorDiv(secs, kDay);
  int64_t rem = secs - days * kDay;
  CivilDate c = CivilFromDays(days);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", c.year, c.month, c.day, rem / 3600,
                     rem / 60 % 60, rem % 60);
}

// ---- POSIX TZ strings ----

class RuleParser {
 public:
  explicit RuleParser(std::string_view s) : s_(s) {}

  std::optional<PosixRule> Parse() {
    PosixRule r;
    if (!Name()) return std::nullopt;
    auto std_off = Offset();
    if (!std_off) return std::nullopt;
    r.std_offset = -*std_off;  // POSIX offsets count west of UTC
    if (i_ == s_.size()) return r;
    if (!Name()) return std::nullopt;
    r.has_dst = true;
    r.dst_offset = r.std_offset + 3600;
    if (i_ < s_.size() && s_[i_] != ',') {
      auto dst_off = Offset();
      if (!dst_off) return std::nullopt;
      r.dst_offset = -*dst_off;
    }
    if (i_ == s_.size()) {
      // No rule: POSIX leaves it to the implementation; glibc uses the US rules.
      r.start = {.form = 'M', .month = 3, .week = 2, .weekday = 0};
      r.end = {.form = 'M', .month = 11, .week = 1, .weekday = 0};
      return r;
    }
    if (s_[i_++] != ',') return std::nullopt;
    if (!Date(r.start) || i_ >= s_.size() || s_[i_++] != ',' || !Date(r.end)) return std::nullopt;
    if (i_ != s_.size()) return std::nullopt;
    return r;
  }

 private:
  bool Name() {
    if (i_ < s_.size() && s_[i_] == '<') {
      size_t close = s_.find('>', i_);
      if (close == std::string_view::npos) return false;
      i_ = close + 1;
      return true;
    }
    size_t start = i_;
    while (i_ < s_.size() && std::isalpha(static_cast<unsigned char>(s_[i_]))) ++i_;
    return i_ - start >= 3;
  }
  std::optional<int> Number(int max) {
    size_t start = i_;
    int n = 0;
    while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_])) && i_ - start < 4)
      n = n * 10 + (s_[i_++] - '0');
    if (i_ == start || n > max) return std::nullopt;
    return n;
  }
  // [+-]hh[:mm[:ss]] in seconds; RFC 8536 allows hours up to 167 in rule times.
  std::optional<int32_t> Offset() {
    int sign = 1;
    if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) sign = s_[i_++] == '-' ? -1 : 1;
    auto h = Number(167);
    if (!h) return std::nullopt;
    int32_t secs = *h * 3600;
    for (int part = 0; part < 2 && i_ < s_.size() && s_[i_] == ':'; ++part) {
      ++i_;
      auto n = Number(59);
      if (!n) return std::nullopt;
      secs += part == 0 ? *n * 60 : *n;
    }
    return sign * secs;
  }
  bool Date(PosixRule::Date& d) {
    if (i_ >= s_.size()) return false;
    if (s_[i_] == 'M') {
      ++i_;
      auto m = Number(12);
      if (!m || *m < 1 || i_ >= s_.size() || s_[i_++] != '.') return false;
      auto w = Number(5);
      if (!w || *w < 1 || i_ >= s_.size() || s_[i_++] != '.') return false;
      auto wd = Number(6);
      if (!wd) return false;
      d = {.form = 'M', .month = *m, .week = *w, .weekday = *wd};
    } else if (s_[i_] == 'J') {
      ++i_;
      auto n = Number(365);
      if (!n || *n < 1) return false;
      d = {.form = 'J', .n = *n};
    } else {
      auto n = Number(365);
      if (!n) return false;
      d = {.form = 'N', .n = *n};
    }
    if (i_ < s_.size() && s_[i_] == '/') {
      ++i_;
      auto t = Offset();
      if (!t) return false;
      d.time = *t;
    }
    return true;
  }

  std::string_view s_;
  size_t i_ = 0;
};

// Local time (as seconds from the epoch) at which `d` happens in year `y`.
int64_t RuleDateLocal(const PosixRule::Date& d, int64_t y) {
  int64_t day;
  if (d.form == 'J') {
    // 1-365, February 29 is never counted: day 60 is always March 1.
    day = DaysFromCivil(y, 1, 1) + d.n - 1;
    if (IsLeapYear(y) && d.n >= 60) ++day;
  } else if (d.form == 'N') {
    day = DaysFromCivil(y, 1, 1) + d.n;
  } else {
    int64_t first = DaysFromCivil(y, unsigned(d.month), 1);
    unsigned wd1 = WeekdayFromDays(first);
    int64_t mday = 1 + (unsigned(d.weekday) + 7 - wd1) % 7 + int64_t(d.week - 1) * 7;
    while (mday > DaysInMonth(y, unsigned(d.month))) mday -= 7;
    day = first + mday - 1;
  }
  return day * kDay + d.time;
}

int64_t YearOf(UnixSeconds t) { return CivilFromDays(FloorDiv(t, kDay)).year; }

}  // namespace

void TimeZone::Data::RuleTransitions(UnixSeconds from, UnixSeconds to,
                                     std::vector<Transition>& out) const {
  const PosixRule& r = *rule;
  if (!r.has_dst) return;
  std::vector<Transition> all;
  for (int64_t y = YearOf(from) - 1; y <= YearOf(to) + 1; ++y) {
    // The start is given in standard time, the end in daylight time.
    all.push_back({RuleDateLocal(r.start, y) - r.std_offset, r.std_offset, r.dst_offset});
    all.push_back({RuleDateLocal(r.end, y) - r.dst_offset, r.dst_offset, r.std_offset});
  }
  std::sort(all.begin(), all.end(),
            [](const Transition& a, const Transition& b) { return a.at < b.at; });
  for (const auto& tr : all)
    if (tr.at >= from && tr.at <= to) out.push_back(tr);
}

int32_t TimeZone::Data::RuleOffsetAt(UnixSeconds t) const {
  const PosixRule& r = *rule;
  if (!r.has_dst) return r.std_offset;
  std::vector<Transition> trs;
  RuleTransitions(t - 400 * kDay, t, trs);
  return trs.empty() ? r.std_offset : trs.back().after;
}

int32_t TimeZone::Data::OffsetAt(UnixSeconds t) const {
  if (at.empty()) return rule ? RuleOffsetAt(t) : initial;
  if (t < at.front()) return initial;
  if (t >= at.back() && rule) return RuleOffsetAt(t);
  auto it = std::upper_bound(at.begin(), at.end(), t);
  return offset[size_t(it - at.begin()) - 1];
}

std::vector<Transition> TimeZone::Data::TransitionsIn(UnixSeconds from, UnixSeconds to) const {
  std::vector<Transition> out;
  auto it = std::upper_bound(at.begin(), at.end(), from);
  for (; it != at.end() && *it <= to; ++it) {
    size_t i = size_t(it - at.begin());
    int32_t before = i == 0 ? initial : offset[i - 1];
    if (before != offset[i]) out.push_back({*it, before, offset[i]});
  }
  if (rule) {
    UnixSeconds rule_from = at.empty() ? from : std::max(from, at.back() + 1);
    if (rule_from <= to) {
      std::vector<Transition> trs;
      Data::RuleTransitions(rule_from, to, trs);
      int32_t prev = OffsetAt(rule_from - 1);
      for (auto& tr : trs) {
        if (tr.at <= from) continue;
        tr.before = prev;
        if (tr.before != tr.after) out.push_back(tr);
        prev = tr.after;
      }
    }
  }
  return out;
}

// ---- TimeZone ----

TimeZone::TimeZone() : data_(std::make_shared<const Data>()) {}

const std::string& TimeZone::name() const { return data_->name; }

bool TimeZone::IsUtc() const { return IsFixed() && data_->initial == 0; }

bool TimeZone::IsFixed() const {
  bool rule_fixed = !data_->rule || !data_->rule->has_dst;
  if (!rule_fixed) return false;
  int32_t first = data_->initial;
  if (data_->rule && data_->rule->std_offset != first) return false;
  return std::all_of(data_->offset.begin(), data_->offset.end(),
                     [&](int32_t o) { return o == first; });
}

int32_t TimeZone::OffsetAt(UnixSeconds t) const { return data_->OffsetAt(t); }

int32_t TimeZone::MinOffsetBetween(UnixSeconds from, UnixSeconds to) const {
  int32_t m = data_->OffsetAt(from);
  for (const auto& tr : data_->TransitionsIn(from, to)) m = std::min(m, tr.after);
  return m;
}

UnixSeconds TimeZone::LocalToUtc(LocalSeconds local) const {
  if (IsFixed()) return local - data_->initial;
  // Segments of constant offset around the local time; the local time exists in a
  // segment when converting it with that segment's offset lands inside the segment.
  UnixSeconds from = local - kWindow, to = local + kWindow;
  std::vector<Transition> trs = data_->TransitionsIn(from, to);
  int32_t off = data_->OffsetAt(from);
  UnixSeconds seg_start = from;
  for (size_t i = 0; i <= trs.size(); ++i) {
    UnixSeconds seg_end = i < trs.size() ? trs[i].at : to + 1;
    UnixSeconds u = local - off;
    // Segments are visited in time order, so the first fit is the first occurrence.
    if (u >= seg_start && u < seg_end) return u;
    if (i < trs.size()) {
      seg_start = trs[i].at;
      off = trs[i].after;
    }
  }
  // In no segment: the local time falls into a gap. It runs at the transition that
  // opened the gap.
  for (const auto& tr : trs)
    if (tr.after > tr.before && local >= tr.at + tr.before && local < tr.at + tr.after)
      return tr.at;
  return local - data_->OffsetAt(local);
}

Result<TimeZone> TimeZone::Load(std::string_view name) {
  if (name == "UTC" || name == "Etc/UTC" || name == "Z") {
    auto d = std::make_shared<Data>();
    d->name = std::string(name);
    return TimeZone(std::shared_ptr<const Data>(std::move(d)));
  }
  bool valid = !name.empty() && name.front() != '/' && name.size() <= 255;
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '/' && c != '_' && c != '-' &&
        c != '+')
      valid = false;
  if (name.find("..") != std::string_view::npos) valid = false;
  if (!valid)
    return Status(Code::kInvalidArgument, fmt::format("'{}' is not a time zone name", name))
        .WithHint("use UTC or an IANA name such as Europe/Berlin");

  const char* env = std::getenv("TZDIR");
  std::string dir = env && *env ? env : "/usr/share/zoneinfo";
  std::string path = dir + "/" + std::string(name);
  std::error_code ec;
  std::ifstream in;
  if (std::filesystem::is_regular_file(path, ec)) in.open(path, std::ios::binary);
  if (!in.is_open())
    return Status(Code::kNotFound, fmt::format("unknown time zone '{}'", name))
        .WithHint(fmt::format("no file {} (is the tzdata package installed?); use UTC or an "
                              "IANA name such as Europe/Berlin", path));
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto corrupt = [&](std::string_view why) {
    return Err(Code::kCorruption, "time zone '{}': {} is not a valid TZif file: {}", name, path,
               why);
  };

  // RFC 8536: header, version 1 data block (32-bit times), and for version 2+ a second
  // header and data block with 64-bit times followed by the POSIX TZ string footer.
  size_t pos = 0;
  auto u32 = [&](size_t p) {
    const auto* b = reinterpret_cast<const unsigned char*>(bytes.data()) + p;
    return uint32_t(b[0]) << 24 | uint32_t(b[1]) << 16 | uint32_t(b[2]) << 8 | b[3];
  };
  struct Header {
    char version;
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
  };
  auto header = [&](size_t p) -> std::optional<Header> {
    if (bytes.size() < p + 44 || bytes.compare(p, 4, "TZif") != 0) return std::nullopt;
    return Header{bytes[p + 4], u32(p + 20), u32(p + 24), u32(p + 28),
                  u32(p + 32),  u32(p + 36), u32(p + 40)};
  };
  auto h = header(0);
  if (!h) return corrupt("no TZif header");
  auto block_size = [](const Header& hd, size_t time_size) {
    return size_t(hd.timecnt) * time_size + hd.timecnt + size_t(hd.typecnt) * 6 + hd.charcnt +
           size_t(hd.leapcnt) * (time_size + 4) + hd.isstdcnt + hd.isutcnt;
  };
  size_t time_size = 4;
  pos = 44;
  if (h->version >= '2') {
    pos += block_size(*h, 4);
    h = header(pos);
    if (!h) return corrupt("no second header");
    pos += 44;
    time_size = 8;
  }
  if (h->typecnt == 0 || h->timecnt > 100000 || h->typecnt > 256) return corrupt("bad counts");
  if (bytes.size() < pos + block_size(*h, time_size)) return corrupt("truncated");

  auto d = std::make_shared<Data>();
  d->name = std::string(name);
  std::vector<int32_t> type_offset(h->typecnt);
  size_t types_at = pos + size_t(h->timecnt) * time_size + h->timecnt;
  for (uint32_t i = 0; i < h->typecnt; ++i)
    type_offset[i] = int32_t(u32(types_at + size_t(i) * 6));
  d->initial = type_offset[0];
  for (uint32_t i = 0; i < h->timecnt; ++i) {
    int64_t t = time_size == 8 ? int64_t(uint64_t(u32(pos + i * 8)) << 32 | u32(pos + i * 8 + 4))
                               : int64_t(int32_t(u32(pos + i * 4)));
    unsigned idx = static_cast<unsigned char>(bytes[pos + size_t(h->timecnt) * time_size + i]);
    if (idx >= h->typecnt) return corrupt("bad type index");
    if (!d->at.empty() && t <= d->at.back()) return corrupt("transitions out of order");
    d->at.push_back(t);
    d->offset.push_back(type_offset[idx]);
  }
  pos += block_size(*h, time_size);
  if (time_size == 8 && pos < bytes.size() && bytes[pos] == '\n') {
    size_t end = bytes.find('\n', pos + 1);
    if (end == std::string::npos) return corrupt("unterminated footer");
    std::string_view footer(bytes.data() + pos + 1, end - pos - 1);
    if (!footer.empty()) {
      d->rule = RuleParser(footer).Parse();
      if (!d->rule) return corrupt(fmt::format("bad TZ string '{}'", footer));
    }
  }
  return TimeZone(std::shared_ptr<const Data>(std::move(d)));
}

std::string FormatUtc(UnixSeconds t) { return FormatWallClock(t) + "Z"; }

std::string FormatLocal(UnixSeconds t, const TimeZone& zone) {
  int32_t off = zone.OffsetAt(t);
  if (zone.IsUtc()) return FormatUtc(t);
  int32_t a = off < 0 ? -off : off;
  std::string out = FormatWallClock(t + off) +
                    fmt::format("{}{:02}:{:02}", off < 0 ? '-' : '+', a / 3600, a / 60 % 60);
  if (a % 60) out += fmt::format(":{:02}", a % 60);
  return out;
}

}  // namespace lb::plan
