// Retention policies for `lifeboat forget`: which snapshots to keep (restic's --keep-* rules,
// applied per group of related snapshots) and removing the snapshots that are not kept.
// Forgetting only removes snapshot manifests; the data they named stays until prune.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "repo/repository.h"
#include "repo/snapshot.h"

namespace lb::repo {

// A calendar duration as restic spells it: "30d", "12h", "2w", "1y6m". Years and months are
// calendar units (subtracted like Go's time.AddDate), weeks are 7 days, all in UTC.
struct Duration {
  int years = 0;
  int months = 0;
  int weeks = 0;
  int days = 0;
  int hours = 0;

  bool IsZero() const { return years == 0 && months == 0 && weeks == 0 && days == 0 && hours == 0; }
  // Canonical spelling, units in the order y m w d h, zero units left out ("1y6m"); "0h" when
  // zero.
  std::string ToString() const;
  bool operator==(const Duration&) const = default;
  // Approximate length for ages ("older than 7d"): a month is 30 days, a year 365.
  int64_t ApproxSeconds() const {
    return ((int64_t(years) * 365 + int64_t(months) * 30 + int64_t(weeks) * 7 + days) * 24 +
            hours) * 3600;
  }
};

// Parses one or more <number><unit> pairs, units y m w d h, each unit at most once, numbers
// non-negative decimal integers up to 1000000. kInvalidArgument (quoting the input) for
// anything else: empty text, a number without unit, an unknown unit, signs, spaces.
Result<Duration> ParseDuration(std::string_view text);

// For the count rules: keep every bucket (restic's "unlimited").
inline constexpr int kKeepUnlimited = -1;

// What to keep. Count rules take N > 0, kKeepUnlimited, or 0 (rule not used). A snapshot is
// kept when any rule keeps it.
struct RetentionPolicy {
  int keep_last = 0;     // the N newest snapshots
  int keep_hourly = 0;   // the newest snapshot of each of the N newest hours with snapshots
  int keep_daily = 0;    // ... days (UTC dates)
  int keep_weekly = 0;   // ... ISO 8601 weeks (ISO week-numbering year + week)
  int keep_monthly = 0;  // ... months
  int keep_yearly = 0;   // ... years
  // Every snapshot strictly newer than (newest snapshot of the group) - keep_within.
  Duration keep_within = {};
  // Every snapshot carrying any of these tags.
  std::vector<std::string> keep_tags = {};

  // True when no rule is given: such a policy would remove every snapshot.
  bool IsEmpty() const;
};

// OK, or kInvalidArgument when the policy is empty ("no retention rule given; refusing to
// forget every snapshot") or a count is below kKeepUnlimited.
Status ValidatePolicy(const RetentionPolicy& policy);

// Which snapshot fields make two snapshots belong to the same group; the policy applies to
// each group on its own. The default is host, kind, source and paths (restic: host,paths).
// Paths and tags compare as sets (order does not matter). All false: one group.
struct GroupBy {
  bool host = true;
  bool kind = true;
  bool source = true;
  bool paths = true;
  bool tags = false;
};

// Parses a comma list of host, kind, source, paths, tags ("host,paths"); "" means no
// grouping. kInvalidArgument on an unknown field name.
Result<GroupBy> ParseGroupBy(std::string_view list);

// Which snapshots a policy is applied to at all; the others are left untouched. Empty
// fields match everything.
struct SnapshotFilter {
  std::vector<std::string> hosts = {};    // host is any of these
  std::vector<std::string> kinds = {};    // kind is any of these
  std::vector<std::string> sources = {};  // source is any of these
  std::vector<std::string> tags = {};     // the snapshot carries all of these

  bool Matches(const Snapshot& snap) const;
};

// The values shared by the snapshots of one group; only the fields selected by `by` are set.
// Paths and tags are sorted.
struct GroupKey {
  GroupBy by = {};
  std::string host = {};
  std::string kind = {};
  std::string source = {};
  std::vector<std::string> paths = {};
  std::vector<std::string> tags = {};

  // "host 'db1', kind 'files', source '', paths [/etc /srv]"; "all snapshots" when no field
  // is grouped by.
  std::string ToString() const;
  // The grouped fields only, e.g. {"host": "db1", "paths": ["/etc"]}.
  nlohmann::json ToJson() const;
};

struct KeptSnapshot {
  Snapshot snapshot = {};
  // Every rule that keeps it, in rule order: "tagged T", "within D", "last snapshot",
  // "hourly snapshot", "daily snapshot", "weekly snapshot", "monthly snapshot",
  // "yearly snapshot".
  std::vector<std::string> reasons = {};
};

struct ForgetGroup {
  GroupKey key = {};
  std::vector<KeptSnapshot> keep = {};  // newest first
  std::vector<Snapshot> remove = {};    // newest first
};

// Applies `policy` to the snapshots selected by `filter`, separately in each group formed by
// `group_by`. A pure function of its arguments (no clock: keep_within counts back from the
// newest snapshot of each group). Within a group snapshots are walked newest first (ties by
// id); each count rule with count left keeps a snapshot whose bucket (hour, date, ISO week,
// month, year in UTC; every snapshot for keep_last) differs from the bucket of the last
// snapshot that rule kept, and then uses up one count. Groups are returned ordered by key;
// every selected snapshot appears exactly once, in keep or in remove.
// Errors: those of ValidatePolicy.
Result<std::vector<ForgetGroup>> ApplyPolicy(const std::vector<Snapshot>& snaps,
                                             const RetentionPolicy& policy,
                                             const GroupBy& group_by,
                                             const SnapshotFilter& filter = {});

// Removes the snapshot manifests snapshots/<id> for `ids`, in order. The caller holds a
// repository lock (shared suffices: nothing else is deleted, and a backup that names a
// forgotten snapshot as its parent still finds all its data until prune). An id that is
// already absent counts as removed (a concurrent forget may have taken it). Stops at the
// first other failure and returns it, with how many were removed before it.
Status ForgetSnapshots(Repository& repo, const std::vector<crypto::Id>& ids);

}  // namespace lb::repo
