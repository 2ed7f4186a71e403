// Prune on the memory driver: what goes, what stays, and the race with a backup that
// deduplicated against data prune was about to delete.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "repo/check.h"
#include "repo/lock.h"
#include "repo/names.h"
#include "repo/prune.h"
#include "repo/repository.h"
#include "repo/snapshot.h"
#include "repo/tree.h"
#include "storage/storage.h"

namespace lb::repo {
namespace {

namespace fs = std::filesystem;

// Every case runs with the default memory bounds and with tiny ones, so index files and
// condemned lists split packs across runs and the referenced set spills to scratch files.
class PruneTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    setenv("LIFEBOAT_TEST_FAST_KDF", "1", 1);
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    for (auto& c : name)
      if (c == '/') c = '-';
    cache_ = fs::temp_directory_path() / ("lb-prune-test-" + std::to_string(getpid()) + name);
    setenv("LIFEBOAT_CACHE_DIR", cache_.c_str(), 1);
    url_ = "mem:prune-" + name;
    auto st = storage::OpenStorage(url_);
    ASSERT_TRUE(Repository::Init(**st, "pw", {.zstd_level = 3, .pack_size = 40000, .kdf = nullptr}).ok());
  }
  void TearDown() override { fs::remove_all(cache_); }
  PruneOptions Opts(PruneOptions o = {}) const {
    if (GetParam()) {
      o.run_entries = 1;
      o.spill_batch = 2;
    }
    return o;
  }
  std::unique_ptr<Repository> Open() {
    auto st = storage::OpenStorage(url_);
    return std::move(Repository::Open(std::move(*st), "pw").value());
  }
  static Bytes Data(uint64_t seed) {
    std::mt19937_64 rng(seed);
    Bytes b(15000);
    for (auto& x : b) x = uint8_t(rng());
    return b;
  }
  // A snapshot of one file made of the blobs Data(seeds...).
  Snapshot Save(Repository& r, BlobWriter& w, const std::vector<uint64_t>& seeds) {
    Node f;
    f.name = "file";
    for (auto s : seeds) {
      Bytes b = Data(s);
      auto id = r.BlobId(b);
      EXPECT_TRUE(w.Save(BlobType::kData, id, b).ok());
      f.content.push_back(id);
    }
    std::vector<Node> nodes{f};
    Bytes tree = EncodeTree(nodes);
    auto tid = r.BlobId(tree);
    EXPECT_TRUE(w.Save(BlobType::kTree, tid, tree).ok());
    EXPECT_TRUE(w.Flush().ok());
    Snapshot s;
    s.tree = tid;
    EXPECT_TRUE(SaveSnapshot(r, s).ok());
    return s;
  }
  void ExpectHealthy() {
    auto r = Open();
    auto res = Check(*r, {.read_data = true, .read_fraction = 1.0, .threads = 2});
    ASSERT_TRUE(res.ok());
    EXPECT_TRUE(res->ok()) << res->errors[0];
    auto snaps = ListSnapshots(*r);
    ASSERT_TRUE(snaps.ok());
    for (const auto& s : *snaps) {
      auto tree = r->LoadBlob(s.tree);
      ASSERT_TRUE(tree.ok()) << tree.status().ToString();
      auto nodes = DecodeTree(*tree);
      ASSERT_TRUE(nodes.ok());
      for (const auto& n : *nodes)
        for (const auto& id : n.content) EXPECT_TRUE(r->LoadBlob(id).ok());
    }
  }
  uint64_t Packs() {
    uint64_t n = 0;
    auto st = storage::OpenStorage(url_);
    EXPECT_TRUE((*st)->List("data/", [&](const storage::ObjectInfo&) {
      ++n;
      return Status::Ok();
    }).ok());
    return n;
  }

  fs::path cache_;
  std::string url_;
};

TEST_P(PruneTest, RemovesWhatNoSnapshotReferences) {
  auto r = Open();
  Snapshot keep, drop;
  {
    BlobWriter w(*r);
    keep = Save(*r, w, {1, 2, 3});
  }
  {
    BlobWriter w(*r);
    drop = Save(*r, w, {10, 11, 12, 13, 14, 15});
  }
  ASSERT_TRUE(r->storage().Remove(SnapshotName(drop.id)).ok());
  uint64_t before = Packs();
  auto r2 = Open();
  auto res = Prune(*r2, Opts());
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_GT(res->packs_deleted, 0u);
  EXPECT_EQ(res->packs_waiting, 0u);
  EXPECT_GT(res->bytes_deleted, 6u * 15000);
  EXPECT_LT(Packs(), before);
  ExpectHealthy();
  // Nothing is left to do.
  auto again = Prune(*Open(), Opts());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->packs_deleted, 0u);
}

TEST_P(PruneTest, RepacksMostlyGarbagePacks) {
  // Pack size 40000: two or so blobs a pack. One blob of each pack stays referenced.
  auto r = Open();
  Snapshot all, half;
  {
    BlobWriter w(*r);
    all = Save(*r, w, {20, 21, 22, 23, 24, 25, 26, 27});
  }
  {
    BlobWriter w(*r);
    half = Save(*r, w, {20, 22, 24, 26});
  }
  ASSERT_TRUE(r->storage().Remove(SnapshotName(all.id)).ok());
  auto res = Prune(*Open(), Opts({.max_unused = 0.3, .dry_run = false}));
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_GT(res->packs_repacked, 0u);
  EXPECT_GT(res->bytes_repacked, 0u);
  // The repacked packs go (their live blobs have new copies), they are not resurrected.
  EXPECT_EQ(res->packs_resurrected, 0u);
  EXPECT_GE(res->packs_deleted, res->packs_repacked);
  ExpectHealthy();
  // Nothing left to repack: a second prune changes nothing.
  uint64_t packs = Packs();
  auto again = Prune(*Open(), Opts());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->packs_repacked, 0u);
  EXPECT_EQ(Packs(), packs);
}

// A backup that loaded the index before prune ran deduplicates against a blob prune then
// condemns. Its snapshot must stay restorable, and the next prune must keep that pack.
TEST_P(PruneTest, BackupRunningDuringPruneKeepsWhatItReused) {
  auto r = Open();
  Snapshot old;
  {
    BlobWriter w(*r);
    old = Save(*r, w, {30, 31});
  }
  // The backup starts: lock, index loaded.
  auto backup_repo = Open();
  auto lock = RepoLock::Acquire(backup_repo->storage(), false, "backup files");
  ASSERT_TRUE(lock.ok());
  auto writer = std::make_unique<BlobWriter>(*backup_repo);
  // Meanwhile the old snapshot is forgotten and prune runs: blob 30 is condemned, and its
  // deletion waits for the running backup.
  ASSERT_TRUE(r->storage().Remove(SnapshotName(old.id)).ok());
  auto res = Prune(*Open(), Opts());
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->packs_deleted, 0u);
  EXPECT_GT(res->packs_waiting, 0u);
  EXPECT_NE(res->waiting_for.find("backup files"), std::string::npos);
  // The backup reuses blob 30 (its index still lists it) and commits.
  Snapshot fresh = Save(*backup_repo, *writer, {30, 40});
  writer.reset();
  lock->reset();
  // Readable now (through the condemned list), and kept by the next prune.
  ExpectHealthy();
  auto res2 = Prune(*Open(), Opts());
  ASSERT_TRUE(res2.ok()) << res2.status().ToString();
  EXPECT_GT(res2->packs_resurrected, 0u);
  ExpectHealthy();
  auto r3 = Open();
  EXPECT_TRUE((*r3->index())->Has(r3->BlobId(Data(30))));
}

TEST_P(PruneTest, DryRunChangesNothing) {
  auto r = Open();
  Snapshot s;
  {
    BlobWriter w(*r);
    s = Save(*r, w, {50, 51});
  }
  ASSERT_TRUE(r->storage().Remove(SnapshotName(s.id)).ok());
  uint64_t before = Packs();
  auto res = Prune(*Open(), Opts({.max_unused = 0.3, .dry_run = true}));
  ASSERT_TRUE(res.ok());
  EXPECT_GT(res->bytes_unreferenced, 0u);
  EXPECT_EQ(Packs(), before);
}


// More blobs than the tiny bounds hold: forget half of many snapshots, prune, and every
// kept snapshot still reads; a second prune finds nothing.
TEST_P(PruneTest, ManySnapshotsHalfForgotten) {
  auto r = Open();
  std::vector<Snapshot> snaps;
  for (uint64_t i = 0; i < 12; ++i) {
    BlobWriter w(*r);
    snaps.push_back(Save(*r, w, {100 + i, 200 + i, 300 + i % 3, 400}));
  }
  for (size_t i = 0; i < snaps.size(); i += 2)
    ASSERT_TRUE(r->storage().Remove(SnapshotName(snaps[i].id)).ok());
  auto res = Prune(*Open(), Opts());
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->snapshots, 6u);
  EXPECT_GT(res->packs_deleted, 0u);
  EXPECT_EQ(res->packs_waiting, 0u);
  ExpectHealthy();
  auto r2 = Open();
  for (size_t i = 1; i < snaps.size(); i += 2)
    for (uint64_t seed : {100 + i, 200 + i, 300 + i % 3, uint64_t(400)})
      EXPECT_TRUE((*r2->index())->Has(r2->BlobId(Data(seed)))) << "seed " << seed;
  auto again = Prune(*Open(), Opts());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->packs_deleted, 0u);
  EXPECT_EQ(again->packs_repacked, 0u);
}

TEST_P(PruneTest, IndexForEachSortedIsAscendingAndComplete) {
  auto r = Open();
  for (uint64_t i = 0; i < 5; ++i) {
    BlobWriter w(*r);
    Save(*r, w, {500 + i, 600 + i});
  }
  auto r2 = Open();
  Index* idx = *r2->index();
  size_t plain = 0, sorted = 0;
  ASSERT_TRUE(idx->ForEach([&](const crypto::Id&, const BlobLocation&) {
    ++plain;
    return Status::Ok();
  }).ok());
  crypto::Id last{};
  ASSERT_TRUE(idx->ForEachSorted([&](const crypto::Id& id, const BlobLocation&) {
    EXPECT_LE(last, id);
    last = id;
    ++sorted;
    return Status::Ok();
  }).ok());
  EXPECT_EQ(plain, sorted);
  EXPECT_GE(plain, 15u);
}

INSTANTIATE_TEST_SUITE_P(Bounds, PruneTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& i) {
                           return i.param ? "tiny" : "default";
                         });

}  // namespace
}  // namespace lb::repo
