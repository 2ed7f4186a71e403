// The job history database: runs and their ends, statistics, the last slots, and what
// survives a restart (a run left running becomes interrupted).
#include "ops/history.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

namespace lb::ops {
namespace {

class HistoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/lifeboat-history-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/sub/history.db";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_, path_;
};

TEST_F(HistoryTest, RecordsRunsAndSurvivesRestart) {
  {
    auto h = History::Open(path_);
    ASSERT_TRUE(h.ok()) << h.status().ToString();
    auto id1 = (*h)->Begin("pg-full", 1000, 1000.5, 1);
    ASSERT_TRUE(id1.ok());
    JobRunOutcome ok{.result = RunResult::kOk,
                     .exit_code = 0,
                     .bytes = 42,
                     .snapshot = "abcd",
                     .error = "",
                     .log = "$ lifeboat ...\n",
                     .seconds = 2};
    ASSERT_TRUE((*h)->Finish(*id1, ok, 1002.5).ok());
    auto id2 = (*h)->Begin("pg-full", 2000, 2000, 1);
    JobRunOutcome bad{.result = RunResult::kFailed,
                      .exit_code = 11,
                      .bytes = 0,
                      .snapshot = "",
                      .error = "connection refused",
                      .log = "",
                      .seconds = 1};
    ASSERT_TRUE((*h)->Finish(*id2, bad, 2001).ok());
    ASSERT_TRUE((*h)->Begin("files", 3000, 3000, 2).ok());  // still running when we "crash"
    ASSERT_TRUE((*h)->SetLastSlot("pg-full", 2000).ok());
    ASSERT_TRUE((*h)->SetLastSlot("pg-full", 3000).ok());
    ASSERT_TRUE((*h)->SetLastSlot("files", 2500).ok());
    auto st = (*h)->Stats("pg-full");
    ASSERT_TRUE(st.ok());
    EXPECT_EQ(st->runs, 2u);
    EXPECT_EQ(st->failures, 1u);
    ASSERT_TRUE(st->last.has_value());
    EXPECT_EQ(st->last->result, RunResult::kFailed);
    EXPECT_EQ(st->last->error, "connection refused");
    ASSERT_TRUE(st->last_success.has_value());
    EXPECT_EQ(st->last_success->bytes, 42u);
    EXPECT_EQ(st->last_success->snapshot, "abcd");
    EXPECT_DOUBLE_EQ(st->last_success->ended - st->last_success->started, 2.0);
    auto log = (*h)->Log(*id1);
    ASSERT_TRUE(log.ok());
    EXPECT_EQ(*log, "$ lifeboat ...\n");
    auto files = (*h)->Stats("files");
    ASSERT_TRUE(files.ok());
    EXPECT_TRUE(files->running.has_value());
  }
  // A reader sees it all without changing anything.
  {
    auto r = History::Open(path_, false);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    auto files = (*r)->Stats("files");
    ASSERT_TRUE(files.ok());
    EXPECT_TRUE(files->running.has_value());
  }
  auto h = History::Open(path_);
  ASSERT_TRUE(h.ok());
  auto slots = (*h)->LastSlots();
  ASSERT_TRUE(slots.ok());
  EXPECT_EQ(*slots, (std::map<std::string, plan::UnixSeconds>{{"files", 2500}, {"pg-full", 3000}}));
  auto files = (*h)->Stats("files");
  ASSERT_TRUE(files.ok());
  EXPECT_FALSE(files->running.has_value());
  ASSERT_TRUE(files->last.has_value());
  EXPECT_EQ(files->last->result, RunResult::kInterrupted);
  EXPECT_EQ(files->last->attempt, 2);
  auto recent = (*h)->Recent("", 10);
  ASSERT_TRUE(recent.ok());
  ASSERT_EQ(recent->size(), 3u);
  EXPECT_EQ((*recent)[0].job, "files");  // newest first
  auto failures = (*h)->RecentFailures(10);
  ASSERT_TRUE(failures.ok());
  EXPECT_EQ(failures->size(), 2u);
}

TEST_F(HistoryTest, ReaderOfAMissingDatabase) {
  auto r = History::Open(path_, false);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kNotFound);
}

TEST(HistoryPathTest, Defaults) {
  plan::Plan p;
  p.daemon.history = "/var/lib/lifeboat/h.db";
  EXPECT_EQ(DefaultHistoryPath(p), "/var/lib/lifeboat/h.db");
  p.daemon.history.clear();
  p.audit.log = "/var/log/lifeboat/audit.log";
  EXPECT_EQ(DefaultHistoryPath(p), "/var/log/lifeboat/lifeboat-history.db");
  p.audit.log.clear();
  setenv("XDG_STATE_HOME", "/state", 1);
  EXPECT_EQ(DefaultHistoryPath(p), "/state/lifeboat/history.db");
  unsetenv("XDG_STATE_HOME");
}

}  // namespace
}  // namespace lb::ops
