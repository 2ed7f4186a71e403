// Retention policy tests on fixed synthetic snapshots (no clock, no repository), and one test
// that ForgetSnapshots removes exactly the given manifests from a memory repository.
#include "repo/retention.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <set>

#include "repo/names.h"
#include "repo/tree.h"
#include "storage/storage.h"

namespace lb::repo {
namespace {

namespace fs = std::filesystem;

struct SnapSpec {
  std::string time = "";  // RFC 3339 UTC
  std::string host = "h1";
  std::vector<std::string> paths = {"/srv"};
  std::vector<std::string> tags = {};
  std::string kind = "files";
  std::string source = "";
};

Snapshot MakeSnap(const SnapSpec& spec) {
  static uint32_t counter = 0;
  Snapshot s;
  s.time = spec.time;
  EXPECT_TRUE(ParseRfc3339(s.time, s.time_ns)) << s.time;
  s.host = spec.host;
  s.paths = spec.paths;
  s.tags = spec.tags;
  s.kind = spec.kind;
  s.source = spec.source;
  ++counter;
  for (int i = 0; i < 4; ++i) s.id.bytes[size_t(i)] = uint8_t(counter >> (8 * (3 - i)));
  return s;
}

std::vector<Snapshot> AtTimes(const std::vector<std::string>& times) {
  std::vector<Snapshot> out;
  for (const auto& t : times) out.push_back(MakeSnap({.time = t}));
  return out;
}

// Input order must not matter: the policy sorts.
std::vector<Snapshot> Shuffled(std::vector<Snapshot> v) {
  std::mt19937 rng(42);
  std::shuffle(v.begin(), v.end(), rng);
  return v;
}

ForgetGroup ApplyOne(const std::vector<Snapshot>& snaps, const RetentionPolicy& p) {
  auto groups = ApplyPolicy(Shuffled(snaps), p, GroupBy{});
  EXPECT_TRUE(groups.ok()) << groups.status().ToString();
  if (!groups.ok()) return {};
  EXPECT_EQ(groups->size(), 1u);
  return groups->empty() ? ForgetGroup{} : std::move((*groups)[0]);
}

std::vector<std::string> KeptTimes(const ForgetGroup& g) {
  std::vector<std::string> out;
  for (const auto& k : g.keep) out.push_back(k.snapshot.time);
  return out;
}

std::vector<std::string> RemovedTimes(const ForgetGroup& g) {
  std::vector<std::string> out;
  for (const auto& s : g.remove) out.push_back(s.time);
  return out;
}

std::vector<std::string> ReasonsOf(const ForgetGroup& g, const std::string& time) {
  for (const auto& k : g.keep)
    if (k.snapshot.time == time) return k.reasons;
  return {"<not kept>"};
}

// Every snapshot lands in exactly one of keep and remove.
void ExpectPartition(const ForgetGroup& g, size_t total) {
  std::set<crypto::Id> ids;
  for (const auto& k : g.keep) ids.insert(k.snapshot.id);
  for (const auto& s : g.remove) ids.insert(s.id);
  EXPECT_EQ(ids.size(), total);
  EXPECT_EQ(g.keep.size() + g.remove.size(), total);
}

using Times = std::vector<std::string>;

TEST(RetentionTest, KeepDailyKeepsLatestOfTheNewestDays) {
  // 15 days with a snapshot at 10:00 and 22:00 each: 30 snapshots.
  Times times;
  for (int day = 1; day <= 15; ++day) {
    times.push_back(fmt::format("2026-01-{:02d}T10:00:00Z", day));
    times.push_back(fmt::format("2026-01-{:02d}T22:00:00Z", day));
  }
  auto g = ApplyOne(AtTimes(times), {.keep_daily = 7});
  EXPECT_EQ(KeptTimes(g), (Times{"2026-01-15T22:00:00Z", "2026-01-14T22:00:00Z",
                                 "2026-01-13T22:00:00Z", "2026-01-12T22:00:00Z",
                                 "2026-01-11T22:00:00Z", "2026-01-10T22:00:00Z",
                                 "2026-01-09T22:00:00Z"}));
  EXPECT_EQ(ReasonsOf(g, "2026-01-12T22:00:00Z"), (Times{"daily snapshot"}));
  ExpectPartition(g, 30);
  EXPECT_EQ(g.remove.front().time, "2026-01-15T10:00:00Z");  // newest first
  EXPECT_EQ(g.remove.back().time, "2026-01-01T10:00:00Z");
}

TEST(RetentionTest, KeepLastKeepsTheNewest) {
  auto g = ApplyOne(AtTimes({"2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z",
                             "2026-01-01T00:00:02Z", "2026-01-03T00:00:00Z",
                             "2026-01-02T00:00:00Z"}),
                    {.keep_last = 2});
  EXPECT_EQ(KeptTimes(g), (Times{"2026-01-03T00:00:00Z", "2026-01-02T00:00:00Z"}));
  EXPECT_EQ(ReasonsOf(g, "2026-01-03T00:00:00Z"), (Times{"last snapshot"}));
  ExpectPartition(g, 5);
}

TEST(RetentionTest, KeepLastCountsSnapshotsWithTheSameTime) {
  auto snaps = AtTimes({"2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"});
  auto g = ApplyOne(snaps, {.keep_last = 2});
  EXPECT_EQ(g.keep.size(), 2u);
  ExpectPartition(g, 3);
  // Ties are broken by id, largest first, whatever the input order.
  crypto::Id smallest = std::min({snaps[0].id, snaps[1].id, snaps[2].id});
  ASSERT_EQ(g.remove.size(), 1u);
  EXPECT_EQ(g.remove[0].id, smallest);
}

TEST(RetentionTest, KeepHourlyAcrossMidnight) {
  auto g = ApplyOne(AtTimes({"2026-03-01T23:10:00Z", "2026-03-01T23:50:00Z",
                             "2026-03-02T00:05:00Z", "2026-03-02T00:40:00Z",
                             "2026-03-02T01:15:00Z", "2026-03-03T01:05:00Z"}),
                    {.keep_hourly = 4});
  // 03-03 01:05 and 03-02 01:15 share the hour of day but not the hour: both are kept.
  EXPECT_EQ(KeptTimes(g), (Times{"2026-03-03T01:05:00Z", "2026-03-02T01:15:00Z",
                                 "2026-03-02T00:40:00Z", "2026-03-01T23:50:00Z"}));
  EXPECT_EQ(RemovedTimes(g), (Times{"2026-03-02T00:05:00Z", "2026-03-01T23:10:00Z"}));
  EXPECT_EQ(ReasonsOf(g, "2026-03-02T00:40:00Z"), (Times{"hourly snapshot"}));
}

TEST(RetentionTest, KeepWeeklyUsesIsoWeeksAcrossTheYearBoundary) {
  // 2026 has 53 ISO weeks: Monday 2026-12-28 to Sunday 2027-01-03 is 2026-W53, 2027-W01
  // starts Monday 2027-01-04.
  auto g = ApplyOne(AtTimes({"2026-12-27T12:00:00Z",    // Sunday, 2026-W52
                             "2026-12-28T00:00:00Z",    // Monday, 2026-W53
                             "2027-01-01T12:00:00Z",    // Friday, 2026-W53
                             "2027-01-03T23:59:59Z",    // Sunday, 2026-W53
                             "2027-01-04T00:00:00Z",    // Monday, 2027-W01
                             "2027-01-05T08:00:00Z"}),  // Tuesday, 2027-W01
                    {.keep_weekly = 3});
  EXPECT_EQ(KeptTimes(g), (Times{"2027-01-05T08:00:00Z", "2027-01-03T23:59:59Z",
                                 "2026-12-27T12:00:00Z"}));
  EXPECT_EQ(ReasonsOf(g, "2027-01-03T23:59:59Z"), (Times{"weekly snapshot"}));
  ExpectPartition(g, 6);
}

TEST(RetentionTest, KeepWeeklyIsoYearDiffersFromCalendarYear) {
  // Monday 2024-12-30 already belongs to 2025-W01, with 2025-01-02.
  auto g = ApplyOne(AtTimes({"2024-12-29T12:00:00Z",    // Sunday, 2024-W52
                             "2024-12-30T12:00:00Z",    // 2025-W01
                             "2025-01-02T12:00:00Z"}),  // 2025-W01
                    {.keep_weekly = 5});
  EXPECT_EQ(KeptTimes(g), (Times{"2025-01-02T12:00:00Z", "2024-12-29T12:00:00Z"}));
  EXPECT_EQ(RemovedTimes(g), (Times{"2024-12-30T12:00:00Z"}));
}

TEST(RetentionTest, KeepMonthlyOnMonthEnds) {
  auto g = ApplyOne(AtTimes({"2026-01-31T23:59:59Z", "2026-02-01T00:00:00Z",
                             "2026-02-28T23:00:00Z", "2026-03-01T00:30:00Z",
                             "2026-03-31T23:59:59Z", "2026-04-01T00:00:01Z"}),
                    {.keep_monthly = 3});
  EXPECT_EQ(KeptTimes(g), (Times{"2026-04-01T00:00:01Z", "2026-03-31T23:59:59Z",
                                 "2026-02-28T23:00:00Z"}));
  EXPECT_EQ(RemovedTimes(g), (Times{"2026-03-01T00:30:00Z", "2026-02-01T00:00:00Z",
                                    "2026-01-31T23:59:59Z"}));
  EXPECT_EQ(ReasonsOf(g, "2026-02-28T23:00:00Z"), (Times{"monthly snapshot"}));
}

TEST(RetentionTest, KeepYearly) {
  Times times = {"2024-12-31T23:59:59Z", "2025-01-01T00:00:00Z", "2025-06-01T00:00:00Z",
                 "2025-12-31T23:59:59Z", "2026-01-01T00:00:00Z"};
  auto g = ApplyOne(AtTimes(times), {.keep_yearly = 2});
  EXPECT_EQ(KeptTimes(g), (Times{"2026-01-01T00:00:00Z", "2025-12-31T23:59:59Z"}));
  EXPECT_EQ(ReasonsOf(g, "2025-12-31T23:59:59Z"), (Times{"yearly snapshot"}));
  auto g3 = ApplyOne(AtTimes(times), {.keep_yearly = 3});
  EXPECT_EQ(KeptTimes(g3), (Times{"2026-01-01T00:00:00Z", "2025-12-31T23:59:59Z",
                                  "2024-12-31T23:59:59Z"}));
}

TEST(RetentionTest, KeepWithinCountsBackFromTheNewestSnapshot) {
  // Long ago: measured from now, nothing would be within 7 days.
  auto g = ApplyOne(AtTimes({"2020-05-20T12:00:00Z", "2020-05-18T00:00:00Z",
                             "2020-05-13T12:00:01Z", "2020-05-13T12:00:00Z",
                             "2020-05-01T00:00:00Z"}),
                    {.keep_within = {.days = 7}});
  // Strictly newer than newest - 7d = 2020-05-13T12:00:00Z, as restic does.
  EXPECT_EQ(KeptTimes(g), (Times{"2020-05-20T12:00:00Z", "2020-05-18T00:00:00Z",
                                 "2020-05-13T12:00:01Z"}));
  EXPECT_EQ(ReasonsOf(g, "2020-05-18T00:00:00Z"), (Times{"within 7d"}));
  ExpectPartition(g, 5);
}

TEST(RetentionTest, KeepWithinCalendarUnits) {
  // 1y6m before 2026-08-15T06:00 is 2025-02-15T06:00; 2w1d3h before it is 2026-07-31T03:00.
  Times times = {"2026-08-15T06:00:00Z", "2026-07-31T03:00:01Z", "2026-07-31T03:00:00Z",
                 "2025-02-15T06:00:01Z", "2025-02-15T06:00:00Z"};
  auto g = ApplyOne(AtTimes(times), {.keep_within = {.years = 1, .months = 6}});
  EXPECT_EQ(KeptTimes(g), (Times{"2026-08-15T06:00:00Z", "2026-07-31T03:00:01Z",
                                 "2026-07-31T03:00:00Z", "2025-02-15T06:00:01Z"}));
  auto g2 = ApplyOne(AtTimes(times), {.keep_within = {.weeks = 2, .days = 1, .hours = 3}});
  EXPECT_EQ(KeptTimes(g2), (Times{"2026-08-15T06:00:00Z", "2026-07-31T03:00:01Z"}));
  EXPECT_EQ(ReasonsOf(g2, "2026-07-31T03:00:01Z"), (Times{"within 2w1d3h"}));
}

TEST(RetentionTest, MinusOneMeansUnlimited) {
  Times times;
  for (int day = 1; day <= 20; ++day) {
    times.push_back(fmt::format("2026-06-{:02d}T01:00:00Z", day));
    times.push_back(fmt::format("2026-06-{:02d}T02:00:00Z", day));
  }
  auto g = ApplyOne(AtTimes(times), {.keep_daily = kKeepUnlimited});
  EXPECT_EQ(g.keep.size(), 20u);
  for (const auto& k : g.keep) EXPECT_EQ(k.snapshot.time.substr(11), "02:00:00Z");
  auto all = ApplyOne(AtTimes(times), {.keep_last = kKeepUnlimited});
  EXPECT_EQ(all.keep.size(), 40u);
  EXPECT_TRUE(all.remove.empty());
}

TEST(RetentionTest, KeepTagAlwaysKeeps) {
  std::vector<Snapshot> snaps = {
      MakeSnap({.time = "2026-01-01T00:00:00Z", .tags = {"keep-forever"}}),
      MakeSnap({.time = "2026-01-02T00:00:00Z", .tags = {"other"}}),
      MakeSnap({.time = "2026-01-03T00:00:00Z", .tags = {"x", "release"}}),
      MakeSnap({.time = "2026-01-04T00:00:00Z"}),
      MakeSnap({.time = "2026-01-05T00:00:00Z"}),
  };
  auto g = ApplyOne(snaps, {.keep_last = 1, .keep_tags = {"keep-forever", "release"}});
  EXPECT_EQ(KeptTimes(g), (Times{"2026-01-05T00:00:00Z", "2026-01-03T00:00:00Z",
                                 "2026-01-01T00:00:00Z"}));
  EXPECT_EQ(ReasonsOf(g, "2026-01-01T00:00:00Z"), (Times{"tagged keep-forever"}));
  EXPECT_EQ(ReasonsOf(g, "2026-01-03T00:00:00Z"), (Times{"tagged release"}));
  EXPECT_EQ(RemovedTimes(g), (Times{"2026-01-04T00:00:00Z", "2026-01-02T00:00:00Z"}));
  // Tags alone are a policy.
  auto only_tags = ApplyOne(snaps, {.keep_tags = {"keep-forever"}});
  EXPECT_EQ(KeptTimes(only_tags), (Times{"2026-01-01T00:00:00Z"}));
}

TEST(RetentionTest, CombinedRulesKeepTheUnionWithEveryReason) {
  // One snapshot a day at noon, 2026-01-01 (Thursday) to 2026-02-15.
  Times times;
  for (int i = 0; i < 46; ++i) {
    int month = i < 31 ? 1 : 2;
    int day = i < 31 ? i + 1 : i - 30;
    times.push_back(fmt::format("2026-{:02d}-{:02d}T12:00:00Z", month, day));
  }
  auto g = ApplyOne(AtTimes(times), {.keep_last = 2, .keep_daily = 3, .keep_weekly = 2,
                                     .keep_monthly = 2, .keep_within = {.days = 1}});
  // Last 2: 02-15, 02-14. Daily 3: 02-15, 02-14, 02-13. Weekly 2: 02-15 (Sunday, W07),
  // 02-08 (Sunday, W06). Monthly 2: 02-15, 01-31. Within 1d: only 02-15 (02-14 12:00 is not
  // strictly newer than the threshold).
  EXPECT_EQ(KeptTimes(g), (Times{"2026-02-15T12:00:00Z", "2026-02-14T12:00:00Z",
                                 "2026-02-13T12:00:00Z", "2026-02-08T12:00:00Z",
                                 "2026-01-31T12:00:00Z"}));
  EXPECT_EQ(ReasonsOf(g, "2026-02-15T12:00:00Z"),
            (Times{"within 1d", "last snapshot", "daily snapshot", "weekly snapshot",
                   "monthly snapshot"}));
  EXPECT_EQ(ReasonsOf(g, "2026-02-14T12:00:00Z"), (Times{"last snapshot", "daily snapshot"}));
  EXPECT_EQ(ReasonsOf(g, "2026-02-08T12:00:00Z"), (Times{"weekly snapshot"}));
  EXPECT_EQ(ReasonsOf(g, "2026-01-31T12:00:00Z"), (Times{"monthly snapshot"}));
  ExpectPartition(g, 46);
}

TEST(RetentionTest, GroupsByHostAndPathsKeepPerGroup) {
  std::vector<Snapshot> snaps = {
      MakeSnap({.time = "2026-01-01T00:00:00Z", .host = "a", .paths = {"/x", "/y"}}),
      MakeSnap({.time = "2026-01-02T00:00:00Z", .host = "a", .paths = {"/y", "/x"}}),
      MakeSnap({.time = "2026-01-03T00:00:00Z", .host = "a", .paths = {"/z"}}),
      MakeSnap({.time = "2026-01-04T00:00:00Z", .host = "a", .paths = {"/z"}}),
      MakeSnap({.time = "2026-01-05T00:00:00Z", .host = "b", .paths = {"/x", "/y"}}),
      MakeSnap({.time = "2026-01-06T00:00:00Z", .host = "b", .paths = {"/x", "/y"}}),
  };
  auto groups = ApplyPolicy(Shuffled(snaps), {.keep_last = 1}, GroupBy{});
  ASSERT_TRUE(groups.ok()) << groups.status().ToString();
  ASSERT_EQ(groups->size(), 3u);  // paths are compared as sets
  // Ordered by key: (a, [/x /y]), (a, [/z]), (b, [/x /y]).
  EXPECT_EQ(KeptTimes((*groups)[0]), (Times{"2026-01-02T00:00:00Z"}));
  EXPECT_EQ(KeptTimes((*groups)[1]), (Times{"2026-01-04T00:00:00Z"}));
  EXPECT_EQ(KeptTimes((*groups)[2]), (Times{"2026-01-06T00:00:00Z"}));
  EXPECT_EQ((*groups)[0].key.paths, (Times{"/x", "/y"}));
  EXPECT_EQ((*groups)[0].key.ToString(), "host 'a', kind 'files', source '', paths [/x /y]");
  EXPECT_EQ((*groups)[2].key.ToJson(),
            nlohmann::json({{"host", "b"}, {"kind", "files"}, {"source", ""},
                            {"paths", {"/x", "/y"}}}));

  auto by_host = ApplyPolicy(snaps, {.keep_last = 1},
                             {.host = true, .kind = false, .source = false, .paths = false});
  ASSERT_TRUE(by_host.ok());
  ASSERT_EQ(by_host->size(), 2u);
  EXPECT_EQ(KeptTimes((*by_host)[0]), (Times{"2026-01-04T00:00:00Z"}));
  EXPECT_EQ((*by_host)[0].remove.size(), 3u);
  EXPECT_EQ(KeptTimes((*by_host)[1]), (Times{"2026-01-06T00:00:00Z"}));
  EXPECT_EQ((*by_host)[1].key.ToString(), "host 'b'");

  auto one = ApplyPolicy(snaps, {.keep_last = 1}, *ParseGroupBy(""));
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ(KeptTimes((*one)[0]), (Times{"2026-01-06T00:00:00Z"}));
  EXPECT_EQ((*one)[0].key.ToString(), "all snapshots");
}

TEST(RetentionTest, GroupsByKindSourceAndTags) {
  std::vector<Snapshot> snaps = {
      MakeSnap({.time = "2026-01-01T00:00:00Z", .tags = {"b", "a"}, .kind = "pg-base"}),
      MakeSnap({.time = "2026-01-02T00:00:00Z", .tags = {"a", "b"}, .kind = "pg-base"}),
      MakeSnap({.time = "2026-01-03T00:00:00Z", .kind = "pg-base", .source = "main"}),
      MakeSnap({.time = "2026-01-04T00:00:00Z", .tags = {"a"}}),
  };
  auto by_kind = ApplyPolicy(snaps, {.keep_last = 1}, *ParseGroupBy("kind"));
  ASSERT_TRUE(by_kind.ok());
  EXPECT_EQ(by_kind->size(), 2u);
  auto by_source = ApplyPolicy(snaps, {.keep_last = 1}, *ParseGroupBy("kind,source"));
  ASSERT_TRUE(by_source.ok());
  EXPECT_EQ(by_source->size(), 3u);
  auto by_tags = ApplyPolicy(snaps, {.keep_last = 1}, *ParseGroupBy("tags"));
  ASSERT_TRUE(by_tags.ok());
  ASSERT_EQ(by_tags->size(), 3u);  // [], [a], [a b]
  EXPECT_EQ(KeptTimes((*by_tags)[2]), (Times{"2026-01-02T00:00:00Z"}));
  EXPECT_EQ((*by_tags)[2].key.ToString(), "tags [a b]");
}

TEST(RetentionTest, ParseGroupBy) {
  auto g = ParseGroupBy("paths,host");
  ASSERT_TRUE(g.ok());
  EXPECT_TRUE(g->host && g->paths);
  EXPECT_FALSE(g->kind || g->source || g->tags);
  auto none = ParseGroupBy("");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->host || none->kind || none->source || none->paths || none->tags);
  EXPECT_EQ(ParseGroupBy("host,user").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ParseGroupBy("host,").status().code(), Code::kOk);
  EXPECT_EQ(ParseGroupBy("host,,paths").status().code(), Code::kInvalidArgument);
}

TEST(RetentionTest, FiltersLeaveOtherSnapshotsUntouched) {
  std::vector<Snapshot> snaps = {
      MakeSnap({.time = "2026-01-01T00:00:00Z", .host = "a", .tags = {"nightly", "db"}}),
      MakeSnap({.time = "2026-01-02T00:00:00Z", .host = "a", .tags = {"nightly", "db"}}),
      MakeSnap({.time = "2026-01-03T00:00:00Z", .host = "a", .tags = {"nightly"}}),
      MakeSnap({.time = "2026-01-04T00:00:00Z", .host = "b", .tags = {"nightly", "db"}}),
      MakeSnap({.time = "2026-01-05T00:00:00Z", .host = "a", .tags = {"nightly", "db"},
                .kind = "logs"}),
  };
  GroupBy all{.host = false, .kind = false, .source = false, .paths = false};
  auto g = ApplyPolicy(snaps, {.keep_last = 1}, all,
                       {.hosts = {"a"}, .kinds = {"files"}, .tags = {"nightly", "db"}});
  ASSERT_TRUE(g.ok());
  ASSERT_EQ(g->size(), 1u);
  // Only the first two are selected; the others appear nowhere.
  EXPECT_EQ(KeptTimes((*g)[0]), (Times{"2026-01-02T00:00:00Z"}));
  EXPECT_EQ(RemovedTimes((*g)[0]), (Times{"2026-01-01T00:00:00Z"}));

  auto hosts = ApplyPolicy(snaps, {.keep_last = 1}, all, {.hosts = {"a", "b"}, .kinds = {"files"}});
  ASSERT_TRUE(hosts.ok());
  ASSERT_EQ(hosts->size(), 1u);
  ExpectPartition((*hosts)[0], 4);

  auto none = ApplyPolicy(snaps, {.keep_last = 1}, all, {.sources = {"nope"}});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());

  SnapshotFilter f{.tags = {"db"}};
  EXPECT_TRUE(f.Matches(snaps[0]));
  EXPECT_FALSE(f.Matches(snaps[2]));
}

TEST(RetentionTest, EmptyPolicyIsRefused) {
  auto snaps = AtTimes({"2026-01-01T00:00:00Z"});
  auto g = ApplyPolicy(snaps, {}, GroupBy{});
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(g.status().message(), "no retention rule given; refusing to forget every snapshot");
  // Zero counts and a zero duration are no rules either.
  auto zero = ApplyPolicy(snaps, {.keep_last = 0, .keep_within = {.days = 0}}, GroupBy{});
  EXPECT_EQ(zero.status().code(), Code::kInvalidArgument);
  EXPECT_TRUE(RetentionPolicy{}.IsEmpty());
  EXPECT_FALSE(RetentionPolicy{.keep_within = {.hours = 1}}.IsEmpty());
}

TEST(RetentionTest, BadCountsAreRefused) {
  auto snaps = AtTimes({"2026-01-01T00:00:00Z"});
  EXPECT_EQ(ApplyPolicy(snaps, {.keep_daily = -2}, GroupBy{}).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(ApplyPolicy(snaps, {.keep_tags = {""}}, GroupBy{}).status().code(),
            Code::kInvalidArgument);
  EXPECT_TRUE(ValidatePolicy({.keep_yearly = -1}).ok());
}

TEST(RetentionTest, NoSnapshotsNoGroups) {
  auto g = ApplyPolicy({}, {.keep_last = 3}, GroupBy{});
  ASSERT_TRUE(g.ok());
  EXPECT_TRUE(g->empty());
}

TEST(RetentionTest, ParseDurationValid) {
  struct Case {
    std::string text;
    Duration want;
    std::string canonical;
  };
  const Case cases[] = {
      {"30d", {.days = 30}, "30d"},
      {"12h", {.hours = 12}, "12h"},
      {"2w", {.weeks = 2}, "2w"},
      {"1y6m", {.years = 1, .months = 6}, "1y6m"},
      {"1y2m3w4d5h", {.years = 1, .months = 2, .weeks = 3, .days = 4, .hours = 5}, "1y2m3w4d5h"},
      {"5h1y", {.years = 1, .hours = 5}, "1y5h"},
      {"007d", {.days = 7}, "7d"},
      {"0d", {}, "0h"},
      {"1000000h", {.hours = 1000000}, "1000000h"},
  };
  for (const auto& c : cases) {
    auto d = ParseDuration(c.text);
    ASSERT_TRUE(d.ok()) << c.text << ": " << d.status().ToString();
    EXPECT_EQ(*d, c.want) << c.text;
    EXPECT_EQ(d->ToString(), c.canonical) << c.text;
  }
}

TEST(RetentionTest, ParseDurationInvalid) {
  for (std::string_view text : {"", "d", "30", "1y6", "3x", "-1d", "+1d", "1.5d", "30d ",
                                " 30d", "1d1d", "30D", "1000001h", "99999999999999999999d"}) {
    auto d = ParseDuration(text);
    ASSERT_FALSE(d.ok()) << "'" << text << "' parsed";
    EXPECT_EQ(d.status().code(), Code::kInvalidArgument) << text;
    EXPECT_NE(d.status().message().find(fmt::format("'{}'", text)), std::string::npos)
        << d.status().message();
  }
}

class ForgetRepoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv("LIFEBOAT_TEST_FAST_KDF", "1", 1);
    cache_ = fs::temp_directory_path() /
             ("lb-retention-test-" + std::to_string(getpid()) + "-" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name());
    setenv("LIFEBOAT_CACHE_DIR", cache_.c_str(), 1);
    url_ = "mem:retention-" +
           std::string(::testing::UnitTest::GetInstance()->current_test_info()->name());
    auto st = storage::OpenStorage(url_);
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    ASSERT_TRUE(Repository::Init(**st, "pw").ok());
    auto st2 = storage::OpenStorage(url_);
    ASSERT_TRUE(st2.ok());
    auto r = Repository::Open(std::move(*st2), "pw");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    repo_ = std::move(*r);
  }
  void TearDown() override {
    repo_.reset();
    fs::remove_all(cache_);
  }

  fs::path cache_;
  std::string url_;
  std::unique_ptr<Repository> repo_;
};

TEST_F(ForgetRepoTest, ForgetSnapshotsRemovesExactlyTheGivenOnes) {
  std::vector<crypto::Id> ids;
  for (int i = 0; i < 5; ++i) {
    Snapshot s;
    s.time = fmt::format("2026-01-0{}T00:00:00Z", i + 1);
    s.paths = {"/x"};
    s.tree = repo_->BlobId(AsBytes(std::string("tree")));
    auto id = SaveSnapshot(*repo_, s);
    ASSERT_TRUE(id.ok()) << id.status().ToString();
    ids.push_back(*id);
  }
  ASSERT_TRUE(ForgetSnapshots(*repo_, {ids[1], ids[3]}).ok());
  auto left = ListSnapshots(*repo_);
  ASSERT_TRUE(left.ok()) << left.status().ToString();
  std::vector<crypto::Id> left_ids;
  for (const auto& s : *left) left_ids.push_back(s.id);
  EXPECT_EQ(left_ids, (std::vector<crypto::Id>{ids[0], ids[2], ids[4]}));
  EXPECT_EQ(repo_->storage().Stat(SnapshotName(ids[1])).status().code(), Code::kNotFound);

  // Already gone counts as removed; nothing else is touched.
  ASSERT_TRUE(ForgetSnapshots(*repo_, {ids[1], ids[4]}).ok());
  left = ListSnapshots(*repo_);
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->size(), 2u);
  EXPECT_EQ((*left)[0].id, ids[0]);
  EXPECT_EQ((*left)[1].id, ids[2]);
  // The config and keys are still there: the repository opens.
  auto st = storage::OpenStorage(url_);
  ASSERT_TRUE(st.ok());
  EXPECT_TRUE(Repository::Open(std::move(*st), "pw").ok());
}

}  // namespace
}  // namespace lb::repo
