// File-tree backup and restore against a posix repository in a temp dir.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>

#include "repo/check.h"
#include "repo/repository.h"
#include "repo/snapshot.h"
#include "source/files_backup.h"
#include "source/files_restore.h"
#include "source/tree_walk.h"
#include "storage/storage.h"

namespace lb::source {
namespace {

namespace fs = std::filesystem;

void WriteFile(const fs::path& p, const std::string& data) {
  std::ofstream(p, std::ios::binary) << data;
}

std::string RandomData(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = char(rng());
  return s;
}

struct Entry {
  mode_t mode;
  uid_t uid;
  gid_t gid;
  off_t size;
  int64_t mtime_ns;
  nlink_t nlink;
  std::string content;  // file content or link target
  dev_t rdev;
  blkcnt_t blocks;
};

// Every entry under `root` by relative path, with what a restore must reproduce.
std::map<std::string, Entry> Scan(const fs::path& root) {
  std::map<std::string, Entry> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    struct stat st {};
    EXPECT_EQ(lstat(it->path().c_str(), &st), 0);
    Entry e{st.st_mode, st.st_uid, st.st_gid, S_ISDIR(st.st_mode) ? 0 : st.st_size,
            int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec, st.st_nlink, "",
            st.st_rdev, st.st_blocks};
    if (S_ISREG(st.st_mode)) {
      std::ifstream in(it->path(), std::ios::binary);
      e.content.assign(std::istreambuf_iterator<char>(in), {});
    } else if (S_ISLNK(st.st_mode)) {
      e.content = fs::read_symlink(it->path()).string();
    }
    out[fs::relative(it->path(), root).string()] = e;
  }
  return out;
}

class FilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv("LIFEBOAT_TEST_FAST_KDF", "1", 1);
    dir_ = fs::temp_directory_path() /
           ("lb-files-test-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "src");
    setenv("LIFEBOAT_CACHE_DIR", (dir_ / "cache").c_str(), 1);
    auto st = storage::OpenStorage((dir_ / "repo").string(), true);
    ASSERT_TRUE(st.ok());
    ASSERT_TRUE(repo::Repository::Init(**st, "pw").ok());
  }
  void TearDown() override {
    // Restored trees may hold read-only directories.
    std::error_code ec;
    for (auto& p : fs::recursive_directory_iterator(dir_, ec))
      if (p.is_directory() && !p.is_symlink()) chmod(p.path().c_str(), 0700);
    fs::remove_all(dir_);
  }
  std::unique_ptr<repo::Repository> Open() {
    auto st = storage::OpenStorage((dir_ / "repo").string());
    auto r = repo::Repository::Open(std::move(*st), "pw");
    EXPECT_TRUE(r.ok());
    return std::move(*r);
  }
  fs::path src() { return dir_ / "src"; }

  // A tree with every kind of entry the issue lists.
  void MakeTree() {
    fs::create_directories(src() / "uploads/2026/11");
    fs::create_directories(src() / "empty dir");
    WriteFile(src() / "uploads/2026/11/photo.jpg", RandomData(3 << 20, 1));
    std::string pdf;
    for (int i = 0; i < 20000; ++i) pdf += "invoice line " + std::to_string(i % 50) + "\n";
    WriteFile(src() / "invoice.pdf", pdf);
    WriteFile(src() / "name with spaces.txt", "spaces");
    WriteFile(src() / "new\nline", "newline");
    WriteFile(src() / std::string("bad\xff\xfe utf8"), "invalid utf-8");
    WriteFile(src() / "empty", "");
    fs::create_symlink("invoice.pdf", src() / "link");
    fs::create_symlink("/nonexistent/target", src() / "dangling");
    fs::create_hard_link(src() / "invoice.pdf", src() / "hardlink.pdf");
    ASSERT_EQ(mkfifo((src() / "fifo").c_str(), 0640), 0);
    // Sparse: 64 MiB with data at 1 MiB and at the end.
    int fd = ::open((src() / "sparse.img").c_str(), O_CREAT | O_WRONLY, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(pwrite(fd, "data", 4, 1 << 20), 4);
    ASSERT_EQ(pwrite(fd, "tail", 4, (64 << 20) - 4), 4);
    ::close(fd);
    chmod((src() / "invoice.pdf").c_str(), 0640);
    chmod((src() / "uploads").c_str(), 0750);
    if (geteuid() == 0) {
      ASSERT_EQ(lchown((src() / "invoice.pdf").c_str(), 1234, 5678), 0);
      ASSERT_EQ(lchown((src() / "link").c_str(), 4321, 8765), 0);
      ASSERT_EQ(mknod((src() / "chardev").c_str(), S_IFCHR | 0600, makedev(1, 3)), 0);
    }
    struct timespec t[2] = {{1600000000, 123456789}, {1600000000, 123456789}};
    utimensat(AT_FDCWD, (src() / "empty").c_str(), t, 0);
    utimensat(AT_FDCWD, (src() / "link").c_str(), t, AT_SYMLINK_NOFOLLOW);
    utimensat(AT_FDCWD, (src() / "empty dir").c_str(), t, 0);
  }

  fs::path dir_;
};

TEST_F(FilesTest, RoundTripPreservesEveryKindOfEntry) {
  MakeTree();
  auto r = Open();
  FileBackupOptions opts;
  opts.paths = {src().string()};
  auto res = BackupFiles(*r, opts);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_TRUE(res->errors.empty());

  auto r2 = Open();
  auto snap = repo::FindSnapshot(*r2, "latest");
  ASSERT_TRUE(snap.ok());
  FileRestoreOptions ro;
  ro.target = (dir_ / "out").string();
  auto rr = RestoreFiles(*r2, *snap, ro);
  ASSERT_TRUE(rr.ok()) << rr.status().ToString();
  EXPECT_TRUE(rr->damaged.empty());
  EXPECT_TRUE(rr->errors.empty()) << rr->errors[0];

  auto want = Scan(src());
  auto got = Scan(dir_ / "out" / src().relative_path());
  ASSERT_EQ(want.size(), got.size());
  for (const auto& [path, w] : want) {
    SCOPED_TRACE(path);
    ASSERT_TRUE(got.count(path));
    const Entry& g = got[path];
    EXPECT_EQ(g.mode, w.mode);
    EXPECT_EQ(g.size, w.size);
    EXPECT_EQ(g.content, w.content);
    EXPECT_EQ(g.mtime_ns, w.mtime_ns);
    EXPECT_EQ(g.nlink, w.nlink);
    EXPECT_EQ(g.rdev, w.rdev);
    if (geteuid() == 0) {
      EXPECT_EQ(g.uid, w.uid);
      EXPECT_EQ(g.gid, w.gid);
    }
  }
  // Sparse stays sparse: far fewer blocks than 64 MiB.
  EXPECT_LT(got["sparse.img"].blocks * 512, 4 << 20);
}

TEST_F(FilesTest, UnchangedFilesAreNotReadAgain) {
  MakeTree();
  auto r = Open();
  FileBackupOptions opts;
  opts.paths = {src().string()};
  auto first = BackupFiles(*r, opts);
  ASSERT_TRUE(first.ok());
  EXPECT_GT(first->bytes_read, 3u << 20);
  auto second = BackupFiles(*r, opts);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->bytes_read, 0u);
  EXPECT_EQ(second->files_unchanged, second->files);
  // The tree of the backed-up directory is identical (directories above it, such as the
  // temp dir, may change meanwhile).
  auto subtree_of = [&](const crypto::Id& root) {
    crypto::Id id;
    EXPECT_TRUE(WalkTree(*r, root, src().string(), [&](const std::string& p, const repo::Node& n) {
      if (p == src().string()) id = n.subtree;
      return Status::Ok();
    }).ok());
    return id;
  };
  EXPECT_EQ(subtree_of(second->snapshot.tree), subtree_of(first->snapshot.tree));
  EXPECT_FALSE(subtree_of(first->snapshot.tree).IsZero());
  // One changed file is read again, and only it.
  WriteFile(src() / "name with spaces.txt", "changed!");
  auto third = BackupFiles(*r, opts);
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(third->bytes_read, 8u);
  int changes = 0;
  ASSERT_TRUE(DiffTrees(*r, second->snapshot.tree, third->snapshot.tree,
                        [&](Change c, const std::string& p, const repo::Node*) {
                          if (c == Change::kModified) {
                            EXPECT_NE(p.find("name with spaces.txt"), std::string::npos);
                            ++changes;
                          }
                        }).ok());
  EXPECT_EQ(changes, 1);
}

TEST_F(FilesTest, VanishedFileIsReportedAndLeftOut) {
  WriteFile(src() / "keep", "keep");
  WriteFile(src() / "gone", "gone");
  auto r = Open();
  FileBackupOptions opts;
  opts.paths = {src().string()};
  // The filter runs after the walker saw the file and before a worker opens it.
  opts.filter = [&](const std::string& p, const struct stat&) {
    if (p.size() >= 5 && p.substr(p.size() - 5) == "/gone") fs::remove(p);
    return true;
  };
  auto res = BackupFiles(*r, opts);
  ASSERT_TRUE(res.ok());
  ASSERT_EQ(res->errors.size(), 1u);
  EXPECT_NE(res->errors[0].find("vanished"), std::string::npos);
  std::vector<std::string> names;
  ASSERT_TRUE(WalkTree(*r, res->snapshot.tree, src().string(),
                       [&](const std::string& p, const repo::Node&) {
                         names.push_back(p);
                         return Status::Ok();
                       }).ok());
  ASSERT_EQ(names.size(), 2u);  // the directory itself and "keep"
  EXPECT_NE(names[1].find("keep"), std::string::npos);
}

TEST_F(FilesTest, ExcludeAndIncludeSelectEntries) {
  MakeTree();
  auto r = Open();
  FileBackupOptions opts;
  opts.paths = {src().string()};
  opts.excludes = {"*.jpg", "fifo"};
  auto res = BackupFiles(*r, opts);
  ASSERT_TRUE(res.ok());
  FileRestoreOptions ro;
  ro.target = (dir_ / "out").string();
  ro.includes = {(src() / "uploads").string(), (src() / "empty").string()};
  auto rr = RestoreFiles(*r, res->snapshot, ro);
  ASSERT_TRUE(rr.ok());
  fs::path base = dir_ / "out" / src().relative_path();
  EXPECT_TRUE(fs::exists(base / "uploads/2026/11"));
  EXPECT_FALSE(fs::exists(base / "uploads/2026/11/photo.jpg"));
  EXPECT_TRUE(fs::exists(base / "empty"));
  EXPECT_FALSE(fs::exists(base / "invoice.pdf"));
}

TEST_F(FilesTest, DamagedSnapshotRestoresTheRestAndNamesTheDamage) {
  WriteFile(src() / "a", RandomData(100000, 2));
  WriteFile(src() / "b", RandomData(100000, 3));
  auto r = Open();
  FileBackupOptions opts;
  opts.paths = {src().string()};
  // Two separate backups so "a" and "b" land in different packs.
  FileBackupOptions only_a;
  only_a.paths = {(src() / "a").string()};
  auto res1 = BackupFiles(*r, only_a);
  ASSERT_TRUE(res1.ok());
  std::set<std::string> before;
  for (auto& e : fs::recursive_directory_iterator(dir_ / "repo/data"))
    if (e.is_regular_file()) before.insert(e.path().string());
  auto res = BackupFiles(*r, opts);
  ASSERT_TRUE(res.ok());
  // Damage the packs written by the first backup (they hold "a").
  for (const auto& p : before) {
    std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(50);
    f.put('\x55');
  }
  auto r2 = Open();
  FileRestoreOptions ro;
  ro.target = (dir_ / "out").string();
  auto rr = RestoreFiles(*r2, res->snapshot, ro);
  ASSERT_TRUE(rr.ok());
  ASSERT_EQ(rr->damaged.size(), 1u);
  EXPECT_NE(rr->damaged[0].find("/a"), std::string::npos);
  std::ifstream in(dir_ / "out" / src().relative_path() / "b", std::ios::binary);
  std::string b((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(b, RandomData(100000, 3));
}

}  // namespace
}  // namespace lb::source
