// What a plan job runs: the commands, their repositories, secrets by reference, tags,
// copies to the other repositories and the retention after a backup.
#include "ops/job_steps.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace lb::ops {
namespace {

plan::Plan MakePlan() {
  auto lp = plan::ParsePlan(R"(encryption:
  key_file: /etc/lifeboat/key
repositories:
  one: {url: /srv/one}
  two: {url: "s3://bucket/two", s3_credentials_file: /etc/lifeboat/s3, password_file: /etc/lifeboat/pw2}
sources:
  db:
    kind: postgres
    env: {PGHOST: /run/postgresql, PGPORT: "5433"}
    pgdata: /var/lib/postgresql/15/main
    wal_source: main
  up: {kind: files, paths: [/srv/up, /srv/more], excludes: ["*.tmp"]}
  k8s: {kind: command, command: [kubectl, get, all], filename: k8s.yaml}
wal:
  retention: 7d
jobs:
  full: {kind: full, source: db, schedule: "@daily", retention: {keep_within: 30d, keep_last: 3}, tags: [daily]}
  up: {kind: files, source: up, schedule: "@daily", repositories: [one]}
  k8s: {kind: command, source: k8s, schedule: "@daily", repositories: [two]}
  expire: {kind: wal-expire, source: db, schedule: "@daily"}
  tidy: {kind: forget, source: up, schedule: "@daily", retention: 7d}
  dr: {kind: copy, from: one, repositories: [two], schedule: "@hourly"}
  chk: {kind: check, schedule: "@daily", read_data_subset: 10%}
)",
                            "plan.yaml", {.now = 1767571200});
  std::string problems;
  for (const auto& p : lp.problems) problems += p.ToString() + "\n";
  EXPECT_TRUE(lp.ok()) << problems;
  return lp.plan;
}

std::vector<JobStep> Steps(const plan::Plan& p, const std::string& job) {
  auto s = JobSteps(p, *p.FindJob(job));
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? *s : std::vector<JobStep>{};
}

TEST(JobStepsTest, BackupCopyRetention) {
  auto p = MakePlan();
  auto steps = Steps(p, "full");
  ASSERT_EQ(steps.size(), 4u);
  EXPECT_EQ(steps[0].role, StepRole::kBackup);
  EXPECT_EQ(steps[0].repository, "one");
  EXPECT_EQ(steps[0].Display(),
            "lifeboat --repo /srv/one --key-file /etc/lifeboat/key --json pg backup --type full "
            "--source main --pgdata /var/lib/postgresql/15/main --tag job:full --tag source:db "
            "--tag daily");
  EXPECT_EQ(steps[0].env.at("PGHOST"), "/run/postgresql");
  EXPECT_EQ(steps[0].env.at("PGPORT"), "5433");
  EXPECT_EQ(steps[1].role, StepRole::kCopy);
  EXPECT_EQ(steps[1].repository, "two");
  EXPECT_EQ(steps[1].Display(),
            "lifeboat --repo s3://bucket/two --password-file /etc/lifeboat/pw2 --json copy --from "
            "/srv/one --from-key-file /etc/lifeboat/key --tag job:full");
  EXPECT_EQ(steps[1].env.at("AWS_SHARED_CREDENTIALS_FILE"), "/etc/lifeboat/s3");
  EXPECT_EQ(steps[2].role, StepRole::kForget);
  EXPECT_EQ(steps[2].Display(),
            "lifeboat --repo /srv/one --key-file /etc/lifeboat/key --json forget --keep-last 3 "
            "--keep-within 30d --tag job:full");
  EXPECT_EQ(steps[3].repository, "two");
}

TEST(JobStepsTest, SourcesOfEachKind) {
  auto p = MakePlan();
  auto up = Steps(p, "up");
  ASSERT_EQ(up.size(), 1u);  // one repository, no retention
  EXPECT_EQ(up[0].Display(),
            "lifeboat --repo /srv/one --key-file /etc/lifeboat/key --json backup files --exclude "
            "'*.tmp' --tag job:up --tag source:up -- /srv/up /srv/more");
  EXPECT_TRUE(up[0].env.empty());
  auto k8s = Steps(p, "k8s");
  ASSERT_EQ(k8s.size(), 1u);
  EXPECT_EQ(k8s[0].Display(),
            "lifeboat --repo s3://bucket/two --password-file /etc/lifeboat/pw2 --json backup "
            "command --name k8s --filename k8s.yaml --tag job:k8s --tag source:k8s -- kubectl get "
            "all");
  auto expire = Steps(p, "expire");
  ASSERT_EQ(expire.size(), 2u);  // every repository
  EXPECT_EQ(expire[1].Display(),
            "lifeboat --repo s3://bucket/two --password-file /etc/lifeboat/pw2 --json pg "
            "wal-expire --source main --retention 7d");
  auto tidy = Steps(p, "tidy");
  ASSERT_EQ(tidy.size(), 2u);
  EXPECT_EQ(tidy[0].Display(),
            "lifeboat --repo /srv/one --key-file /etc/lifeboat/key --json forget --keep-within 7d "
            "--tag source:up");
  auto dr = Steps(p, "dr");
  ASSERT_EQ(dr.size(), 1u);
  EXPECT_EQ(dr[0].Display(),
            "lifeboat --repo s3://bucket/two --password-file /etc/lifeboat/pw2 --json copy --from "
            "/srv/one --from-key-file /etc/lifeboat/key");
  auto chk = Steps(p, "chk");
  ASSERT_EQ(chk.size(), 2u);
  EXPECT_EQ(chk[0].args.back(), "10%");
}

TEST(JobStepsTest, TagsName) {
  EXPECT_EQ(JobTag("pg-full"), "job:pg-full");
  EXPECT_EQ(SourceTag("db"), "source:db");
}

}  // namespace
}  // namespace lb::ops
