// Repository engine tests on the memory and fault-injecting drivers.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <random>

#include "repo/check.h"
#include "repo/lock.h"
#include "repo/names.h"
#include "repo/repository.h"
#include "repo/snapshot.h"
#include "repo/tree.h"
#include "storage/fault_storage.h"
#include "storage/memory_storage.h"

namespace lb::repo {
namespace {

namespace fs = std::filesystem;

class RepoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv("LIFEBOAT_TEST_FAST_KDF", "1", 1);
    cache_ = fs::temp_directory_path() /
             ("lb-repo-test-" + std::to_string(getpid()) + "-" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name());
    setenv("LIFEBOAT_CACHE_DIR", cache_.c_str(), 1);
    url_ = "mem:" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name());
    auto st = storage::OpenStorage(url_);
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    ASSERT_TRUE(Repository::Init(**st, "pw").ok());
  }
  void TearDown() override { fs::remove_all(cache_); }

  std::unique_ptr<Repository> OpenRepo(std::string_view pw = "pw") {
    auto st = storage::OpenStorage(url_);
    auto r = Repository::Open(std::move(*st), pw);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(*r) : nullptr;
  }
  storage::Storage& Raw() {
    if (!raw_) raw_ = std::move(storage::OpenStorage(url_).value());
    return *raw_;
  }

  // Stores `n` data blobs and one tree referencing them, then a snapshot; returns it.
  Snapshot MakeSnapshot(Repository& r, int n, uint64_t seed) {
    BlobWriter w(r);
    std::mt19937_64 rng(seed);
    Node file;
    file.name = "f" + std::to_string(seed);
    for (int i = 0; i < n; ++i) {
      Bytes b(10000 + rng() % 5000);
      for (auto& x : b) x = uint8_t(rng());
      auto id = r.BlobId(b);
      EXPECT_TRUE(w.Save(BlobType::kData, id, b).ok());
      file.content.push_back(id);
      file.size += b.size();
    }
    std::vector<Node> nodes{file};
    Bytes tree = EncodeTree(nodes);
    auto tid = r.BlobId(tree);
    EXPECT_TRUE(w.Save(BlobType::kTree, tid, tree).ok());
    EXPECT_TRUE(w.Flush().ok());
    Snapshot s;
    s.tree = tid;
    s.paths = {"/x"};
    EXPECT_TRUE(SaveSnapshot(r, s).ok());
    return s;
  }

  fs::path cache_;
  std::string url_;
  std::unique_ptr<storage::Storage> raw_;
};

TEST_F(RepoTest, OpenWithRightAndWrongPassword) {
  EXPECT_NE(OpenRepo("pw"), nullptr);
  auto st = storage::OpenStorage(url_);
  auto r = Repository::Open(std::move(*st), "wrong");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kWrongKey);
}

TEST_F(RepoTest, InitTwiceIsRefused) {
  auto s = Repository::Init(Raw(), "pw");
  EXPECT_EQ(s.status().code(), Code::kAlreadyExists);
}

TEST_F(RepoTest, NotARepositoryAndNewerVersion) {
  auto empty = storage::OpenStorage("mem:empty-" + url_.substr(4));
  auto r = Repository::Open(std::move(*empty), "pw");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("not a lifeboat repository"), std::string::npos);

  auto cfg = Raw().Get("config");
  std::string text(AsString(*cfg));
  auto pos = text.find("\"version\": 1");
  ASSERT_NE(pos, std::string::npos);
  text.replace(pos, 12, "\"version\": 9");
  ASSERT_TRUE(Raw().Put("config", AsBytes(text)).ok());
  auto st = storage::OpenStorage(url_);
  auto r2 = Repository::Open(std::move(*st), "pw");
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(r2.status().message().find("newer"), std::string::npos);
}

TEST_F(RepoTest, SeveralKeysOpenTheSameRepository) {
  auto r = OpenRepo();
  auto id = AddKey(r->storage(), r->key(), "second");
  ASSERT_TRUE(id.ok());
  auto r2 = OpenRepo("second");
  ASSERT_NE(r2, nullptr);
  EXPECT_EQ(r2->config().id, r->config().id);
  EXPECT_EQ(r2->key().enc.bytes, r->key().enc.bytes);
  auto keys = ListKeys(r->storage());
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(keys->size(), 2u);
  ASSERT_TRUE(r->storage().Remove(KeyName(*id)).ok());
  auto st = storage::OpenStorage(url_);
  EXPECT_EQ(Repository::Open(std::move(*st), "second").status().code(), Code::kWrongKey);
}

TEST_F(RepoTest, KeyLeftByAnInterruptedInitIsSkipped) {
  // A key for another master key under the same password, as an init killed before its
  // config leaves behind; its id may sort before the real one.
  auto name = "mem:leftover-" + url_.substr(4);
  auto st = storage::OpenStorage(name);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(AddKey(**st, MasterKey::Random(), "pw").ok());
  ASSERT_TRUE(Repository::Init(**st, "pw").ok());
  auto st2 = storage::OpenStorage(name);
  auto r = Repository::Open(std::move(*st2), "pw");
  EXPECT_TRUE(r.ok()) << r.status().ToString();
}

TEST_F(RepoTest, KeyFileOpensWithoutStretching) {
  auto r = OpenRepo();
  Secret kf{NewKeyFileContents(), true};
  ASSERT_TRUE(AddKey(r->storage(), r->key(), kf).ok());
  auto st = storage::OpenStorage(url_);
  auto r2 = Repository::Open(std::move(*st), kf);
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  EXPECT_EQ((*r2)->key().id.bytes, r->key().id.bytes);
  // The key file's text is not a password, and a wrong key file fails cleanly.
  auto st3 = storage::OpenStorage(url_);
  EXPECT_EQ(Repository::Open(std::move(*st3), kf.value).status().code(), Code::kWrongKey);
  auto st4 = storage::OpenStorage(url_);
  EXPECT_EQ(Repository::Open(std::move(*st4), Secret{NewKeyFileContents(), true}).status().code(),
            Code::kWrongKey);
}

TEST_F(RepoTest, BlobsRoundTripThroughPacksAndIndex) {
  auto r = OpenRepo();
  Snapshot s = MakeSnapshot(*r, 50, 1);
  auto r2 = OpenRepo();  // fresh process view: index from the repository
  auto snap = FindSnapshot(*r2, "latest");
  ASSERT_TRUE(snap.ok());
  auto tree = r2->LoadBlob(snap->tree);
  ASSERT_TRUE(tree.ok()) << tree.status().ToString();
  auto nodes = DecodeTree(*tree);
  ASSERT_TRUE(nodes.ok());
  ASSERT_EQ((*nodes)[0].content.size(), 50u);
  for (const auto& id : (*nodes)[0].content) {
    auto b = r2->LoadBlob(id);
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(r2->BlobId(*b), id);
  }
  // Saving the same blob again is deduplicated.
  BlobWriter w(*r2);
  auto b = r2->LoadBlob((*nodes)[0].content[0]);
  auto again = w.Save(BlobType::kData, (*nodes)[0].content[0], *b);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
}

TEST_F(RepoTest, IndexCacheMergesManyRuns) {
  auto r = OpenRepo();
  std::vector<Snapshot> snaps;
  for (int i = 0; i < 40; ++i) snaps.push_back(MakeSnapshot(*r, 2, 100 + i));
  auto r2 = OpenRepo();
  auto idx = r2->index();
  ASSERT_TRUE(idx.ok());
  EXPECT_GE((*idx)->files().size(), 40u);
  EXPECT_TRUE(fs::exists(fs::path(r2->cache_dir()) / "index" / "merged"));
  for (const auto& s : snaps) EXPECT_TRUE((*idx)->Has(s.tree));
  // Removing an index file invalidates the merged base.
  ASSERT_TRUE(Raw().Remove(IndexName((*idx)->files()[0])).ok());
  auto r3 = OpenRepo();
  auto idx3 = r3->index();
  ASSERT_TRUE(idx3.ok());
  EXPECT_EQ((*idx3)->files().size(), (*idx)->files().size() - 1);
}

TEST_F(RepoTest, CheckPassesOnAHealthyRepository) {
  auto r = OpenRepo();
  MakeSnapshot(*r, 20, 7);
  auto res = Check(*r, {.read_data = true});
  ASSERT_TRUE(res.ok());
  EXPECT_TRUE(res->ok()) << (res->errors.empty() ? "" : res->errors[0]);
  EXPECT_EQ(res->snapshots, 1u);
  EXPECT_GT(res->blobs_read, 20u);
}

// Flips one byte in the middle of the first object under `prefix`.
void FlipByte(storage::Storage& st, const std::string& prefix) {
  std::string name;
  ASSERT_TRUE(st.List(prefix, [&](const storage::ObjectInfo& o) {
    if (name.empty()) name = o.name;
    return Status::Ok();
  }).ok());
  ASSERT_FALSE(name.empty());
  auto b = st.Get(name);
  (*b)[b->size() / 2] ^= 0x40;
  ASSERT_TRUE(st.Put(name, *b).ok());
}

TEST_F(RepoTest, CheckNamesAFlippedByteInAPack) {
  auto r = OpenRepo();
  MakeSnapshot(*r, 20, 8);
  // Only data packs hold 20 blobs; flip inside the biggest pack.
  std::string big;
  uint64_t size = 0;
  ASSERT_TRUE(Raw().List("data/", [&](const storage::ObjectInfo& o) {
    if (o.size > size) {
      size = o.size;
      big = o.name;
    }
    return Status::Ok();
  }).ok());
  auto b = Raw().Get(big);
  (*b)[100] ^= 1;
  ASSERT_TRUE(Raw().Put(big, *b).ok());
  auto r2 = OpenRepo();
  auto res = Check(*r2, {.read_data = true});
  ASSERT_TRUE(res.ok());
  EXPECT_FALSE(res->ok());
  std::string pack_short = big.substr(big.rfind('/') + 1, 8);
  bool named = false;
  for (const auto& e : res->errors) named |= e.find(pack_short) != std::string::npos;
  EXPECT_TRUE(named);
  ASSERT_FALSE(res->affected.empty());
  EXPECT_NE(res->affected[0].find("/f8"), std::string::npos);
}

TEST_F(RepoTest, CheckNamesAFlippedByteInAnIndexFile) {
  auto r = OpenRepo();
  MakeSnapshot(*r, 5, 9);
  FlipByte(Raw(), "index/");
  auto r2 = OpenRepo();
  auto res = Check(*r2, {});
  ASSERT_TRUE(res.ok());
  EXPECT_FALSE(res->ok());
  bool named = false;
  for (const auto& e : res->errors) named |= e.find("index file") != std::string::npos;
  EXPECT_TRUE(named);
}

TEST_F(RepoTest, CheckNamesAFlippedByteInASnapshot) {
  auto r = OpenRepo();
  MakeSnapshot(*r, 5, 10);
  FlipByte(Raw(), "snapshots/");
  auto r2 = OpenRepo();
  auto res = Check(*r2, {});
  ASSERT_TRUE(res.ok());
  EXPECT_FALSE(res->ok());
  bool named = false;
  for (const auto& e : res->errors) named |= e.find("snapshot") != std::string::npos;
  EXPECT_TRUE(named);
}

TEST_F(RepoTest, RepairIndexRebuildsFromPacksAlone) {
  auto r = OpenRepo();
  Snapshot s = MakeSnapshot(*r, 30, 11);
  std::vector<std::string> idx_names;
  ASSERT_TRUE(Raw().List("index/", [&](const storage::ObjectInfo& o) {
    idx_names.push_back(o.name);
    return Status::Ok();
  }).ok());
  for (const auto& n : idx_names) ASSERT_TRUE(Raw().Remove(n).ok());
  auto r2 = OpenRepo();
  EXPECT_EQ(r2->LoadBlob(s.tree).status().code(), Code::kNotFound);
  auto rep = RepairIndex(*r2);
  ASSERT_TRUE(rep.ok());
  EXPECT_EQ(rep->blobs, 31u);
  auto r3 = OpenRepo();
  auto res = Check(*r3, {.read_data = true});
  ASSERT_TRUE(res.ok());
  EXPECT_TRUE(res->ok()) << (res->errors.empty() ? "" : res->errors[0]);
}

TEST_F(RepoTest, ExclusiveLockConflicts) {
  auto shared = RepoLock::Acquire(Raw(), false, "backup");
  ASSERT_TRUE(shared.ok());
  auto shared2 = RepoLock::Acquire(Raw(), false, "backup");
  ASSERT_TRUE(shared2.ok());
  auto excl = RepoLock::Acquire(Raw(), true, "prune");
  ASSERT_FALSE(excl.ok());
  EXPECT_EQ(excl.status().code(), Code::kFailedPrecondition);
  shared->reset();
  shared2->reset();
  auto excl2 = RepoLock::Acquire(Raw(), true, "prune");
  ASSERT_TRUE(excl2.ok());
  EXPECT_FALSE(RepoLock::Acquire(Raw(), false, "backup").ok());
}

TEST_F(RepoTest, StaleLockIsReportedAndRemovable) {
  // A lock of a dead process on this host.
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  std::string text = fmt::format(
      R"({{"host":"{}","pid":999999999,"user":"x","time":{},"exclusive":true,"purpose":"prune"}})",
      host, int64_t(time(nullptr)));
  ASSERT_TRUE(Raw().Put("locks/" + std::string(64, 'a'), AsBytes(text)).ok());
  auto locks = ListLocks(Raw());
  ASSERT_TRUE(locks.ok());
  ASSERT_EQ(locks->size(), 1u);
  EXPECT_TRUE((*locks)[0].stale);
  // A stale lock does not block.
  EXPECT_TRUE(RepoLock::Acquire(Raw(), false, "backup").ok());
  auto n = RemoveLocks(Raw(), false);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1);
}

TEST_F(RepoTest, TreeEncodingRoundTripsOddNames) {
  std::vector<Node> nodes(3);
  nodes[0].name = std::string("bad\xff\xfe", 5);
  nodes[0].content.resize(3);
  nodes[1].name = "new\nline";
  nodes[1].type = NodeType::kSymlink;
  nodes[1].link_target = "../target with space";
  nodes[2].name = "dir";
  nodes[2].type = NodeType::kDir;
  nodes[2].subtree.bytes[5] = 7;
  nodes[2].mtime_ns = -5;
  Bytes b = EncodeTree(nodes);
  auto back = DecodeTree(b);
  ASSERT_TRUE(back.ok());
  ASSERT_EQ(back->size(), 3u);
  // EncodeTree sorted `nodes` by name: "bad..", "dir", "new\nline".
  EXPECT_EQ((*back)[0].name, std::string("bad\xff\xfe", 5));
  EXPECT_EQ((*back)[0].content.size(), 3u);
  EXPECT_EQ((*back)[1].subtree, nodes[1].subtree);
  EXPECT_EQ((*back)[1].mtime_ns, -5);
  EXPECT_EQ((*back)[2].name, "new\nline");
  EXPECT_EQ((*back)[2].link_target, "../target with space");
  b.pop_back();
  EXPECT_EQ(DecodeTree(b).status().code(), Code::kCorruption);
}

// Small packs so a backup of 40 blobs makes many packs and two index files.
const InitOptions kSmallPacks{.zstd_level = 3, .pack_size = 50000, .kdf = nullptr};

// Every storage call of a backup fails once, in turn: the backup either fails, leaving no
// snapshot, or succeeds; check finds no damage either way.
TEST_F(RepoTest, FaultAtEveryStorageCallNeverCommitsABrokenSnapshot) {
  uint64_t calls = 0;
  // Count the calls of one clean run first.
  {
    auto inner = storage::OpenStorage("mem:count-" + url_.substr(4));
    ASSERT_TRUE(Repository::Init(**inner, "pw", kSmallPacks).ok());
    auto fault = std::make_unique<storage::FaultStorage>(**inner);
    auto* f = fault.get();
    auto r = Repository::Open(std::move(fault), "pw");
    ASSERT_TRUE(r.ok());
    uint64_t before = f->total_calls();
    MakeSnapshot(**r, 40, 12);
    calls = f->total_calls() - before;
  }
  ASSERT_GT(calls, 5u);
  for (uint64_t n = 1; n <= calls; ++n) {
    std::string name = "mem:fault-" + std::to_string(n) + "-" + url_.substr(4);
    auto inner = storage::OpenStorage(name);
    ASSERT_TRUE(Repository::Init(**inner, "pw", kSmallPacks).ok());
    for (auto kind : {storage::FaultKind::kError, storage::FaultKind::kTornPut}) {
      auto fault = std::make_unique<storage::FaultStorage>(**inner);
      auto* f = fault.get();
      auto r = Repository::Open(std::move(fault), "pw");
      ASSERT_TRUE(r.ok());
      storage::FaultRule rule;
      rule.nth = n;
      rule.kind = kind;
      if (kind == storage::FaultKind::kTornPut) {
        rule.op = storage::StorageOp::kPut;
        rule.torn_bytes = 10;
      }
      ASSERT_TRUE(f->AddRule(rule).ok());
      size_t snaps_before = 0;
      {
        auto view = storage::OpenStorage(name);
        auto rv = Repository::Open(std::move(*view), "pw");
        ASSERT_TRUE(rv.ok());
        snaps_before = ListSnapshots(**rv).value().size();
      }
      BlobWriter w(**r);
      Node file;
      file.name = "x";
      bool ok = true;
      std::mt19937_64 rng(n);
      for (int i = 0; i < 40 && ok; ++i) {
        Bytes b(12000);
        for (auto& x : b) x = uint8_t(rng());
        auto id = (*r)->BlobId(b);
        ok = w.Save(BlobType::kData, id, b).ok();
        file.content.push_back(id);
      }
      std::vector<Node> nodes{file};
      Bytes tree = EncodeTree(nodes);
      auto tid = (*r)->BlobId(tree);
      ok = ok && w.Save(BlobType::kTree, tid, tree).ok();
      ok = ok && w.Flush().ok();
      Snapshot s;
      s.tree = tid;
      ok = ok && SaveSnapshot(**r, s).ok();
      (void)ok;
      // Judge with a clean view of the inner storage.
      auto clean = storage::OpenStorage(name);
      auto rc = Repository::Open(std::move(*clean), "pw");
      ASSERT_TRUE(rc.ok());
      std::vector<DamagedSnapshot> damaged;
      auto snaps = ListSnapshots(**rc, &damaged);
      ASSERT_TRUE(snaps.ok());
      auto res = Check(**rc, {.read_data = true});
      ASSERT_TRUE(res.ok());
      // A torn snapshot object is visible as damage only if the driver tears writes; the
      // memory driver under kTornPut stores a prefix, which check must then name.
      if (kind == storage::FaultKind::kError) {
        EXPECT_TRUE(res->ok()) << "fault at call " << n << ": " << res->errors[0];
      } else {
        // A torn object is named by check, but no readable snapshot lacks data.
        EXPECT_TRUE(res->affected.empty()) << "torn put at call " << n << ": "
                                           << res->affected[0];
      }
      EXPECT_GE(snaps->size() + damaged.size(), snaps_before);
    }
  }
}

}  // namespace
}  // namespace lb::repo
