// The storage conformance suite (every driver must pass it), plus tests of what only the
// posix driver, the url registry and the fault-injecting decorator promise.
#include "storage/storage.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <latch>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "storage/fake_s3_server.h"
#include "storage/fault_storage.h"
#include "storage/memory_storage.h"
#include "storage/posix_storage.h"
#include "storage/s3_storage.h"

namespace lb::storage {
namespace {

namespace fs = std::filesystem;

const Status& StatusOf(const Status& s) { return s; }
template <typename T>
const Status& StatusOf(const Result<T>& r) {
  return r.status();
}

#define ASSERT_OK(expr)                                                \
  do {                                                                 \
    const auto& lb_st_ = (expr);                                       \
    ASSERT_TRUE(StatusOf(lb_st_).ok()) << StatusOf(lb_st_).ToString(); \
  } while (0)
#define EXPECT_OK(expr)                                                \
  do {                                                                 \
    const auto& lb_st_ = (expr);                                       \
    EXPECT_TRUE(StatusOf(lb_st_).ok()) << StatusOf(lb_st_).ToString(); \
  } while (0)
#define EXPECT_CODE(expr, want)                                                \
  do {                                                                         \
    const auto& lb_st_ = (expr);                                               \
    EXPECT_EQ(StatusOf(lb_st_).code(), (want)) << StatusOf(lb_st_).ToString(); \
  } while (0)

// Deterministic bytes that differ at every offset, so a misplaced range is noticed.
Bytes Pattern(size_t size, uint32_t seed) {
  Bytes out(size);
  uint32_t x = seed * 2654435761u + 1;
  for (auto& b : out) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    b = static_cast<uint8_t>(x);
  }
  return out;
}

Bytes B(std::string_view s) { return Bytes(s.begin(), s.end()); }

// name -> size of every object under `prefix`.
Result<std::map<std::string, uint64_t>> ListAll(Storage& storage, std::string_view prefix) {
  std::map<std::string, uint64_t> out;
  Status s = storage.List(prefix, [&](const ObjectInfo& info) {
    if (!out.emplace(info.name, info.size).second) {
      return Err(Code::kInternal, "'{}' listed twice", info.name);
    }
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return out;
}

std::vector<std::string> Names(const std::map<std::string, uint64_t>& listing) {
  std::vector<std::string> out;
  for (const auto& [name, size] : listing) out.push_back(name);
  return out;
}

// A fresh directory under $TMPDIR, removed with everything in it when destroyed.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/lb-storage-test-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    path_ = tmpl;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// ---------------------------------------------------------------------------------------
// Conformance suite: runs once per driver.

struct Driver {
  // Whatever else the storage needs alive (a fake server), of any type: shared_ptr<void>
  // because it erases the type and still destroys it right. Declared first, destroyed last.
  std::shared_ptr<void> fixture = {};
  std::unique_ptr<Storage> inner;  // what a decorator wraps; must outlive `storage`
  std::unique_ptr<Storage> storage;
  std::string skip = {};  // when set, the case cannot run here and says why (GTEST_SKIP)
  // Removes what the test left behind in shared places (an S3 bucket); may be empty.
  std::function<void()> cleanup = {};
};

struct DriverCase {
  std::string name;
  Driver (*make)(const std::string& scratch_dir);
};

// Names the case in failure messages instead of dumping its bytes.
void PrintTo(const DriverCase& c, std::ostream* os) { *os << c.name; }

Driver MakePosix(const std::string& scratch_dir) {
  auto opened = OpenStorage(scratch_dir + "/repo", /*create=*/true);
  if (!opened.ok()) return {};
  return {.fixture = nullptr, .inner = nullptr, .storage = std::move(opened).value()};
}
Driver MakeMemory(const std::string&) {
  return {.fixture = nullptr, .inner = nullptr, .storage = std::make_unique<MemoryStorage>()};
}
// A FaultStorage without rules must be invisible.
Driver MakeFaultPassthrough(const std::string&) {
  Driver d{.fixture = nullptr, .inner = std::make_unique<MemoryStorage>(), .storage = nullptr};
  d.storage = std::make_unique<FaultStorage>(*d.inner);
  return d;
}

// A real S3 bucket, from the variables tests/s3/rgw.py exports (or any S3 service):
// LIFEBOAT_TEST_S3_BUCKET plus AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
// AWS_REGION. Each test gets a fresh random prefix, emptied afterwards.
Driver MakeS3(const std::string&) {
  const char* bucket = std::getenv("LIFEBOAT_TEST_S3_BUCKET");
  if (bucket == nullptr || *bucket == '\0') {
    return {.fixture = nullptr,
            .inner = nullptr,
            .storage = nullptr,
            .skip = "LIFEBOAT_TEST_S3_BUCKET is not set; run under tests/s3/rgw.py (ctest -L s3)"};
  }
  std::random_device rd;
  const std::string url =
      fmt::format("s3://{}/lifeboat-test/{:08x}{:08x}", bucket, rd(), rd());
  auto opened = OpenStorage(url);
  if (!opened.ok()) {
    ADD_FAILURE() << opened.status().ToString();
    return {};
  }
  Driver d{.fixture = nullptr, .inner = nullptr, .storage = std::move(opened).value()};
  Storage* s3 = d.storage.get();
  d.cleanup = [s3] {
    std::vector<std::string> names;
    Status listed = s3->List("", [&](const ObjectInfo& info) {
      names.push_back(info.name);
      return Status::Ok();
    });
    EXPECT_TRUE(listed.ok()) << listed.ToString();
    for (const std::string& name : names) (void)s3->Remove(name);
  };
  return d;
}

// The s3 driver against FakeS3Server: runs everywhere, with no real server.
Driver MakeS3Fake(const std::string&) {
  auto server = FakeS3Server::Start({});
  if (!server.ok()) {
    ADD_FAILURE() << server.status().ToString();
    return {};
  }
  S3Options options{.bucket = (*server)->options().bucket,
                    .prefix = "repo/one",
                    .endpoint = (*server)->endpoint(),
                    .region = "us-east-1",
                    .style = S3AddressingStyle::kPath};
  options.credentials = AwsCredentials((*server)->options().access_key_id,
                                       (*server)->options().secret_access_key);
  options.retry.base_delay = std::chrono::milliseconds(1);
  auto s3 = S3Storage::Open(std::move(options));
  if (!s3.ok()) {
    ADD_FAILURE() << s3.status().ToString();
    return {};
  }
  return {.fixture = std::shared_ptr<FakeS3Server>(std::move(server).value()),
          .inner = nullptr,
          .storage = std::move(s3).value()};
}

class StorageConformance : public testing::TestWithParam<DriverCase> {
 protected:
  void SetUp() override {
    driver_ = GetParam().make(scratch_.path());
    if (!driver_.skip.empty()) GTEST_SKIP() << driver_.skip;
    ASSERT_NE(driver_.storage, nullptr);
  }
  void TearDown() override {
    if (driver_.cleanup) driver_.cleanup();
  }
  Storage& storage() { return *driver_.storage; }

  TempDir scratch_;
  Driver driver_;
};

TEST_P(StorageConformance, PutThenGetReturnsTheBytes) {
  ASSERT_OK(storage().Put("data/ab/ab12", AsBytes("hello")));
  auto got = storage().Get("data/ab/ab12");
  ASSERT_OK(got);
  EXPECT_EQ(*got, B("hello"));
}

TEST_P(StorageConformance, EmptyObject) {
  ASSERT_OK(storage().Put("empty", {}));
  auto got = storage().Get("empty");
  ASSERT_OK(got);
  EXPECT_TRUE(got->empty());
  auto info = storage().Stat("empty");
  ASSERT_OK(info);
  EXPECT_EQ(info->size, 0u);
  auto range = storage().GetRange("empty", 0, 0);
  ASSERT_OK(range);
  EXPECT_TRUE(range->empty());
  EXPECT_CODE(storage().GetRange("empty", 0, 1), Code::kCorruption);
}

TEST_P(StorageConformance, MultiMebibyteObject) {
  const Bytes data = Pattern((5u << 20) + 17, 1);
  ASSERT_OK(storage().Put("data/big", data));
  auto got = storage().Get("data/big");
  ASSERT_OK(got);
  EXPECT_TRUE(*got == data) << "got " << got->size() << " bytes";
  auto info = storage().Stat("data/big");
  ASSERT_OK(info);
  EXPECT_EQ(info->size, data.size());
  auto range = storage().GetRange("data/big", 3'000'001, 1'000'000);
  ASSERT_OK(range);
  EXPECT_TRUE(
      std::equal(range->begin(), range->end(), data.begin() + 3'000'001, data.begin() + 4'000'001));
}

TEST_P(StorageConformance, GetRange) {
  ASSERT_OK(storage().Put("obj", AsBytes("0123456789")));
  auto middle = storage().GetRange("obj", 3, 4);
  ASSERT_OK(middle);
  EXPECT_EQ(*middle, B("3456"));
  auto at_end = storage().GetRange("obj", 7, 3);
  ASSERT_OK(at_end);
  EXPECT_EQ(*at_end, B("789"));
  auto empty_at_end = storage().GetRange("obj", 10, 0);
  ASSERT_OK(empty_at_end);
  EXPECT_TRUE(empty_at_end->empty());

  EXPECT_CODE(storage().GetRange("obj", 8, 3), Code::kCorruption);
  EXPECT_CODE(storage().GetRange("obj", 11, 0), Code::kCorruption);
  EXPECT_CODE(storage().GetRange("obj", std::numeric_limits<uint64_t>::max(), 2),
              Code::kCorruption);
  EXPECT_CODE(storage().GetRange("obj", 2, std::numeric_limits<uint64_t>::max()),
              Code::kCorruption);
  auto past = storage().GetRange("obj", 8, 3);
  EXPECT_NE(past.status().message().find("short object"), std::string::npos)
      << past.status().ToString();
  EXPECT_CODE(storage().GetRange("missing", 0, 1), Code::kNotFound);
}

TEST_P(StorageConformance, StatReportsNameSizeAndTime) {
  ASSERT_OK(storage().Put("index/0f", Pattern(1234, 2)));
  auto info = storage().Stat("index/0f");
  ASSERT_OK(info);
  EXPECT_EQ(info->name, "index/0f");
  EXPECT_EQ(info->size, 1234u);
  EXPECT_GT(info->mtime_unix, 0);
  EXPECT_CODE(storage().Stat("index/10"), Code::kNotFound);
}

TEST_P(StorageConformance, ListByPrefix) {
  const std::map<std::string, uint64_t> objects = {
      {"data/aa/1", 1}, {"data/aa/2", 2}, {"data/ab/3", 3}, {"database", 4},
      {"index/x", 5},   {"keys/k", 6},    {"top", 7}};
  for (const auto& [name, size] : objects) ASSERT_OK(storage().Put(name, Pattern(size, 3)));

  auto all = ListAll(storage(), "");
  ASSERT_OK(all);
  EXPECT_EQ(*all, objects);

  using V = std::vector<std::string>;
  auto names = [&](std::string_view prefix) {
    auto listing = ListAll(storage(), prefix);
    EXPECT_OK(listing);
    return listing.ok() ? Names(*listing) : V{"<error>"};
  };
  EXPECT_EQ(names("data/"), (V{"data/aa/1", "data/aa/2", "data/ab/3"}));
  EXPECT_EQ(names("data/a"), (V{"data/aa/1", "data/aa/2", "data/ab/3"}));
  EXPECT_EQ(names("data/aa"), (V{"data/aa/1", "data/aa/2"}));
  EXPECT_EQ(names("data/aa/"), (V{"data/aa/1", "data/aa/2"}));
  EXPECT_EQ(names("data/aa/2"), (V{"data/aa/2"}));
  EXPECT_EQ(names("data"), (V{"data/aa/1", "data/aa/2", "data/ab/3", "database"}));
  EXPECT_EQ(names("d"), (V{"data/aa/1", "data/aa/2", "data/ab/3", "database"}));
  EXPECT_EQ(names("index/"), (V{"index/x"}));
  EXPECT_EQ(names("nothing/"), V{});
  EXPECT_EQ(names("data/zz"), V{});
  EXPECT_EQ(names("data/aa/3"), V{});
  EXPECT_EQ(names("top/"), V{});
}

TEST_P(StorageConformance, ListStopsAtFirstCallbackError) {
  for (int i = 0; i < 5; ++i) ASSERT_OK(storage().Put(fmt::format("data/{}", i), AsBytes("x")));
  int calls = 0;
  Status s = storage().List("data/", [&](const ObjectInfo&) {
    ++calls;
    return calls == 3 ? Err(Code::kCancelled, "stop here") : Status::Ok();
  });
  EXPECT_EQ(s.code(), Code::kCancelled);
  EXPECT_EQ(s.message(), "stop here");
  EXPECT_EQ(calls, 3);
}

TEST_P(StorageConformance, ListCallbackMayRemoveWhatItSees) {
  for (int i = 0; i < 5; ++i) ASSERT_OK(storage().Put(fmt::format("locks/{}", i), AsBytes("x")));
  int removed = 0;
  ASSERT_OK(storage().List("locks/", [&](const ObjectInfo& info) {
    ++removed;
    return storage().Remove(info.name);
  }));
  EXPECT_EQ(removed, 5);
  auto left = ListAll(storage(), "");
  ASSERT_OK(left);
  EXPECT_TRUE(left->empty());
}

TEST_P(StorageConformance, ExclusivePutNeverReplaces) {
  ASSERT_OK(storage().Put("locks/a", AsBytes("first"), {.exclusive = true}));
  EXPECT_CODE(storage().Put("locks/a", AsBytes("second"), {.exclusive = true}),
              Code::kAlreadyExists);
  auto got = storage().Get("locks/a");
  ASSERT_OK(got);
  EXPECT_EQ(*got, B("first"));
}

TEST_P(StorageConformance, PlainPutReplaces) {
  ASSERT_OK(storage().Put("config", AsBytes("old")));
  ASSERT_OK(storage().Put("config", AsBytes("newer content")));
  auto got = storage().Get("config");
  ASSERT_OK(got);
  EXPECT_EQ(*got, B("newer content"));
  auto info = storage().Stat("config");
  ASSERT_OK(info);
  EXPECT_EQ(info->size, 13u);
}

TEST_P(StorageConformance, Remove) {
  ASSERT_OK(storage().Put("snapshots/1", AsBytes("s")));
  ASSERT_OK(storage().Put("snapshots/2", AsBytes("s")));
  ASSERT_OK(storage().Remove("snapshots/1"));
  EXPECT_CODE(storage().Get("snapshots/1"), Code::kNotFound);
  EXPECT_CODE(storage().Stat("snapshots/1"), Code::kNotFound);
  auto left = ListAll(storage(), "snapshots/");
  ASSERT_OK(left);
  EXPECT_EQ(Names(*left), std::vector<std::string>{"snapshots/2"});
  EXPECT_CODE(storage().Remove("snapshots/1"), Code::kNotFound);
  EXPECT_CODE(storage().Remove("never/was"), Code::kNotFound);
}

TEST_P(StorageConformance, MissingObjectsAreNotFound) {
  ASSERT_OK(storage().Put("data/present", AsBytes("x")));
  EXPECT_CODE(storage().Get("data/absent"), Code::kNotFound);
  EXPECT_CODE(storage().Get("nodir/absent"), Code::kNotFound);
  EXPECT_CODE(storage().Get("data"), Code::kNotFound);  // a prefix, not an object
  EXPECT_CODE(storage().Stat("data"), Code::kNotFound);
  EXPECT_CODE(storage().Remove("data"), Code::kNotFound);
  EXPECT_CODE(storage().Get("data/present/below"), Code::kNotFound);
}

TEST_P(StorageConformance, RejectsInvalidNames) {
  for (std::string_view name :
       {"", "/abs", "a/", "a//b", ".", "./a", "a/../b", "..", ".tmp-x", "a/.tmp-1/b"}) {
    SCOPED_TRACE(name);
    EXPECT_CODE(storage().Put(name, AsBytes("x")), Code::kInvalidArgument);
    EXPECT_CODE(storage().Get(name), Code::kInvalidArgument);
    EXPECT_CODE(storage().GetRange(name, 0, 0), Code::kInvalidArgument);
    EXPECT_CODE(storage().Stat(name), Code::kInvalidArgument);
    EXPECT_CODE(storage().Remove(name), Code::kInvalidArgument);
  }
  auto ok = [](const ObjectInfo&) { return Status::Ok(); };
  EXPECT_CODE(storage().List("/", ok), Code::kInvalidArgument);
  EXPECT_CODE(storage().List("../", ok), Code::kInvalidArgument);
  EXPECT_CODE(storage().List("a//", ok), Code::kInvalidArgument);
}

TEST_P(StorageConformance, ConcurrentPutsOfDistinctNames) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 16;
  std::latch start(kThreads);
  std::vector<Status> failures[kThreads];
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int i = 0; i < kPerThread; ++i) {
        // Threads share directories, so concurrent directory creation is exercised too.
        Status s = storage().Put(fmt::format("data/{:02x}/{}-{}", i % 4, t, i),
                                 Pattern(100 + i, t * 100 + i));
        if (!s.ok()) failures[t].push_back(s);
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) {
    for (const Status& s : failures[t]) ADD_FAILURE() << s.ToString();
  }
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) {
      auto got = storage().Get(fmt::format("data/{:02x}/{}-{}", i % 4, t, i));
      ASSERT_OK(got);
      EXPECT_EQ(*got, Pattern(100 + i, t * 100 + i));
    }
  }
  auto all = ListAll(storage(), "data/");
  ASSERT_OK(all);
  EXPECT_EQ(all->size(), size_t{kThreads * kPerThread});
}

TEST_P(StorageConformance, ConcurrentExclusivePutsHaveOneWinner) {
  constexpr int kThreads = 8;
  constexpr int kRounds = 20;
  for (int round = 0; round < kRounds; ++round) {
    const std::string name = fmt::format("locks/round-{}", round);
    std::latch start(kThreads);
    std::vector<Status> results(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        start.arrive_and_wait();
        results[t] = storage().Put(name, AsBytes(fmt::format("thread-{}", t)), {.exclusive = true});
      });
    }
    for (auto& th : threads) th.join();

    int winner = -1;
    for (int t = 0; t < kThreads; ++t) {
      if (results[t].ok()) {
        EXPECT_EQ(winner, -1) << "round " << round << ": threads " << winner << " and " << t
                              << " both won";
        winner = t;
      } else {
        EXPECT_EQ(results[t].code(), Code::kAlreadyExists) << results[t].ToString();
      }
    }
    ASSERT_NE(winner, -1) << "round " << round << ": nobody won";
    auto got = storage().Get(name);
    ASSERT_OK(got);
    EXPECT_EQ(*got, B(fmt::format("thread-{}", winner)));
  }
}

INSTANTIATE_TEST_SUITE_P(Drivers, StorageConformance,
                         testing::Values(DriverCase{"posix", MakePosix},
                                         DriverCase{"memory", MakeMemory},
                                         DriverCase{"fault_passthrough", MakeFaultPassthrough},
                                         DriverCase{"s3_fake", MakeS3Fake},
                                         DriverCase{"s3", MakeS3}),
                         [](const testing::TestParamInfo<DriverCase>& info) {
                           return info.param.name;
                         });

// ---------------------------------------------------------------------------------------
// Posix driver.

// Paths of every ".tmp-*" file under `dir`.
std::vector<std::string> TempFilesUnder(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (it->path().filename().string().starts_with(".tmp-")) out.push_back(it->path());
  }
  EXPECT_FALSE(ec) << ec.message();
  return out;
}

class PosixStorageTest : public testing::Test {
 protected:
  void SetUp() override {
    root_ = scratch_.path() + "/repo";
    auto opened = PosixStorage::Open(root_, /*create=*/true);
    ASSERT_OK(opened);
    storage_ = std::move(opened).value();
  }

  TempDir scratch_;
  std::string root_;
  std::unique_ptr<PosixStorage> storage_;
};

TEST_F(PosixStorageTest, ObjectIsAFileUnderTheRoot) {
  ASSERT_OK(storage_->Put("a/b/c", AsBytes("content")));
  std::ifstream in(root_ + "/a/b/c", std::ios::binary);
  ASSERT_TRUE(in.good());
  const std::string on_disk((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(on_disk, "content");
  EXPECT_EQ(storage_->Location(), root_);
  EXPECT_TRUE(storage_->caps().atomic_exclusive_put);
  EXPECT_TRUE(storage_->caps().local);
}

TEST_F(PosixStorageTest, LostExclusivePutLeavesNoTempFile) {
  ASSERT_OK(storage_->Put("locks/x", AsBytes("1"), {.exclusive = true}));
  EXPECT_CODE(storage_->Put("locks/x", AsBytes("2"), {.exclusive = true}), Code::kAlreadyExists);
  EXPECT_EQ(TempFilesUnder(root_), std::vector<std::string>{});
}

TEST_F(PosixStorageTest, FailedRenameLeavesNoTempFile) {
  // "dir" is a directory, so renaming the written temp file over it fails after the write.
  ASSERT_OK(storage_->Put("dir/child", AsBytes("c")));
  Status s = storage_->Put("dir", AsBytes("x"));
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("'dir'"), std::string::npos) << s.ToString();
  EXPECT_EQ(TempFilesUnder(root_), std::vector<std::string>{});
  auto child = storage_->Get("dir/child");
  ASSERT_OK(child);
  EXPECT_EQ(*child, B("c"));
}

TEST_F(PosixStorageTest, PutBelowAnObjectFailsWithoutDebris) {
  ASSERT_OK(storage_->Put("file", AsBytes("f")));
  Status s = storage_->Put("file/child", AsBytes("x"));
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("write 'file/child'"), std::string::npos) << s.ToString();
  s = storage_->Put("file/deeper/child", AsBytes("x"));
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(TempFilesUnder(root_), std::vector<std::string>{});
}

TEST_F(PosixStorageTest, UnwritableDirectoryIsPermissionDenied) {
  if (::geteuid() == 0) GTEST_SKIP() << "root ignores directory permissions";
  ASSERT_OK(storage_->Put("data/existing", AsBytes("x")));
  ASSERT_EQ(::chmod((root_ + "/data").c_str(), 0500), 0);
  Status s = storage_->Put("data/new", AsBytes("x"));
  ASSERT_EQ(::chmod((root_ + "/data").c_str(), 0700), 0);
  EXPECT_EQ(s.code(), Code::kPermissionDenied) << s.ToString();
  EXPECT_EQ(TempFilesUnder(root_), std::vector<std::string>{});
}

TEST_F(PosixStorageTest, TempFilesAreInvisible) {
  ASSERT_OK(storage_->Put("data/obj", AsBytes("x")));
  // What a crash between create and rename leaves behind.
  std::ofstream(root_ + "/.tmp-0123456789abcdef") << "junk";
  std::ofstream(root_ + "/data/.tmp-fedcba9876543210") << "junk";
  ASSERT_EQ(TempFilesUnder(root_).size(), 2u);

  for (std::string_view prefix : {"", "data/", "data/."}) {
    SCOPED_TRACE(prefix);
    auto listing = ListAll(*storage_, prefix);
    ASSERT_OK(listing);
    EXPECT_EQ(Names(*listing), prefix == "data/." ? std::vector<std::string>{}
                                                  : std::vector<std::string>{"data/obj"});
  }
}

TEST_F(PosixStorageTest, RangeOfHugeObjectReadsOnlyTheRange) {
  // A sparse 6 GiB file: reading it whole would take seconds and 6 GiB of memory.
  constexpr uint64_t kSize = 6ull << 30;
  const std::string path = root_ + "/huge";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(kSize)), 0);
  ASSERT_EQ(::pwrite(fd, "tail", 4, static_cast<off_t>(kSize - 4)), 4);
  ::close(fd);

  auto info = storage_->Stat("huge");
  ASSERT_OK(info);
  EXPECT_EQ(info->size, kSize);
  auto tail = storage_->GetRange("huge", kSize - 8, 8);
  ASSERT_OK(tail);
  EXPECT_EQ(*tail, (Bytes{0, 0, 0, 0, 't', 'a', 'i', 'l'}));
  EXPECT_CODE(storage_->GetRange("huge", kSize - 8, 9), Code::kCorruption);
}

TEST(PosixStorageOpen, MissingRootWithoutCreateIsNotFound) {
  TempDir scratch;
  const std::string root = scratch.path() + "/nope";
  auto opened = OpenStorage(root);
  EXPECT_EQ(opened.status().code(), Code::kNotFound);
  EXPECT_EQ(opened.status().message(), fmt::format("repository '{}' does not exist", root));
  EXPECT_FALSE(fs::exists(root));
}

TEST(PosixStorageOpen, CreateMakesMissingParents) {
  TempDir scratch;
  const std::string root = scratch.path() + "/a/b/c";
  auto opened = OpenStorage(root + "/", /*create=*/true);
  ASSERT_OK(opened);
  EXPECT_TRUE(fs::is_directory(root));
  EXPECT_EQ((*opened)->Location(), root);
  // Creating again is fine (mkdir -p), and the existing objects stay.
  ASSERT_OK((*opened)->Put("x", AsBytes("1")));
  auto again = OpenStorage(root, /*create=*/true);
  ASSERT_OK(again);
  EXPECT_OK((*again)->Stat("x"));
}

TEST(PosixStorageOpen, FileUrl) {
  TempDir scratch;
  auto opened = OpenStorage("file://" + scratch.path() + "/my%20repo", /*create=*/true);
  ASSERT_OK(opened);
  EXPECT_TRUE(fs::is_directory(scratch.path() + "/my repo"));
  EXPECT_EQ((*opened)->Location(), scratch.path() + "/my repo");
  EXPECT_CODE(OpenStorage("file://" + scratch.path() + "/bad%2"), Code::kInvalidArgument);
  EXPECT_CODE(OpenStorage("file://host/srv/repo"), Code::kInvalidArgument);
}

TEST(PosixStorageOpen, RootThatIsAFileIsRejected) {
  TempDir scratch;
  const std::string root = scratch.path() + "/plain-file";
  std::ofstream(root) << "x";
  EXPECT_CODE(OpenStorage(root), Code::kFailedPrecondition);
  EXPECT_FALSE(OpenStorage(root + "/below", /*create=*/true).ok());
}

// ---------------------------------------------------------------------------------------
// Registry.

TEST(OpenStorageTest, MemUrlsShareANamedStore) {
  {
    auto a = OpenStorage("mem:registry-shared");
    auto b = OpenStorage("mem:registry-shared");
    ASSERT_OK(a);
    ASSERT_OK(b);
    ASSERT_OK((*a)->Put("config", AsBytes("c")));
    auto seen = (*b)->Get("config");
    ASSERT_OK(seen);
    EXPECT_EQ(*seen, B("c"));
    EXPECT_EQ((*a)->Location(), "mem:registry-shared");
  }
  auto reopened = OpenStorage("mem:registry-shared");
  ASSERT_OK(reopened);
  EXPECT_OK((*reopened)->Stat("config"));
  auto other = OpenStorage("mem:registry-other");
  ASSERT_OK(other);
  EXPECT_CODE((*other)->Stat("config"), Code::kNotFound);
}

// Sets environment variables for one scope and restores the previous values.
class ScopedEnv {
 public:
  ScopedEnv(std::initializer_list<std::pair<const char*, const char*>> vars) {
    for (const auto& [name, value] : vars) {
      const char* old = std::getenv(name);
      saved_.emplace_back(name, old ? std::optional<std::string>(old) : std::nullopt);
      if (value) {
        ::setenv(name, value, 1);
      } else {
        ::unsetenv(name);
      }
    }
  }
  ~ScopedEnv() {
    for (const auto& [name, value] : saved_) {
      if (value) {
        ::setenv(name.c_str(), value->c_str(), 1);
      } else {
        ::unsetenv(name.c_str());
      }
    }
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

TEST(OpenStorageTest, S3UrlsOpenTheS3Driver) {
  // Opening makes no request, so no server is needed.
  ScopedEnv env({{"AWS_ACCESS_KEY_ID", "AKIDREGISTRYTEST"},
                 {"AWS_SECRET_ACCESS_KEY", "registry-test-secret"},
                 {"AWS_PROFILE", nullptr},
                 {"AWS_SESSION_TOKEN", nullptr}});
  auto opened = OpenStorage(
      "s3://bucket/some/prefix/?endpoint=http://127.0.0.1:9&region=test-1&style=path");
  ASSERT_OK(opened);
  EXPECT_EQ((*opened)->Location(), "s3://bucket/some/prefix");
  EXPECT_FALSE((*opened)->caps().local);
  EXPECT_CODE(OpenStorage("s3://"), Code::kInvalidArgument);
  EXPECT_CODE(OpenStorage("s3:///prefix"), Code::kInvalidArgument);
  EXPECT_CODE(OpenStorage("s3://bucket/p?secret_access_key=x"), Code::kInvalidArgument);
  EXPECT_CODE(OpenStorage("s3://bucket/p?colour=blue"), Code::kInvalidArgument);
  EXPECT_CODE(OpenStorage("s3://bucket/p?endpoint=http://example.com"), Code::kInvalidArgument);
}

TEST(OpenStorageTest, BadUrls) {
  EXPECT_CODE(OpenStorage(""), Code::kInvalidArgument);
  EXPECT_CODE(OpenStorage("mem:"), Code::kInvalidArgument);
  EXPECT_CODE(OpenStorage("ftp://host/repo"), Code::kInvalidArgument);
  // Would otherwise become a directory named "sftp:host:" in the working directory.
  auto sftp = OpenStorage("sftp:host:/srv/repo", /*create=*/true);
  EXPECT_EQ(sftp.status().code(), Code::kInvalidArgument);
  EXPECT_FALSE(sftp.status().hint().empty());
  EXPECT_FALSE(fs::exists("sftp:host:"));
}

// ---------------------------------------------------------------------------------------
// FaultStorage.

class FaultStorageTest : public testing::Test {
 protected:
  MemoryStorage inner_;
  FaultStorage faulty_{inner_};
};

TEST_F(FaultStorageTest, ErrorOnNthCallOfOneOperation) {
  ASSERT_OK(faulty_.AddRule(
      {.op = StorageOp::kPut, .nth = 3, .code = Code::kUnavailable, .retryable = true}));
  EXPECT_OK(faulty_.Put("a", AsBytes("a")));
  EXPECT_OK(faulty_.Get("a"));  // not a put: not counted
  EXPECT_OK(faulty_.Put("b", AsBytes("b")));
  EXPECT_EQ(faulty_.faults_injected(), 0u);

  Status third = faulty_.Put("c", AsBytes("c"));
  EXPECT_EQ(third.code(), Code::kUnavailable);
  EXPECT_TRUE(third.retryable());
  EXPECT_CODE(inner_.Stat("c"), Code::kNotFound);

  EXPECT_OK(faulty_.Put("d", AsBytes("d")));
  EXPECT_EQ(faulty_.faults_injected(), 1u);
  EXPECT_EQ(faulty_.calls(StorageOp::kPut), 4u);
  EXPECT_EQ(faulty_.calls(StorageOp::kGet), 1u);
  EXPECT_EQ(faulty_.total_calls(), 5u);
}

TEST_F(FaultStorageTest, ErrorOnNthCallOfAnyOperation) {
  ASSERT_OK(faulty_.AddRule({.nth = 4}));
  EXPECT_OK(faulty_.Put("a", AsBytes("a")));
  EXPECT_OK(faulty_.Get("a"));
  EXPECT_OK(faulty_.Stat("a"));
  Status fourth = faulty_.List("", [](const ObjectInfo&) { return Status::Ok(); });
  EXPECT_EQ(fourth.code(), Code::kIo);
  EXPECT_FALSE(fourth.retryable());
  EXPECT_OK(faulty_.GetRange("a", 0, 1));
  EXPECT_EQ(faulty_.calls(StorageOp::kList), 1u);
  EXPECT_EQ(faulty_.calls(StorageOp::kGetRange), 1u);
}

TEST_F(FaultStorageTest, OnlyNamesWithThePrefixCount) {
  ASSERT_OK(faulty_.AddRule({.op = StorageOp::kPut, .name_prefix = "data/", .nth = 2}));
  EXPECT_OK(faulty_.Put("index/1", AsBytes("x")));
  EXPECT_OK(faulty_.Put("data/1", AsBytes("x")));
  EXPECT_OK(faulty_.Put("index/2", AsBytes("x")));
  EXPECT_CODE(faulty_.Put("data/2", AsBytes("x")), Code::kIo);
  EXPECT_OK(faulty_.Put("data/3", AsBytes("x")));
}

TEST_F(FaultStorageTest, TimesSetsHowManyCallsFault) {
  ASSERT_OK(inner_.Put("a", AsBytes("a")));
  ASSERT_OK(faulty_.AddRule({.op = StorageOp::kGet, .nth = 2, .times = 2}));
  ASSERT_OK(faulty_.AddRule({.op = StorageOp::kRemove, .nth = 2, .times = 0}));
  EXPECT_OK(faulty_.Get("a"));
  EXPECT_CODE(faulty_.Get("a"), Code::kIo);
  EXPECT_CODE(faulty_.Get("a"), Code::kIo);
  EXPECT_OK(faulty_.Get("a"));

  EXPECT_CODE(faulty_.Remove("missing"), Code::kNotFound);  // first remove reaches inner
  for (int i = 0; i < 10; ++i) EXPECT_CODE(faulty_.Remove("a"), Code::kIo);
  EXPECT_OK(inner_.Stat("a"));
}

TEST_F(FaultStorageTest, TornPutStoresAPrefixAndFails) {
  ASSERT_OK(faulty_.AddRule(
      {.op = StorageOp::kPut, .nth = 2, .times = 2, .kind = FaultKind::kTornPut, .torn_bytes = 3}));
  EXPECT_OK(faulty_.Put("a", AsBytes("abcdef")));
  EXPECT_CODE(faulty_.Put("b", AsBytes("ghijkl")), Code::kIo);
  auto torn = inner_.Get("b");
  ASSERT_OK(torn);
  EXPECT_EQ(*torn, B("ghi"));
  EXPECT_CODE(faulty_.Put("short", AsBytes("xy")), Code::kIo);  // shorter than torn_bytes
  auto whole = inner_.Get("short");
  ASSERT_OK(whole);
  EXPECT_EQ(*whole, B("xy"));
  EXPECT_OK(faulty_.Put("c", AsBytes("mnopqr")));
  auto c = inner_.Get("c");
  ASSERT_OK(c);
  EXPECT_EQ(*c, B("mnopqr"));
  auto a = inner_.Get("a");
  ASSERT_OK(a);
  EXPECT_EQ(*a, B("abcdef"));
}

TEST_F(FaultStorageTest, DelayThenProceed) {
  using Clock = std::chrono::steady_clock;
  constexpr auto kDelay = std::chrono::milliseconds(5);
  ASSERT_OK(inner_.Put("a", AsBytes("a")));
  ASSERT_OK(faulty_.AddRule(
      {.op = StorageOp::kGet, .nth = 2, .kind = FaultKind::kDelay, .delay = kDelay}));
  EXPECT_OK(faulty_.Get("a"));
  EXPECT_EQ(faulty_.faults_injected(), 0u);

  const auto start = Clock::now();
  auto second = faulty_.Get("a");
  const auto elapsed = Clock::now() - start;
  ASSERT_OK(second);
  EXPECT_EQ(*second, B("a"));
  EXPECT_GE(elapsed, kDelay);
  EXPECT_EQ(faulty_.faults_injected(), 1u);

  EXPECT_OK(faulty_.Get("a"));
  EXPECT_EQ(faulty_.faults_injected(), 1u);
}

TEST_F(FaultStorageTest, DropPutReportsSuccessWithoutStoring) {
  ASSERT_OK(faulty_.AddRule({.op = StorageOp::kPut, .nth = 2, .kind = FaultKind::kDrop}));
  EXPECT_OK(faulty_.Put("a", AsBytes("a")));
  EXPECT_OK(inner_.Stat("a"));
  EXPECT_OK(faulty_.Put("b", AsBytes("b")));
  EXPECT_CODE(inner_.Stat("b"), Code::kNotFound);
  EXPECT_OK(faulty_.Put("c", AsBytes("c")));
  EXPECT_OK(inner_.Stat("c"));
}

TEST_F(FaultStorageTest, DropRemoveReportsSuccessWithoutRemoving) {
  ASSERT_OK(inner_.Put("a", AsBytes("a")));
  ASSERT_OK(faulty_.AddRule({.op = StorageOp::kRemove, .nth = 1, .kind = FaultKind::kDrop}));
  EXPECT_OK(faulty_.Remove("a"));
  EXPECT_OK(inner_.Stat("a"));
  EXPECT_OK(faulty_.Remove("a"));
  EXPECT_CODE(inner_.Stat("a"), Code::kNotFound);
}

TEST_F(FaultStorageTest, EveryRuleCountsAndTheFirstAddedDecides) {
  ASSERT_OK(inner_.Put("a", AsBytes("a")));
  ASSERT_OK(faulty_.AddRule({.op = StorageOp::kGet, .nth = 2, .code = Code::kCorruption}));
  ASSERT_OK(faulty_.AddRule({.nth = 2, .code = Code::kUnavailable}));
  EXPECT_OK(faulty_.Stat("a"));                       // any-op rule: call 1
  EXPECT_CODE(faulty_.Get("a"), Code::kUnavailable);  // get rule: 1, any-op rule: 2
  EXPECT_CODE(faulty_.Get("a"), Code::kCorruption);   // get rule: 2, any-op rule: 3
  EXPECT_OK(faulty_.Get("a"));
  EXPECT_EQ(faulty_.faults_injected(), 2u);
}

TEST_F(FaultStorageTest, ClearRulesStopsFaults) {
  ASSERT_OK(faulty_.AddRule({.op = StorageOp::kPut, .times = 0}));
  EXPECT_CODE(faulty_.Put("a", AsBytes("a")), Code::kIo);
  faulty_.ClearRules();
  EXPECT_OK(faulty_.Put("a", AsBytes("a")));
  EXPECT_EQ(faulty_.calls(StorageOp::kPut), 2u);
}

TEST_F(FaultStorageTest, RejectsRulesThatCannotFire) {
  EXPECT_CODE(faulty_.AddRule({.nth = 0}), Code::kInvalidArgument);
  EXPECT_CODE(faulty_.AddRule({.kind = FaultKind::kTornPut}), Code::kInvalidArgument);
  EXPECT_CODE(faulty_.AddRule({.op = StorageOp::kGet, .kind = FaultKind::kTornPut}),
              Code::kInvalidArgument);
  EXPECT_CODE(faulty_.AddRule({.op = StorageOp::kGet, .kind = FaultKind::kDrop}),
              Code::kInvalidArgument);
  EXPECT_CODE(faulty_.AddRule({.code = Code::kOk}), Code::kInvalidArgument);
  EXPECT_OK(faulty_.Put("a", AsBytes("a")));  // none of them was added
}

TEST_F(FaultStorageTest, CountsExactlyUnderConcurrency) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 100;
  ASSERT_OK(inner_.Put("a", AsBytes("a")));
  ASSERT_OK(faulty_.AddRule({.op = StorageOp::kStat, .nth = 500, .code = Code::kUnavailable}));
  std::atomic<int> failures{0};
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      start.arrive_and_wait();
      for (int i = 0; i < kPerThread; ++i) {
        if (!faulty_.Stat("a").ok()) failures.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 1);
  EXPECT_EQ(faulty_.calls(StorageOp::kStat), uint64_t{kThreads * kPerThread});
  EXPECT_EQ(faulty_.faults_injected(), 1u);
}

}  // namespace
}  // namespace lb::storage
