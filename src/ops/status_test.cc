// RPO exposure and objective states from recovery points, the status JSON and exit codes,
// and the Prometheus rendering of a report.
#include "ops/status.h"

#include <gtest/gtest.h>

#include "ops/metrics.h"

namespace lb::ops {
namespace {

constexpr double kNow = 1767571200;

plan::Plan MakePlan() {
  auto lp = plan::ParsePlan(R"(encryption:
  password_file: /etc/lifeboat/password
repositories:
  r1: {url: /srv/r1}
  r2: {url: /srv/r2}
sources:
  db: {kind: postgres, wal_source: main}
  files: {kind: files, paths: [/srv/files]}
  cfg: {kind: command, command: [kubectl, get, all]}
wal:
  retention: 7d
  archive_timeout: 60s
jobs:
  full: {kind: full, source: db, schedule: "@daily"}
  files: {kind: files, source: files, schedule: "*/10 * * * *"}
  cfg: {kind: command, source: cfg, schedule: "@hourly"}
objectives:
  payments: {sources: [db], rpo: 5m}
  uploads: {sources: [files], rpo: 1h}
  config: {sources: [cfg, files], rpo: 2h}
  everything: {sources: [db, files, cfg], rto: 4h}
)",
                            "plan.yaml", {.now = int64_t(kNow)});
  std::string problems;
  for (const auto& p : lp.problems) problems += p.ToString() + "\n";
  EXPECT_TRUE(lp.ok()) << problems;
  return lp.plan;
}

RecoveryPoints Points(double wal_at, double files_at) {
  RecoveryPoints r1;
  r1.repository = "r1";
  r1.wal.push_back(
      {.source = "main", .newest = "000000010000000000000042", .archived_at = wal_at, .files = 66});
  r1.snapshots.push_back({.id = "aa11",
                          .kind = "pg-base",
                          .source = "main",
                          .tags = {},
                          .time = kNow - 86000,
                          .count = 3});
  r1.snapshots.push_back({.id = "bb22",
                          .kind = "files",
                          .source = "",
                          .tags = {"job:files", "source:files"},
                          .time = files_at,
                          .count = 5});
  return r1;
}

const ObjectiveStatus& Find(const StatusReport& r, const std::string& name) {
  for (const auto& o : r.objectives)
    if (o.name == name) return o;
  ADD_FAILURE() << "no objective " << name;
  return r.objectives.front();
}

StatusReport Compute(double wal_at, double files_at, double cfg_at) {
  RecoveryPoints r1 = Points(wal_at, files_at);
  RecoveryPoints r2;
  r2.repository = "r2";
  r2.snapshots.push_back(
      {.id = "cc33", .kind = "command", .source = "cfg", .tags = {}, .time = cfg_at, .count = 1});
  r2.snapshots.push_back({.id = "dd44",
                          .kind = "files",
                          .source = "",
                          .tags = {"source:files-old"},
                          .time = kNow,
                          .count = 1});
  return ComputeStatus(MakePlan(), {r1, r2}, {}, {}, {}, {}, kNow);
}

TEST(StatusTest, AllMet) {
  auto r = Compute(kNow - 30, kNow - 600, kNow - 3000);
  EXPECT_EQ(Find(r, "payments").state, ObjectiveState::kOk);
  EXPECT_DOUBLE_EQ(*Find(r, "payments").exposure, 30);
  EXPECT_EQ(Find(r, "payments").worst_source, "db");
  EXPECT_EQ(Find(r, "uploads").state, ObjectiveState::kOk);
  EXPECT_DOUBLE_EQ(*Find(r, "uploads").exposure, 600);
  // The worst of its sources counts.
  EXPECT_DOUBLE_EQ(*Find(r, "config").exposure, 3000);
  EXPECT_EQ(Find(r, "config").worst_source, "cfg");
  EXPECT_EQ(Find(r, "everything").state, ObjectiveState::kNotMeasured);
  EXPECT_EQ(r.overall, ObjectiveState::kOk);
  EXPECT_EQ(StatusExitCode(r), 0);
  ASSERT_EQ(r.wal.size(), 1u);
  EXPECT_DOUBLE_EQ(*r.wal[0].lag, 30);
  EXPECT_EQ(r.wal[0].newest, "000000010000000000000042");
}

TEST(StatusTest, WarningAbove80Percent) {
  auto r = Compute(kNow - 250, kNow - 600, kNow - 3000);  // 250 s of 300 s
  EXPECT_EQ(Find(r, "payments").state, ObjectiveState::kWarning);
  EXPECT_EQ(StatusExitCode(r), 1);
  r = Compute(kNow - 240, kNow - 600, kNow - 3000);  // exactly 80%: still ok
  EXPECT_EQ(Find(r, "payments").state, ObjectiveState::kOk);
}

TEST(StatusTest, ViolatedWhenArchivingStops) {
  auto r = Compute(kNow - 301, kNow - 600, kNow - 3000);
  EXPECT_EQ(Find(r, "payments").state, ObjectiveState::kViolated);
  EXPECT_EQ(r.overall, ObjectiveState::kViolated);
  EXPECT_EQ(StatusExitCode(r), 2);
  auto j = StatusToJson(r);
  EXPECT_EQ(j["state"], "VIOLATED");
  EXPECT_EQ(j["exit_code"], 2);
}

TEST(StatusTest, WithoutWalTheNewestBaseBackupCounts) {
  auto r = ComputeStatus(MakePlan(), {}, {}, {}, {}, {"repository 'r1': unreachable"}, kNow);
  EXPECT_EQ(Find(r, "payments").state, ObjectiveState::kViolated);
  EXPECT_FALSE(Find(r, "payments").exposure.has_value());  // nothing to restore at all
  EXPECT_EQ(r.errors.size(), 1u);
  RecoveryPoints only_base;
  only_base.repository = "r1";
  only_base.snapshots.push_back({.id = "aa11",
                                 .kind = "pg-base",
                                 .source = "main",
                                 .tags = {},
                                 .time = kNow - 100,
                                 .count = 1});
  r = ComputeStatus(MakePlan(), {only_base}, {}, {}, {}, {}, kNow);
  EXPECT_DOUBLE_EQ(*Find(r, "payments").exposure, 100);
}

TEST(StatusTest, SnapshotOfSource) {
  plan::SourcePlan db;
  db.name = "db";
  db.kind = plan::SourceKind::kPostgres;
  db.wal_source = "main";
  auto point = [](std::string kind, std::string source, std::vector<std::string> tags) {
    SnapshotPoint s;
    s.kind = std::move(kind);
    s.source = std::move(source);
    s.tags = std::move(tags);
    return s;
  };
  EXPECT_TRUE(SnapshotOfSource(point("pg-base", "main", {}), db));
  EXPECT_TRUE(SnapshotOfSource(point("pg-dump", "main", {}), db));
  EXPECT_FALSE(SnapshotOfSource(point("pg-base", "other", {}), db));
  EXPECT_TRUE(SnapshotOfSource(point("files", "", {"source:db"}), db));
  plan::SourcePlan f;
  f.name = "f";
  f.kind = plan::SourceKind::kFiles;
  EXPECT_FALSE(SnapshotOfSource(point("files", "f", {}), f));
  EXPECT_TRUE(SnapshotOfSource(point("files", "", {"job:x", "source:f"}), f));
}

TEST(MetricsTest, PrometheusText) {
  auto r = Compute(kNow - 301, kNow - 600, kNow - 3000);
  JobStatus& js = r.jobs[1];
  ASSERT_EQ(js.name, "files");
  js.stats.runs = 4;
  js.stats.failures = 1;
  RunRecord ok{.id = 3,
               .job = "files",
               .scheduled = int64_t(kNow) - 600,
               .started = kNow - 600,
               .ended = kNow - 590.5,
               .result = RunResult::kOk,
               .exit_code = 0,
               .bytes = 12345};
  js.stats.last = ok;
  js.stats.last_success = ok;
  js.live.next_run = int64_t(kNow) + 60;
  std::string m = RenderMetrics(r);
  for (const char* want : {
           "# HELP lifeboat_job_last_success_timestamp_seconds ",
           "# TYPE lifeboat_job_last_success_timestamp_seconds gauge\n",
           "lifeboat_job_last_success_timestamp_seconds{job=\"files\"} 1767570609.500\n",
           "lifeboat_job_last_duration_seconds{job=\"files\"} 9.500\n",
           "lifeboat_job_last_bytes{job=\"files\"} 12345\n",
           "# TYPE lifeboat_job_failures_total counter\n",
           "lifeboat_job_failures_total{job=\"files\"} 1\n",
           "lifeboat_job_failures_total{job=\"full\"} 0\n",
           "lifeboat_job_next_run_timestamp_seconds{job=\"files\"} 1767571260\n",
           "lifeboat_objective_rpo_seconds{objective=\"payments\"} 300\n",
           "lifeboat_objective_rpo_exposure_seconds{objective=\"payments\"} 301\n",
           "lifeboat_objective_rpo_violated{objective=\"payments\"} 1\n",
           "lifeboat_objective_rpo_violated{objective=\"uploads\"} 0\n",
           "lifeboat_objective_rto_seconds{objective=\"everything\"} 14400\n",
           "lifeboat_wal_archive_lag_seconds{source=\"db\"} 301\n",
           "lifeboat_status 2\n",
       })
    EXPECT_NE(m.find(want), std::string::npos) << want << "\n" << m;
  // Every sample belongs to a family announced by HELP and TYPE just before.
  EXPECT_EQ(m.find("lifeboat_objective_rpo_seconds{objective=\"everything\"}"), std::string::npos);
  auto none = ComputeStatus(MakePlan(), {}, {}, {}, {}, {}, kNow);
  EXPECT_NE(RenderMetrics(none).find(
                "lifeboat_objective_rpo_exposure_seconds{objective=\"payments\"} +Inf\n"),
            std::string::npos);
}

TEST(MetricsTest, EscapesLabelValues) {
  EXPECT_EQ(EscapeLabelValue("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}

TEST(StatusTest, TextNamesTheState) {
  auto r = Compute(kNow - 301, kNow - 600, kNow - 3000);
  std::string t = StatusToText(r);
  EXPECT_NE(t.find("payments"), std::string::npos);
  EXPECT_NE(t.find("VIOLATED"), std::string::npos);
  EXPECT_NE(t.find("overall: VIOLATED"), std::string::npos);
}

}  // namespace
}  // namespace lb::ops
