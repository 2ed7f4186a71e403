// The scheduler with an injected clock: due jobs, one job per source, prune alone,
// retries with doubling delay, merged slots, a missed slot run once after downtime, reload.
#include "ops/scheduler.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace lb::ops {
namespace {

// 2026-01-05T00:00:00Z, a Monday, on a 5-minute boundary.
constexpr UnixSeconds kT0 = 1767571200;

plan::Plan MakePlan(const std::string& jobs) {
  std::string text = R"(encryption:
  password_file: /etc/lifeboat/password
repositories:
  r1: {url: /srv/r1}
sources:
  s1: {kind: files, paths: [/a]}
  s2: {kind: files, paths: [/b]}
jobs:
)" + jobs;
  auto lp = plan::ParsePlan(text, "plan.yaml", {.now = kT0});
  std::string problems;
  for (const auto& p : lp.problems) problems += p.ToString() + "\n";
  EXPECT_TRUE(lp.ok()) << problems;
  return lp.plan;
}

std::vector<std::string> Names(const std::vector<JobTicket>& ts) {
  std::vector<std::string> out;
  for (const auto& t : ts) out.push_back(t.job);
  return out;
}

const std::string kThreeJobs = R"(  a: {kind: files, source: s1, schedule: "*/5 * * * *"}
  b: {kind: files, source: s1, schedule: "*/5 * * * *"}
  c: {kind: files, source: s2, schedule: "*/5 * * * *"}
)";

TEST(SchedulerTest, DueJobsAtTheirSlots) {
  Scheduler s({.retries = 0, .retry_delay = 60, .max_parallel = 4});
  s.SetPlan(MakePlan("  a: {kind: files, source: s1, schedule: \"*/5 * * * *\"}\n"), kT0);
  EXPECT_TRUE(s.Poll(kT0).empty());
  EXPECT_EQ(s.NextWakeup(kT0), kT0 + 300);
  EXPECT_EQ(s.NextRun("a"), kT0 + 300);
  EXPECT_TRUE(s.Poll(kT0 + 299).empty());
  auto t = s.Poll(kT0 + 300);
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].job, "a");
  EXPECT_EQ(t[0].scheduled, kT0 + 300);
  EXPECT_EQ(t[0].attempt, 1);
  EXPECT_FALSE(t[0].missed);
  EXPECT_TRUE(s.IsRunning("a"));
  auto slots = s.TakeSlotUpdates();
  ASSERT_EQ(slots.size(), 1u);
  EXPECT_EQ(slots[0], std::make_pair(std::string("a"), kT0 + 300));
  s.Finished(t[0].id, true, kT0 + 310);
  EXPECT_FALSE(s.IsRunning("a"));
  EXPECT_EQ(s.NextRun("a"), kT0 + 600);
}

TEST(SchedulerTest, OneJobPerSourceTheSecondWaits) {
  Scheduler s({.retries = 0, .retry_delay = 60, .max_parallel = 4});
  s.SetPlan(MakePlan(kThreeJobs), kT0);
  auto t = s.Poll(kT0 + 300);
  // a and b share s1: a (first by name) starts, b waits; c has its own source.
  EXPECT_EQ(Names(t), (std::vector<std::string>{"a", "c"}));
  EXPECT_TRUE(s.Poll(kT0 + 301).empty());
  s.Finished(t[0].id, true, kT0 + 320);
  auto t2 = s.Poll(kT0 + 320);
  ASSERT_EQ(Names(t2), std::vector<std::string>{"b"});
  EXPECT_EQ(t2[0].scheduled, kT0 + 300);
}

TEST(SchedulerTest, MaxParallel) {
  Scheduler s({.retries = 0, .retry_delay = 60, .max_parallel = 1});
  s.SetPlan(MakePlan(kThreeJobs), kT0);
  auto t = s.Poll(kT0 + 300);
  EXPECT_EQ(Names(t), std::vector<std::string>{"a"});
  s.Finished(t[0].id, true, kT0 + 301);
  EXPECT_EQ(Names(s.Poll(kT0 + 301)), std::vector<std::string>{"b"});
}

TEST(SchedulerTest, PruneRunsAlone) {
  Scheduler s({.retries = 0, .retry_delay = 60, .max_parallel = 4});
  s.SetPlan(MakePlan(R"(  a: {kind: files, source: s1, schedule: "*/5 * * * *"}
  p: {kind: prune, schedule: "*/10 * * * *"}
  c: {kind: files, source: s2, schedule: "*/10 * * * *"}
)"),
            kT0);
  auto t = s.Poll(kT0 + 300);
  ASSERT_EQ(Names(t), std::vector<std::string>{"a"});
  // At 600 a is still running: the prune waits, and c, queued behind it, waits too.
  EXPECT_TRUE(s.Poll(kT0 + 600).empty());
  s.Finished(t[0].id, true, kT0 + 610);
  auto t2 = s.Poll(kT0 + 610);
  ASSERT_EQ(Names(t2), std::vector<std::string>{"p"});
  EXPECT_TRUE(s.Poll(kT0 + 611).empty());  // nothing beside a prune
  s.Finished(t2[0].id, true, kT0 + 620);
  EXPECT_EQ(Names(s.Poll(kT0 + 620)), (std::vector<std::string>{"a", "c"}));
}

TEST(SchedulerTest, RetriesWithDoublingDelayThenGivesUp) {
  Scheduler s({.retries = 3, .retry_delay = 10, .max_parallel = 2});
  s.SetPlan(MakePlan("  a: {kind: files, source: s1, schedule: \"@hourly\"}\n"), kT0);
  UnixSeconds now = kT0 + 3600;
  auto t = s.Poll(now);
  ASSERT_EQ(t.size(), 1u);
  std::vector<int64_t> delays;
  for (int attempt = 1; attempt <= 3; ++attempt) {
    s.Finished(t[0].id, false, now);
    auto next = s.NextRun("a");
    ASSERT_TRUE(next.has_value());
    delays.push_back(*next - now);
    EXPECT_TRUE(s.Poll(*next - 1).empty());
    EXPECT_EQ(s.NextWakeup(now), *next);
    now = *next;
    t = s.Poll(now);
    ASSERT_EQ(t.size(), 1u);
    EXPECT_EQ(t[0].attempt, attempt + 1);
    EXPECT_EQ(t[0].scheduled, kT0 + 3600);
  }
  EXPECT_EQ(delays, (std::vector<int64_t>{10, 20, 40}));
  // The fourth failure is the last: next comes the regular slot.
  s.Finished(t[0].id, false, now);
  EXPECT_EQ(s.NextRun("a"), kT0 + 7200);
}

TEST(SchedulerTest, NewSlotReplacesAWaitingRetry) {
  Scheduler s({.retries = 3, .retry_delay = 600, .max_parallel = 2});
  s.SetPlan(MakePlan("  a: {kind: files, source: s1, schedule: \"*/5 * * * *\"}\n"), kT0);
  auto t = s.Poll(kT0 + 300);
  s.Finished(t[0].id, false, kT0 + 310);
  EXPECT_EQ(s.NextRun("a"), kT0 + 910);
  auto t2 = s.Poll(kT0 + 600);
  ASSERT_EQ(t2.size(), 1u);
  EXPECT_EQ(t2[0].attempt, 1);
  EXPECT_EQ(t2[0].scheduled, kT0 + 600);
}

TEST(SchedulerTest, SlotsPassingWhileRunningQueueOneRun) {
  Scheduler s({.retries = 0, .retry_delay = 60, .max_parallel = 2});
  s.SetPlan(MakePlan("  a: {kind: files, source: s1, schedule: \"*/5 * * * *\"}\n"), kT0);
  auto t = s.Poll(kT0 + 300);
  for (UnixSeconds now = kT0 + 600; now <= kT0 + 1500; now += 300) EXPECT_TRUE(s.Poll(now).empty());
  s.Finished(t[0].id, true, kT0 + 1510);
  auto t2 = s.Poll(kT0 + 1510);
  ASSERT_EQ(t2.size(), 1u);
  EXPECT_EQ(t2[0].scheduled, kT0 + 1500);  // the newest slot it covers
  EXPECT_TRUE(s.Poll(kT0 + 1511).empty());
}

TEST(SchedulerTest, MissedSlotsAfterDowntimeRunOnce) {
  auto p = MakePlan(R"(  a: {kind: files, source: s1, schedule: "*/5 * * * *"}
  b: {kind: files, source: s2, schedule: "@daily"}
  c: {kind: prune, schedule: "*/5 * * * *"}
)");
  Scheduler s({.retries = 0, .retry_delay = 60, .max_parallel = 4});
  // Down from kT0 + 300 (a's last slot) to kT0 + 3700: eleven slots of a passed; b's last
  // slot was today's, none passed; c never ran (no slot recorded): it waits for its next.
  UnixSeconds now = kT0 + 3700;
  s.SetPlan(p, now, {{"a", kT0 + 300}, {"b", kT0}});
  auto slots = s.TakeSlotUpdates();
  ASSERT_EQ(slots.size(), 1u);
  EXPECT_EQ(slots[0], std::make_pair(std::string("a"), kT0 + 3600));
  auto t = s.Poll(now);
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].job, "a");
  EXPECT_TRUE(t[0].missed);
  EXPECT_EQ(t[0].scheduled, kT0 + 3600);
  s.Finished(t[0].id, true, now + 5);
  EXPECT_TRUE(s.Poll(now + 5).empty());
  EXPECT_EQ(s.NextRun("a"), kT0 + 3900);
  EXPECT_EQ(s.NextRun("b"), kT0 + 86400);
  EXPECT_EQ(s.NextRun("c"), kT0 + 3900);
}

TEST(SchedulerTest, EverySchedulesMissedOnce) {
  Scheduler s({.retries = 0, .retry_delay = 60, .max_parallel = 4});
  s.SetPlan(MakePlan("  a: {kind: files, source: s1, schedule: \"@every 5s\"}\n"), kT0 + 17,
            {{"a", kT0}});
  auto t = s.Poll(kT0 + 17);
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].scheduled, kT0 + 15);
  s.Finished(t[0].id, true, kT0 + 18);
  EXPECT_EQ(s.NextRun("a"), kT0 + 20);
}

TEST(SchedulerTest, ReloadKeepsState) {
  Scheduler s({.retries = 2, .retry_delay = 100, .max_parallel = 4});
  s.SetPlan(MakePlan(kThreeJobs), kT0);
  auto t = s.Poll(kT0 + 300);  // a and c run, b waits for a
  ASSERT_EQ(Names(t), (std::vector<std::string>{"a", "c"}));
  s.Finished(t[1].id, false, kT0 + 310);  // c fails: retry at 410
  // Reload: b removed, c's schedule unchanged, a new job d; a keeps running.
  s.SetPlan(MakePlan(R"(  a: {kind: files, source: s1, schedule: "*/5 * * * *"}
  c: {kind: files, source: s2, schedule: "*/5 * * * *"}
  d: {kind: files, source: s2, schedule: "*/10 * * * *"}
)"),
            kT0 + 320);
  EXPECT_TRUE(s.IsRunning("a"));
  EXPECT_EQ(s.NextRun("c"), kT0 + 410);
  EXPECT_EQ(s.NextRun("b"), std::nullopt);
  EXPECT_EQ(s.NextRun("d"), kT0 + 600);
  s.Finished(t[0].id, true, kT0 + 330);
  EXPECT_TRUE(s.Poll(kT0 + 330).empty());  // b is gone
  auto t2 = s.Poll(kT0 + 410);
  ASSERT_EQ(Names(t2), std::vector<std::string>{"c"});
  EXPECT_EQ(t2[0].attempt, 2);
  // A changed schedule takes effect from the reload.
  s.SetPlan(MakePlan(R"(  a: {kind: files, source: s1, schedule: "@hourly"}
  c: {kind: files, source: s2, schedule: "*/5 * * * *"}
)"),
            kT0 + 420);
  EXPECT_EQ(s.NextRun("a"), kT0 + 3600);
}

TEST(SchedulerTest, StopStartsNothing) {
  Scheduler s({.retries = 3, .retry_delay = 10, .max_parallel = 4});
  s.SetPlan(MakePlan(kThreeJobs), kT0);
  auto t = s.Poll(kT0 + 300);
  s.Stop();
  s.Finished(t[0].id, false, kT0 + 301);  // no retry after a stop
  EXPECT_TRUE(s.Poll(kT0 + 10000).empty());
  EXPECT_EQ(s.NextWakeup(kT0 + 301), std::nullopt);
}

}  // namespace
}  // namespace lb::ops
