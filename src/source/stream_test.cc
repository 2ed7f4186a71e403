// Stream snapshots (command output) against a posix repository in a temp dir: round trips,
// failing and killed commands that must leave no snapshot, bounded memory for a large stream,
// deduplication across runs, and the child-process plumbing underneath.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "repo/snapshot.h"
#include "source/files_restore.h"
#include "source/stream_backup.h"
#include "storage/storage.h"

namespace lb::source {
namespace {

namespace fs = std::filesystem;

std::string ReadWhole(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

// Peak resident set size of this process in KiB (VmHWM).
uint64_t PeakRssKiB() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6));
  return 0;
}

// Resets VmHWM to the current RSS (Linux >= 4.0); harmless where unsupported.
void ResetPeakRss() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
}

bool SameFiles(const fs::path& a, const fs::path& b) {
  std::ifstream fa(a, std::ios::binary), fb(b, std::ios::binary);
  std::vector<char> ba(1 << 20), bb(1 << 20);
  while (true) {
    fa.read(ba.data(), std::streamsize(ba.size()));
    fb.read(bb.data(), std::streamsize(bb.size()));
    if (fa.gcount() != fb.gcount()) return false;
    if (fa.gcount() == 0) return true;
    if (std::memcmp(ba.data(), bb.data(), size_t(fa.gcount())) != 0) return false;
  }
}

class StreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv("LIFEBOAT_TEST_FAST_KDF", "1", 1);
    dir_ = fs::temp_directory_path() /
           ("lb-stream-test-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    setenv("LIFEBOAT_CACHE_DIR", (dir_ / "cache").c_str(), 1);
    auto st = storage::OpenStorage((dir_ / "repo").string(), true);
    ASSERT_TRUE(st.ok());
    ASSERT_TRUE(repo::Repository::Init(**st, "pw").ok());
    repo_ = Open();
  }
  void TearDown() override {
    repo_.reset();
    fs::remove_all(dir_);
  }
  std::unique_ptr<repo::Repository> Open() {
    auto st = storage::OpenStorage((dir_ / "repo").string());
    auto r = repo::Repository::Open(std::move(*st), "pw");
    EXPECT_TRUE(r.ok());
    return std::move(*r);
  }
  Result<StreamBackupResult> Backup(std::vector<StreamCommand> streams) {
    StreamBackupOptions opts;
    opts.streams = std::move(streams);
    opts.source = "test";
    return BackupCommands(*repo_, opts);
  }
  Result<StreamBackupResult> Backup(const std::string& name, std::vector<std::string> argv) {
    return Backup({StreamCommand{.name = name, .argv = std::move(argv)}});
  }
  size_t SnapshotCount() {
    auto all = repo::ListSnapshots(*Open());
    EXPECT_TRUE(all.ok());
    return all.ok() ? all->size() : 0;
  }
  // Writes `file` of the snapshot into dir_/name and returns the local path.
  fs::path DumpTo(const repo::Snapshot& snap, const std::string& file, const std::string& name) {
    auto r = Open();
    auto node = FindSnapshotFile(*r, snap, file);
    EXPECT_TRUE(node.ok()) << node.status().ToString();
    fs::path out = dir_ / name;
    int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    EXPECT_GE(fd, 0);
    if (node.ok()) {
      auto n = WriteFileContent(*r, *node, fd);
      EXPECT_TRUE(n.ok()) << n.status().ToString();
      if (n.ok()) {
        EXPECT_EQ(*n, node->size);
      }
    }
    ::close(fd);
    return out;
  }

  fs::path dir_;
  std::unique_ptr<repo::Repository> repo_;
};

std::string Seq(int n) {
  std::string s;
  for (int i = 1; i <= n; ++i) s += std::to_string(i) + "\n";
  return s;
}

TEST_F(StreamTest, CommandOutputRoundTrips) {
  auto res = Backup("numbers.out", {"sh", "-c", "seq 1 200000"});
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  std::string want = Seq(200000);
  EXPECT_EQ(res->bytes_total, want.size());
  EXPECT_EQ(res->snapshot.kind, "command");
  EXPECT_EQ(res->snapshot.source, "test");
  EXPECT_EQ(res->snapshot.paths, std::vector<std::string>{"/numbers.out"});
  EXPECT_EQ(res->snapshot.extra["streams"][0]["command"], "sh -c seq 1 200000");

  auto snap = repo::FindSnapshot(*Open(), res->snapshot.id.Hex());
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(ReadWhole(DumpTo(*snap, "", "out1")), want);          // the only file
  EXPECT_EQ(ReadWhole(DumpTo(*snap, "/numbers.out", "out2")), want);

  // The generic restore sees an ordinary tree with one file.
  auto r = Open();
  FileRestoreOptions ro;
  ro.target = (dir_ / "restored").string();
  auto restored = RestoreFiles(*r, *snap, ro);
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  EXPECT_EQ(restored->files, 1u);
  EXPECT_EQ(ReadWhole(dir_ / "restored" / "numbers.out"), want);
}

TEST_F(StreamTest, EmptyOutputIsAnEmptyFile) {
  auto res = Backup("empty", {"true"});
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->bytes_total, 0u);
  EXPECT_EQ(ReadWhole(DumpTo(res->snapshot, "empty", "out")), "");
}

TEST_F(StreamTest, FailingCommandWritesNoSnapshot) {
  auto res = Backup("x.out", {"sh", "-c", "seq 1 100000; echo 'it went wrong' >&2; exit 3"});
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().code(), Code::kFailedPrecondition);
  const std::string& msg = res.status().message();
  EXPECT_NE(msg.find("exited with status 3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("no snapshot was written"), std::string::npos) << msg;
  EXPECT_NE(msg.find("it went wrong"), std::string::npos) << msg;
  EXPECT_EQ(SnapshotCount(), 0u);
}

TEST_F(StreamTest, KilledCommandWritesNoSnapshot) {
  auto res = Backup("x.out", {"sh", "-c", "echo partial; kill -9 $$"});
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(res.status().message().find("killed by signal 9 (SIGKILL)"), std::string::npos)
      << res.status().message();
  EXPECT_EQ(SnapshotCount(), 0u);
}

TEST_F(StreamTest, MissingProgramWritesNoSnapshot) {
  auto res = Backup("x.out", {"/nonexistent/lifeboat-no-such-program", "--flag"});
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(res.status().message().find("cannot run command"), std::string::npos);
  EXPECT_EQ(SnapshotCount(), 0u);
}

TEST_F(StreamTest, OneFailingStreamOfSeveralWritesNoSnapshot) {
  auto res = Backup({StreamCommand{.name = "a", .argv = {"sh", "-c", "echo a"}},
                     StreamCommand{.name = "b", .argv = {"sh", "-c", "exit 1"},
                                   .display = "secret-free name"}});
  ASSERT_FALSE(res.ok());
  EXPECT_NE(res.status().message().find("command 'secret-free name' exited with status 1"),
            std::string::npos)
      << res.status().message();
  EXPECT_EQ(SnapshotCount(), 0u);
}

TEST_F(StreamTest, SeveralStreamsInOneSnapshot) {
  auto res = Backup({StreamCommand{.name = "db.dump", .argv = {"sh", "-c", "seq 1 50000"}},
                     StreamCommand{.name = "globals.sql", .argv = {"echo", "CREATE ROLE app;"}}});
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  ASSERT_EQ(res->streams.size(), 2u);
  EXPECT_EQ(ReadWhole(DumpTo(res->snapshot, "db.dump", "o1")), Seq(50000));
  EXPECT_EQ(ReadWhole(DumpTo(res->snapshot, "globals.sql", "o2")), "CREATE ROLE app;\n");
  auto r = Open();
  auto none = FindSnapshotFile(*r, res->snapshot, "");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), Code::kInvalidArgument);
  EXPECT_NE(none.status().message().find("'globals.sql'"), std::string::npos);
  auto missing = FindSnapshotFile(*r, res->snapshot, "nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Code::kNotFound);

  EXPECT_FALSE(Backup({StreamCommand{.name = "a", .argv = {"true"}},
                       StreamCommand{.name = "a", .argv = {"true"}}})
                   .ok());
  EXPECT_FALSE(Backup("a/b", {"true"}).ok());
}

TEST_F(StreamTest, LargeStreamStaysBoundedInMemory) {
  const uint64_t kSize = 50ull << 20;
  fs::path ref = dir_ / "reference";
  std::string script = "head -c " + std::to_string(kSize) + " /dev/urandom | tee '" +
                       ref.string() + "'";
  ResetPeakRss();
  uint64_t before = PeakRssKiB();
  auto res = Backup("random.bin", {"sh", "-c", script});
  uint64_t after_backup = PeakRssKiB();
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->bytes_total, kSize);
  // Sanitizers keep freed memory in quarantine: RSS says nothing about our bound there.
  if (!kSanitized) {
    EXPECT_LT(after_backup - before, 100u << 10)
        << "backup peak RSS grew by " << (after_backup - before) << " KiB";
  }
  EXPECT_GT(res->snapshot.extra["streams"][0]["bytes"].get<uint64_t>(), 0u);

  ResetPeakRss();
  before = PeakRssKiB();
  fs::path out = DumpTo(res->snapshot, "", "random.out");
  uint64_t after_dump = PeakRssKiB();
  if (!kSanitized) {
    EXPECT_LT(after_dump - before, 100u << 10)
        << "dump peak RSS grew by " << (after_dump - before) << " KiB";
  }
  EXPECT_EQ(fs::file_size(out), kSize);
  EXPECT_TRUE(SameFiles(out, ref));
}

TEST_F(StreamTest, SecondRunStoresAlmostNothing) {
  auto first = Backup("n.out", {"sh", "-c", "seq 1 300000"});
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_GT(first->writer.bytes_new_raw, 1000000u);
  auto second = Backup("n.out", {"sh", "-c", "seq 1 300000"});
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  // Only the root tree (its mtime differs) is new.
  EXPECT_LT(second->writer.bytes_new_raw, 4096u);
  EXPECT_LE(second->writer.blobs_new, 1u);
  EXPECT_EQ(SnapshotCount(), 2u);
}

TEST_F(StreamTest, StderrTailIsBounded) {
  auto child = ChildProcess::Start(
      {"sh", "-c", "i=0; while [ $i -lt 20000 ]; do echo \"warning line $i\"; i=$((i+1)); done >&2; exit 1"},
      ChildOptions{.stdout_mode = ChildOptions::Output::kNull, .stderr_keep = 4096});
  ASSERT_TRUE(child.ok());
  Status s = (*child)->Wait();
  EXPECT_EQ(s.code(), Code::kFailedPrecondition);
  EXPECT_EQ((*child)->exit_code(), 1);
  std::string tail = (*child)->StderrTail();
  EXPECT_EQ(tail.size(), 4096u);
  EXPECT_NE(tail.find("warning line 19999\n"), std::string::npos);
  EXPECT_EQ(LastLines(tail, 2), "  warning line 19998\n  warning line 19999");
}

TEST_F(StreamTest, WaitDoesNotHangOnABackgroundGrandchild) {
  // The grandchild keeps the stderr pipe open for a while; Wait returns when the child ends.
  auto t0 = std::chrono::steady_clock::now();
  auto child = ChildProcess::Start({"sh", "-c", "echo bye >&2; sleep 3 >/dev/null & exit 0"},
                                   ChildOptions{.stdout_mode = ChildOptions::Output::kNull});
  ASSERT_TRUE(child.ok());
  EXPECT_TRUE((*child)->Wait().ok());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  EXPECT_EQ((*child)->StderrTail(), "bye\n");
}

TEST_F(StreamTest, FileContentStreamsIntoAChildsStdin) {
  auto res = Backup("n.out", {"sh", "-c", "seq 1 100000"});
  ASSERT_TRUE(res.ok());
  auto r = Open();
  auto node = FindSnapshotFile(*r, res->snapshot, "");
  ASSERT_TRUE(node.ok());
  fs::path out = dir_ / "from-stdin";
  auto child = ChildProcess::Start({"sh", "-c", "cat > \"$0\"", out.string()},
                                   ChildOptions{.stdin_mode = ChildOptions::Input::kPipe,
                                                .stdout_mode = ChildOptions::Output::kNull});
  ASSERT_TRUE(child.ok());
  auto n = WriteFileContent(*r, *node, (*child)->stdin_fd());
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_TRUE((*child)->Wait().ok());
  EXPECT_EQ(ReadWhole(out), Seq(100000));
}

TEST_F(StreamTest, ChildThatStopsReadingGivesAnIoError) {
  auto res = Backup("big", {"sh", "-c", "seq 1 2000000"});
  ASSERT_TRUE(res.ok());
  auto r = Open();
  auto node = FindSnapshotFile(*r, res->snapshot, "");
  ASSERT_TRUE(node.ok());
  signal(SIGPIPE, SIG_IGN);  // as lifeboat's main does
  auto child = ChildProcess::Start({"sh", "-c", "exit 4"},
                                   ChildOptions{.stdin_mode = ChildOptions::Input::kPipe});
  ASSERT_TRUE(child.ok());
  auto n = WriteFileContent(*r, *node, (*child)->stdin_fd());
  EXPECT_FALSE(n.ok());
  EXPECT_EQ(n.status().code(), Code::kIo);
  Status s = (*child)->Wait();
  EXPECT_NE(s.message().find("exited with status 4"), std::string::npos);
}

}  // namespace
}  // namespace lb::source
