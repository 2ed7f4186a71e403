// Unit tests of the plan file: the model a valid plan loads to, and the located message of
// each kind of mistake.
#include "plan/plan.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace lb::plan {
namespace {

// 2026-03-02T00:00:00Z: a fixed "now" for the checks that look at future runs.
constexpr UnixSeconds kNow = 1772409600;

// Ten lines every case starts from; the case's own text begins on line 11.
constexpr std::string_view kBase =
    "repositories:\n"
    "  main:\n"
    "    url: /srv/backup\n"
    "    key_file: /etc/lifeboat/key\n"
    "sources:\n"
    "  db:\n"
    "    kind: postgres\n"
    "  uploads:\n"
    "    kind: files\n"
    "    paths: [/srv/app/uploads]\n";

LoadedPlan Parse(std::string_view text) { return ParsePlan(text, "plan.yaml", {.now = kNow}); }

// Every problem as "plan.yaml:L:C: error: message".
std::vector<std::string> Problems(const LoadedPlan& lp) {
  std::vector<std::string> out;
  for (const auto& p : lp.problems)
    out.push_back(fmt::format("{}: {}: {}", p.where.ToString(),
                              p.severity == Severity::kError ? "error" : "warning", p.message));
  return out;
}

std::string Dump(const LoadedPlan& lp) {
  std::string out;
  for (const auto& p : lp.problems) out += p.ToString() + "\n";
  return out;
}

// Parses kBase + `text` and expects exactly `want` problems.
void ExpectProblems(std::string_view text, const std::vector<std::string>& want) {
  auto lp = Parse(std::string(kBase) + std::string(text));
  EXPECT_EQ(Problems(lp), want) << Dump(lp);
}

TEST(PlanTest, ValidPlanLoadsToModel) {
  const std::string text = R"(version: 1
timezone: Europe/Berlin
encryption:
  password_file: /etc/lifeboat/password
repositories:
  offsite:
    url: s3://bucket/offsite
    role: offsite
    priority: 3
    s3_credentials_file: /etc/lifeboat/s3
  local:
    url: /srv/backup
    role: primary
    priority: 1
    key_file: /etc/lifeboat/key
    region: eu-west-1
sources:
  db:
    kind: postgres
    env: {PGHOST: /var/run/postgresql, PGPORT: "5433"}
    pgdata: /var/lib/postgresql/15/main
  uploads:
    kind: files
    paths: [/srv/app/uploads, /srv/app/pdfs]
    excludes: ["*.tmp"]
  k8s:
    kind: command
    command: [kubectl, get, configmap, -o, yaml]
    filename: k8s.yaml
  logs:
    kind: logs
    paths: /var/log/app
    older_than: 7d
    patterns: ["*.log"]
    remove_archived: true
wal:
  retention: 7d
  archive_timeout: 60s
jobs:
  pg-full:
    kind: full
    source: db
    schedule: "0 1 * * *"
    timezone: UTC
    retention: {keep_daily: 7, keep_weekly: 4, keep_monthly: unlimited, keep_within: 30d}
    repositories: [local]
    tags: [daily]
  uploads:
    kind: files
    source: uploads
    schedule: "*/10 * * * *"
    retention: 30d
  dump:
    kind: dump
    source: db
    schedule: "@weekly"
    databases: [reservations]
    retention: 90d
  to-offsite:
    kind: copy
    from: local
    schedule: "@hourly"
  verify:
    kind: check
    schedule: "0 5 * * *"
    read_data_subset: 10%
objectives:
  reservations:
    description: reservations
    sources: [db]
    rpo: 15m
    rto: 1h
drills:
  weekly:
    source: db
    schedule: "0 6 * * SAT"
    repository: offsite
    restore_age: 7d
    rto: 1h30m
    queries:
      - SELECT 1
      - {sql: SELECT count(*) > 0 FROM reservations, expect: t}
audit:
  log: /var/log/lifeboat/audit.log
  copy_to_repository: true
daemon:
  listen: 127.0.0.1:9187
  token_file: /etc/lifeboat/token
  history: /var/lib/lifeboat/history.db
  job_timeout: 2h
  retries: 5
  retry_delay: 30s
  max_parallel: 3
  stop_grace: 2m
)";
  auto lp = Parse(text);
  ASSERT_TRUE(lp.ok()) << Dump(lp);
  EXPECT_TRUE(lp.problems.empty()) << Dump(lp);
  const Plan& p = lp.plan;
  EXPECT_EQ(p.file, "plan.yaml");
  EXPECT_EQ(p.timezone, "Europe/Berlin");
  EXPECT_EQ(p.encryption.password_file, "/etc/lifeboat/password");

  // Repositories come in priority order.
  ASSERT_EQ(p.repositories.size(), 2u);
  EXPECT_EQ(p.repositories[0].name, "local");
  EXPECT_EQ(p.repositories[0].role, RepositoryRole::kPrimary);
  EXPECT_EQ(p.repositories[0].region, "eu-west-1");
  EXPECT_EQ(p.repositories[0].where.ToString(), "plan.yaml:11:3");
  EXPECT_EQ(p.KeyFor(p.repositories[0]).key_file, "/etc/lifeboat/key");
  EXPECT_EQ(p.repositories[1].name, "offsite");
  EXPECT_EQ(p.repositories[1].role, RepositoryRole::kOffsite);
  EXPECT_EQ(p.repositories[1].s3_credentials_file, "/etc/lifeboat/s3");
  EXPECT_EQ(p.KeyFor(p.repositories[1]).password_file, "/etc/lifeboat/password");

  ASSERT_EQ(p.sources.size(), 4u);
  const SourcePlan* db = p.FindSource("db");
  ASSERT_NE(db, nullptr);
  EXPECT_EQ(db->kind, SourceKind::kPostgres);
  EXPECT_EQ(db->env.at("PGPORT"), "5433");
  EXPECT_EQ(db->pgdata, "/var/lib/postgresql/15/main");
  EXPECT_EQ(db->wal_source, "db");
  EXPECT_EQ(p.FindSource("uploads")->paths,
            (std::vector<std::string>{"/srv/app/uploads", "/srv/app/pdfs"}));
  EXPECT_EQ(p.FindSource("uploads")->excludes, std::vector<std::string>{"*.tmp"});
  EXPECT_EQ(p.FindSource("k8s")->command.front(), "kubectl");
  EXPECT_EQ(p.FindSource("k8s")->filename, "k8s.yaml");
  const SourcePlan* logs = p.FindSource("logs");
  EXPECT_EQ(logs->paths, std::vector<std::string>{"/var/log/app"});
  EXPECT_EQ(logs->older_than, repo::Duration{.days = 7});
  EXPECT_TRUE(logs->remove_archived);

  EXPECT_TRUE(p.wal.present);
  EXPECT_EQ(p.wal.retention, repo::Duration{.days = 7});
  EXPECT_EQ(p.wal.archive_timeout, 60);

  ASSERT_EQ(p.jobs.size(), 5u);
  const JobPlan* full = p.FindJob("pg-full");
  ASSERT_NE(full, nullptr);
  EXPECT_EQ(full->kind, JobKind::kFull);
  EXPECT_EQ(full->source, "db");
  EXPECT_EQ(full->schedule_text, "0 1 * * *");
  EXPECT_TRUE(full->schedule.zone().IsUtc());
  ASSERT_TRUE(full->retention.has_value());
  EXPECT_EQ(full->retention->keep_daily, 7);
  EXPECT_EQ(full->retention->keep_weekly, 4);
  EXPECT_EQ(full->retention->keep_monthly, repo::kKeepUnlimited);
  EXPECT_EQ(full->retention->keep_within, repo::Duration{.days = 30});
  EXPECT_EQ(full->repositories, std::vector<std::string>{"local"});
  EXPECT_EQ(full->tags, std::vector<std::string>{"daily"});
  EXPECT_EQ(full->where.ToString(), "plan.yaml:40:3");
  // The plan's zone is the default of schedules without their own.
  const JobPlan* up = p.FindJob("uploads");
  EXPECT_EQ(up->schedule.zone().name(), "Europe/Berlin");
  EXPECT_EQ(up->retention->keep_within, repo::Duration{.days = 30});
  // Without 'repositories' a job writes to every repository, in priority order.
  EXPECT_EQ(up->repositories, (std::vector<std::string>{"local", "offsite"}));
  EXPECT_EQ(p.FindJob("dump")->databases, std::vector<std::string>{"reservations"});
  // A copy job copies to every other repository by default.
  const JobPlan* copy = p.FindJob("to-offsite");
  EXPECT_EQ(copy->from, "local");
  EXPECT_EQ(copy->repositories, std::vector<std::string>{"offsite"});
  EXPECT_EQ(p.FindJob("verify")->read_data_subset, 10);

  ASSERT_EQ(p.objectives.size(), 1u);
  EXPECT_EQ(p.objectives[0].rpo, 15 * 60);
  EXPECT_EQ(p.objectives[0].rto, 3600);
  EXPECT_EQ(p.objectives[0].sources, std::vector<std::string>{"db"});

  ASSERT_EQ(p.drills.size(), 1u);
  const DrillPlan& d = p.drills[0];
  EXPECT_EQ(d.repository, "offsite");
  EXPECT_EQ(d.restore_age, repo::Duration{.days = 7});
  EXPECT_EQ(d.rto, 5400);
  ASSERT_EQ(d.queries.size(), 2u);
  EXPECT_EQ(d.queries[0].sql, "SELECT 1");
  EXPECT_EQ(d.queries[1].expect, "t");

  EXPECT_EQ(p.audit.log, "/var/log/lifeboat/audit.log");
  EXPECT_TRUE(p.audit.copy_to_repository);
  EXPECT_EQ(p.daemon.listen, "127.0.0.1:9187");
  EXPECT_EQ(p.daemon.token_file, "/etc/lifeboat/token");
  EXPECT_EQ(p.daemon.history, "/var/lib/lifeboat/history.db");
  EXPECT_EQ(p.daemon.job_timeout, 7200);
  EXPECT_EQ(p.daemon.retries, 5);
  EXPECT_EQ(p.daemon.retry_delay, 30);
  EXPECT_EQ(p.daemon.max_parallel, 3);
  EXPECT_EQ(p.daemon.stop_grace, 120);

  // The daemon's timer: runs of jobs and drills in time order.
  auto runs = NextRuns(p, kNow, 2);
  ASSERT_EQ(runs.size(), 12u);
  EXPECT_TRUE(std::is_sorted(runs.begin(), runs.end(), [](const auto& a, const auto& b) {
    return a.time < b.time;
  }));
  // 01:10 in Berlin; the hourly copy's 01:00 is `now` itself, so not after it.
  EXPECT_EQ(runs[0].name, "uploads");
  EXPECT_EQ(FormatUtc(runs[0].time), "2026-03-02T00:10:00Z");
  EXPECT_EQ(runs[1].name, "uploads");
  EXPECT_EQ(FormatUtc(runs[1].time), "2026-03-02T00:20:00Z");
  // Equal times: by name.
  EXPECT_EQ(runs[2].name, "pg-full");
  EXPECT_EQ(FormatUtc(runs[2].time), "2026-03-02T01:00:00Z");
  EXPECT_EQ(runs[3].name, "to-offsite");
  EXPECT_EQ(FormatUtc(runs[3].time), "2026-03-02T01:00:00Z");
}

TEST(PlanTest, ExampleOfTheSeedPlanIsValid) {
  auto lp = LoadPlanFile(std::string(LIFEBOAT_EXAMPLES_DIR) + "/reservations-plan.yaml",
                         {.now = kNow});
  ASSERT_TRUE(lp.ok()) << lp.status().ToString();
  EXPECT_TRUE(lp->problems.empty()) << Dump(*lp);
  EXPECT_EQ(lp->plan.repositories.size(), 3u);
  EXPECT_NE(lp->plan.FindJob("pg-full"), nullptr);
  EXPECT_EQ(lp->plan.FindSource("reservations-db")->kind, SourceKind::kPostgres);
}

TEST(PlanTest, UnknownKeyWithSuggestion) {
  ExpectProblems(R"(jobs:
  nightly:
    kind: files
    source: uploads
    shedule: "0 1 * * *"
    schedule: "0 1 * * *"
retension: {}
)",
                 {"plan.yaml:15:5: error: job 'nightly': unknown key 'shedule'; did you mean "
                  "'schedule'? expected one of: kind, source, schedule, timezone, retention, "
                  "repositories, tags, databases, from, read_data, read_data_subset",
                  "plan.yaml:17:1: error: plan: unknown key 'retension'; expected one of: "
                  "version, timezone, encryption, repositories, sources, jobs, wal, objectives, "
                  "drills, audit, daemon"});
  // A key of another kind of source is named as such.
  ExpectProblems(R"(  logs:
    kind: files
    paths: [/var/log]
    older_than: 7d
)",
                 {"plan.yaml:14:5: error: source 'logs': 'older_than' does not apply to a files "
                  "source"});
}

TEST(PlanTest, BadCronPointsAtTheColumn) {
  ExpectProblems(R"(jobs:
  a:
    kind: files
    source: uploads
    schedule: "0 1 * * MON-FRJ"
  b:
    kind: files
    source: uploads
    schedule: 0 24 * * *
  c:
    kind: files
    source: uploads
    schedule: "@dayly"
)",
                 {"plan.yaml:15:28: error: job 'a': bad schedule '0 1 * * MON-FRJ': column 13: "
                  "day-of-week field: unknown name 'FRJ'; expected SUN-SAT or 0-7",
                  "plan.yaml:19:17: error: job 'b': bad schedule '0 24 * * *': column 3: hour "
                  "field: 24 is out of range 0-23",
                  "plan.yaml:23:16: error: job 'c': bad schedule '@dayly': column 1: unknown "
                  "macro '@dayly'; expected @hourly, @daily, @weekly, @monthly or @yearly"});
}

TEST(PlanTest, UnknownReferences) {
  ExpectProblems(R"(jobs:
  a:
    kind: full
    source: dbb
    schedule: "@daily"
    repositories: [main, mainn]
  b:
    kind: full
    source: uploads
    schedule: "@daily"
drills:
  d:
    source: nothing
    schedule: "@weekly"
)",
                 {"plan.yaml:14:13: error: job 'a': unknown source 'dbb'; did you mean 'db'?",
                  "plan.yaml:16:19: error: job 'a': unknown repository 'mainn'; did you mean "
                  "'main'?",
                  "plan.yaml:19:13: error: job 'b': a full job needs a postgres source; 'uploads' "
                  "is a files source",
                  "plan.yaml:23:13: error: drill 'd': unknown source 'nothing'"});
}

TEST(PlanTest, BadDurations) {
  ExpectProblems(R"(wal:
  retention: 7days
  archive_timeout: 1y
objectives:
  o:
    sources: db
    rpo: 15x
    rto: 0m
)",
                 {"plan.yaml:12:14: error: wal: retention: bad duration '7days': expected a number "
                  "at 'ays'",
                  "plan.yaml:13:20: error: wal: archive_timeout: bad duration '1y': unknown unit "
                  "'y' (months and years are not elapsed times; use d)",
                  "plan.yaml:17:10: error: objective 'o': rpo: bad duration '15x': unknown unit "
                  "'x'",
                  "plan.yaml:18:10: error: objective 'o': rto: bad duration '0m': must be more "
                  "than zero"});
}

TEST(PlanTest, RetentionShorterThanDrill) {
  ExpectProblems(R"(jobs:
  pg-full:
    kind: full
    source: db
    schedule: "0 1 * * *"
    retention: {keep_within: 7d}
  pg-daily:
    kind: full
    source: db
    schedule: "0 13 * * *"
    retention: {keep_daily: 14}
drills:
  monthly:
    source: db
    schedule: "0 6 1 * *"
    restore_age: 30d
  weekly:
    source: db
    schedule: "0 6 * * SAT"
    restore_age: 7d
)",
                 {"plan.yaml:26:18: error: drill 'monthly': restores source 'db' as of 30d ago, "
                  "but its backups are kept for only about 13d (job 'pg-daily': keep_daily 14)"});
}

TEST(PlanTest, InlineSecretsAreRejected) {
  ExpectProblems(R"(  env-db:
    kind: postgres
    env: {PGPASSWORD: hunter2}
daemon:
  listen: 0.0.0.0:9187
  token: abc
)",
                 {"plan.yaml:13:11: error: source 'env-db': 'PGPASSWORD' would put a secret into "
                  "the plan file; the plan holds only references to secrets",
                  "plan.yaml:15:11: warning: daemon: listens beyond this host without token_file; "
                  "anyone who reaches the port can read the status",
                  "plan.yaml:16:3: error: daemon: 'token' would put a secret into the plan file; "
                  "the plan holds only references to secrets"});
  // In a repository (a section of its own, so the base is not used).
  auto lp = Parse(R"(repositories:
  cloud:
    url: s3://AKIA123:abc@host/bucket
    password: hunter2
)");
  EXPECT_EQ(Problems(lp),
            (std::vector<std::string>{
                "plan.yaml:2:3: error: repository 'cloud': no key source: lifeboat could not open "
                "it",
                "plan.yaml:3:10: error: repository 'cloud': the url holds a secret "
                "(user:secret@); the plan holds only references to secrets",
                "plan.yaml:4:5: error: repository 'cloud': 'password' would put a secret into "
                "the plan file; the plan holds only references to secrets"}))
      << Dump(lp);
  EXPECT_EQ(lp.problems[2].hint,
            "use password_file: PATH or password_env: VARIABLE (readable only by the user that "
            "runs lifeboat)");
}

TEST(PlanTest, DuplicateKeysAndNames) {
  ExpectProblems(R"(jobs:
  a:
    kind: files
    source: uploads
    schedule: "@daily"
    schedule: "@hourly"
  a:
    kind: files
    source: uploads
    schedule: "@daily"
drills:
  a:
    source: db
    schedule: "@weekly"
)",
                 {"plan.yaml:16:5: error: job 'a': duplicate key 'schedule' (first at line 15)",
                  "plan.yaml:17:3: error: jobs: duplicate job name 'a' (first at line 12)",
                  "plan.yaml:22:3: error: drill 'a': no job backs up source 'db', so there is "
                  "nothing to restore",
                  "plan.yaml:22:3: error: drill 'a' has the name of a job; jobs and drills share "
                  "one run history, so their names must differ"});
}

TEST(PlanTest, RpoLongerThanTheScheduleDelivers) {
  ExpectProblems(R"(jobs:
  uploads:
    kind: files
    source: uploads
    schedule: "0 3 * * *"
  uploads-berlin:
    kind: files
    source: uploads
    schedule: "30 2 * * *"
    timezone: Europe/Berlin
objectives:
  files:
    sources: [uploads]
    rpo: 1h
  files-day:
    sources: [uploads]
    rpo: 1d
  database:
    sources: [db]
    rpo: 15m
    rto: 1h
)",
                 {"plan.yaml:24:10: error: objective 'files': rpo 1h cannot be met for source "
                  "'uploads': its most frequent backup, job 'uploads' ('0 3 * * *'), runs up to "
                  "1d apart",
                  "plan.yaml:30:10: error: objective 'database': rpo 15m cannot be met: no job "
                  "backs up source 'db'",
                  "plan.yaml:31:10: warning: objective 'database': rto 1h is not measured: no "
                  "drill restores source 'db'"});
  // The same daily backup, but only in Berlin: 25 hours apart across the fall back.
  ExpectProblems(R"(jobs:
  uploads:
    kind: files
    source: uploads
    schedule: "30 2 * * *"
    timezone: Europe/Berlin
objectives:
  files:
    sources: [uploads]
    rpo: 24h
)",
                 {"plan.yaml:20:10: error: objective 'files': rpo 1d cannot be met for source "
                  "'uploads': its most frequent backup, job 'uploads' ('30 2 * * *' in "
                  "Europe/Berlin), runs up to 1d1h apart"});
  // WAL archiving delivers the database's RPO.
  ExpectProblems(R"(wal:
  retention: 7d
  archive_timeout: 1m
objectives:
  payments:
    sources: [db]
    rpo: 5m
)",
                 {});
}

TEST(PlanTest, YamlSyntaxError) {
  auto lp = Parse("jobs:\n  a: [1, 2\n  b: 3\n");
  ASSERT_EQ(lp.problems.size(), 1u) << Dump(lp);
  EXPECT_EQ(lp.problems[0].where.ToString(), "plan.yaml:3:4");
  EXPECT_EQ(lp.problems[0].message, "YAML syntax error: end of sequence flow not found");
  EXPECT_FALSE(lp.ok());

  lp = Parse("");
  EXPECT_EQ(Problems(lp), std::vector<std::string>{"plan.yaml:1:1: error: the plan is empty"});
  lp = Parse("- a\n- b\n");
  ASSERT_EQ(lp.problems.size(), 1u);
  EXPECT_EQ(lp.problems[0].where.ToString(), "plan.yaml:1:1");
}

TEST(PlanTest, WrongShapesAndTypes) {
  ExpectProblems(R"(jobs:
  - kind: files
wal:
  retention: 7d
  sources: uploads
audit:
  log: [a, b]
  copy_to_repository: maybe
daemon:
  listen: localhost
)",
                 {"plan.yaml:12:3: error: jobs: expected a map of job names to their settings, "
                  "got a list",
                  "plan.yaml:15:12: error: wal: WAL archiving needs a postgres source; 'uploads' "
                  "is a files source",
                  "plan.yaml:17:8: error: audit: 'log' expects a string, got a list",
                  "plan.yaml:18:23: error: audit: 'copy_to_repository' expects true or false, "
                  "got 'maybe'",
                  "plan.yaml:20:11: error: daemon: listen 'localhost' is not HOST:PORT"});
}

TEST(PlanTest, AllErrorsAreCollected) {
  auto lp = Parse(std::string(kBase) + R"(jobs:
  a:
    kind: fulll
  b:
    kind: files
    source: nope
    schedule: "61 * * * *"
    retention: {keep_daily: 0}
  c:
    kind: prune
    source: db
    schedule: "@daily"
    retention: 7d
)");
  EXPECT_EQ(Problems(lp),
            (std::vector<std::string>{
                "plan.yaml:13:11: error: job 'a': unknown kind 'fulll' (did you mean 'full'?); "
                "expected one of: full, incr, dump, files, command, logs, wal-expire, "
                "wal-verify, forget, prune, check, copy",
                "plan.yaml:16:13: error: job 'b': unknown source 'nope'",
                "plan.yaml:17:16: error: job 'b': bad schedule '61 * * * *': column 1: minute "
                "field: 61 is out of range 0-59",
                "plan.yaml:18:29: error: job 'b': retention: 'keep_daily' expects a whole number "
                "1-1000000, got '0'",
                "plan.yaml:21:5: error: job 'c': a prune job takes no source",
                "plan.yaml:23:5: error: job 'c': 'retention' does not apply to a prune job"}))
      << Dump(lp);
  EXPECT_EQ(lp.ErrorCount(), 6u);
}

TEST(PlanTest, FileErrors) {
  auto lp = LoadPlanFile("/nonexistent/plan.yaml");
  ASSERT_FALSE(lp.ok());
  EXPECT_EQ(lp.status().code(), Code::kNotFound);
}

TEST(PlanTest, ElapsedDurations) {
  EXPECT_EQ(*ParseElapsed("15m"), 900);
  EXPECT_EQ(*ParseElapsed("15min"), 900);
  EXPECT_EQ(*ParseElapsed("90s"), 90);
  EXPECT_EQ(*ParseElapsed("1h30m"), 5400);
  EXPECT_EQ(*ParseElapsed("24h"), 86400);
  EXPECT_EQ(*ParseElapsed("7d"), 7 * 86400);
  EXPECT_EQ(*ParseElapsed("2w"), 14 * 86400);
  for (std::string_view bad : {"", "15", "m", "1.5h", "1h1h", "-5m", "15 m", "1y", "0s"})
    EXPECT_FALSE(ParseElapsed(bad).ok()) << bad;
  EXPECT_EQ(FormatElapsed(900), "15m");
  EXPECT_EQ(FormatElapsed(90000), "1d1h");
  EXPECT_EQ(FormatElapsed(5400), "1h30m");
}

}  // namespace
}  // namespace lb::plan
