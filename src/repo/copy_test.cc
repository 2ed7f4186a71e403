// Copying snapshots and named objects between repositories on the memory driver: with a
// shared id key (blobs keep their ids) and without (ids translated), twice, interrupted at
// every storage call, from damaged sources, and into targets that already hold the data.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <random>

#include "repo/check.h"
#include "repo/copy.h"
#include "repo/names.h"
#include "repo/prune.h"
#include "repo/retention.h"
#include "repo/repository.h"
#include "repo/snapshot.h"
#include "repo/tree.h"
#include "storage/fault_storage.h"
#include "storage/storage.h"

namespace lb::repo {
namespace {

namespace fs = std::filesystem;

// Small packs: a few hundred KiB of data make many packs and index files, so interruptions
// land between every kind of write.
const InitOptions kSmallPacks{.zstd_level = 3, .pack_size = 40000, .kdf = nullptr};

enum class Ids { kShared, kTranslated };

class CopyTest : public ::testing::TestWithParam<Ids> {
 protected:
  void SetUp() override {
    setenv("LIFEBOAT_TEST_FAST_KDF", "1", 1);
    name_ = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    for (auto& c : name_)
      if (c == '/') c = '-';
    cache_ = fs::temp_directory_path() / ("lb-copy-test-" + std::to_string(getpid()) + name_);
    setenv("LIFEBOAT_CACHE_DIR", cache_.c_str(), 1);
    from_url_ = "mem:copy-from-" + name_;
    auto st = storage::OpenStorage(from_url_);
    ASSERT_TRUE(Repository::Init(**st, "source pw", kSmallPacks).ok());
  }
  void TearDown() override { fs::remove_all(cache_); }

  std::unique_ptr<Repository> OpenAt(const std::string& url, std::string_view pw) {
    auto st = storage::OpenStorage(url);
    auto r = Repository::Open(std::move(*st), pw);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(*r) : nullptr;
  }
  std::unique_ptr<Repository> From() { return OpenAt(from_url_, "source pw"); }

  // A new target repository at `url`: with the source's id key when the test runs the shared
  // variant, else one of its own. Different password and encryption key either way.
  void InitTarget(const std::string& url) {
    auto st = storage::OpenStorage(url);
    InitOptions o = kSmallPacks;
    std::unique_ptr<Repository> from;
    if (GetParam() == Ids::kShared) {
      from = From();
      o.params_from = from.get();
    }
    ASSERT_TRUE(Repository::Init(**st, "target pw", o).ok());
  }
  std::string NewTarget(const std::string& suffix = "") {
    std::string url = "mem:copy-to-" + name_ + suffix;
    InitTarget(url);
    return url;
  }

  static Bytes Data(uint64_t seed, size_t size = 9000) {
    std::mt19937_64 rng(seed);
    Bytes b(size);
    for (auto& x : b) x = uint8_t(rng() % 4 == 0 ? 'a' + seed % 26 : rng());
    return b;
  }

  // A snapshot of /top with subdirectories; file i of directory d holds the blobs
  // Data(seed*1000 + d*100 + i*10 + k). `shared` blobs come from seed 0 in every snapshot.
  Snapshot Backup(Repository& r, uint64_t seed, int dirs = 3, std::vector<std::string> tags = {},
                  std::string kind = "files", std::optional<crypto::Id> parent = std::nullopt) {
    BlobWriter w(r);
    auto save_tree = [&](std::vector<Node> nodes) {
      Bytes t = EncodeTree(nodes);
      auto id = r.BlobId(t);
      EXPECT_TRUE(w.Save(BlobType::kTree, id, t).ok());
      return id;
    };
    auto file = [&](const std::string& name, std::vector<uint64_t> seeds) {
      Node f;
      f.name = name;
      f.mode = 0644;
      f.mtime_ns = int64_t(seed) * 1000000007;
      for (auto s : seeds) {
        Bytes b = Data(s);
        auto id = r.BlobId(b);
        EXPECT_TRUE(w.Save(BlobType::kData, id, b).ok());
        f.content.push_back(id);
        f.size += b.size();
      }
      return f;
    };
    std::vector<Node> top;
    for (int d = 0; d < dirs; ++d) {
      std::vector<Node> files;
      for (int i = 0; i < 3; ++i) {
        std::vector<uint64_t> seeds;
        for (int k = 0; k < 2; ++k) seeds.push_back(seed * 1000 + d * 100 + i * 10 + k);
        files.push_back(file("f" + std::to_string(i), seeds));
      }
      files.push_back(file("shared", {1, 2, 3}));
      Node empty;
      empty.name = "empty";
      files.push_back(empty);
      Node link;
      link.type = NodeType::kSymlink;
      link.name = "link";
      link.link_target = "f0";
      files.push_back(link);
      Node sub;
      sub.type = NodeType::kDir;
      sub.name = "d" + std::to_string(d);
      sub.mode = 0755;
      sub.subtree = save_tree(files);
      top.push_back(sub);
    }
    Node top_dir;
    top_dir.type = NodeType::kDir;
    top_dir.name = "top";
    top_dir.subtree = save_tree(top);
    crypto::Id root = save_tree({top_dir});
    EXPECT_TRUE(w.Flush().ok());
    Snapshot s;
    s.tree = root;
    s.paths = {"/top"};
    s.host = "db1";
    s.user = "alice";
    s.kind = kind;
    s.source = kind == "files" ? "" : "main";
    s.tags = std::move(tags);
    s.parent = parent;
    s.summary = {{"files", dirs * 5}, {"seed", seed}};
    s.extra = {{"note", "seed " + std::to_string(seed)}};
    s.time = FormatRfc3339(int64_t(1700000000 + seed * 3600) * 1000000000 + 123456789);
    EXPECT_TRUE(SaveSnapshot(r, s).ok());
    return s;
  }

  // Every entry below `tree` as "path type mode size target [content bytes]".
  static std::map<std::string, std::string> Flatten(Repository& r, const crypto::Id& tree,
                                                    const std::string& prefix = "") {
    std::map<std::string, std::string> out;
    auto blob = r.LoadBlob(tree);
    EXPECT_TRUE(blob.ok()) << blob.status().ToString();
    if (!blob.ok()) return out;
    auto nodes = DecodeTree(*blob);
    EXPECT_TRUE(nodes.ok());
    for (const auto& n : *nodes) {
      std::string path = prefix + "/" + n.name;
      std::string v = fmt::format("{} {:o} {} {} {} ", int(n.type), n.mode, n.size, n.mtime_ns,
                                  n.link_target);
      for (const auto& c : n.content) {
        auto data = r.LoadBlob(c);
        EXPECT_TRUE(data.ok()) << path << ": " << data.status().ToString();
        if (data.ok()) v += AsString(*data);
      }
      out[path] = v;
      if (n.type == NodeType::kDir) out.merge(Flatten(r, n.subtree, path));
    }
    return out;
  }

  // Both repositories hold the same snapshots (by original), with the same metadata and
  // contents, and the target passes check --read-data.
  void ExpectSameSnapshots(Repository& from, Repository& to) {
    auto src = ListSnapshots(from).value();
    auto dst = ListSnapshots(to).value();
    ASSERT_EQ(src.size(), dst.size());
    std::map<crypto::Id, const Snapshot*> by_original;
    for (const auto& d : dst) {
      ASSERT_TRUE(d.original.has_value());
      EXPECT_TRUE(by_original.emplace(*d.original, &d).second) << "duplicate copy";
    }
    for (const auto& s : src) {
      ASSERT_TRUE(by_original.count(OriginalId(s))) << "snapshot " << s.id.Short() << " missing";
      const Snapshot& d = *by_original[OriginalId(s)];
      EXPECT_EQ(d.time, s.time);
      EXPECT_EQ(d.host, s.host);
      EXPECT_EQ(d.user, s.user);
      EXPECT_EQ(d.kind, s.kind);
      EXPECT_EQ(d.source, s.source);
      EXPECT_EQ(d.tags, s.tags);
      EXPECT_EQ(d.paths, s.paths);
      EXPECT_EQ(d.summary, s.summary);
      EXPECT_EQ(d.extra, s.extra);
      if (GetParam() == Ids::kShared) EXPECT_EQ(d.tree, s.tree);
      else EXPECT_NE(d.tree, s.tree);
      EXPECT_EQ(Flatten(to, d.tree), Flatten(from, s.tree));
    }
    auto res = Check(to, {.read_data = true, .read_fraction = 1.0, .threads = 2});
    ASSERT_TRUE(res.ok()) << res.status().ToString();
    EXPECT_TRUE(res->ok()) << res->errors[0];
  }

  static size_t Count(const std::string& url, const std::string& prefix) {
    size_t n = 0;
    auto st = storage::OpenStorage(url);
    EXPECT_TRUE((*st)->List(prefix, [&](const storage::ObjectInfo&) {
      ++n;
      return Status::Ok();
    }).ok());
    return n;
  }

  std::string name_;
  fs::path cache_;
  std::string from_url_;
};

INSTANTIATE_TEST_SUITE_P(Ids, CopyTest, ::testing::Values(Ids::kShared, Ids::kTranslated),
                         [](const auto& info) {
                           return info.param == Ids::kShared ? "SharedIdKey" : "TranslatedIds";
                         });

TEST_P(CopyTest, CopiesEverySnapshotWithItsMetadata) {
  auto from = From();
  Snapshot first = Backup(*from, 1);
  Backup(*from, 2, 2, {"daily"}, "files", first.id);
  std::string to_url = NewTarget();
  auto to = OpenAt(to_url, "target pw");
  auto res = CopySnapshots(*from, *to, {.threads = 3});
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->same_id_key, GetParam() == Ids::kShared);
  EXPECT_EQ(res->snapshots_copied, 2u);
  EXPECT_EQ(res->snapshots_skipped, 0u);
  EXPECT_GT(res->blobs_copied, 20u);
  EXPECT_GT(res->bytes_read, 0u);
  EXPECT_GT(res->bytes_written, 0u);
  ExpectSameSnapshots(*From(), *OpenAt(to_url, "target pw"));
  // The second snapshot's parent is the copy of the first.
  auto dst = ListSnapshots(*to).value();
  ASSERT_EQ(dst.size(), 2u);
  EXPECT_FALSE(dst[0].parent.has_value());
  ASSERT_TRUE(dst[1].parent.has_value());
  EXPECT_EQ(*dst[1].parent, dst[0].id);
  // Translated copies remember their ids in the target; copies with shared ids need no map.
  EXPECT_EQ(Count(to_url, "copy/") > 0, GetParam() == Ids::kTranslated);
}

TEST_P(CopyTest, SecondCopyCopiesNothingAndReadsNothing) {
  auto from = From();
  Backup(*from, 1);
  std::string to_url = NewTarget();
  ASSERT_TRUE(CopySnapshots(*from, *OpenAt(to_url, "target pw"), {}).ok());
  size_t objects = Count(to_url, "");
  auto again = CopySnapshots(*From(), *OpenAt(to_url, "target pw"), {});
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->snapshots_copied, 0u);
  EXPECT_EQ(again->snapshots_skipped, 1u);
  EXPECT_EQ(again->bytes_read, 0u);
  EXPECT_EQ(again->blobs_copied, 0u);
  EXPECT_EQ(Count(to_url, ""), objects);
}

// A new snapshot that shares most of its data with one copied before: only the new blobs are
// read from the source, in both variants (the translated one through the id map).
TEST_P(CopyTest, LaterCopyReadsOnlyNewData) {
  auto from = From();
  Backup(*from, 1);
  std::string to_url = NewTarget();
  ASSERT_TRUE(CopySnapshots(*from, *OpenAt(to_url, "target pw"), {}).ok());
  // Same tree shape with seed 1 again plus one more directory: d0..d2 identical.
  Backup(*from, 1, 4);
  auto from2 = From();
  auto res = CopySnapshots(*from2, *OpenAt(to_url, "target pw"), {});
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->snapshots_copied, 1u);
  // d3's three files of two new blobs each; the shared file is known already.
  EXPECT_GE(res->blobs_present, 3u * 7);
  uint64_t new_data = 0;
  for (int i = 0; i < 3; ++i)
    for (int k = 0; k < 2; ++k) new_data += Data(1000 + 300 + i * 10 + k).size();
  uint64_t trees = 64u << 10;  // generous: four small trees, read in whole-range requests
  EXPECT_LE(res->bytes_read, 2 * new_data + trees) << "read data the target has";
  ExpectSameSnapshots(*From(), *OpenAt(to_url, "target pw"));
}

TEST_P(CopyTest, FiltersSelectSnapshots) {
  auto from = From();
  Snapshot a = Backup(*from, 1, 1, {"daily"});
  Snapshot b = Backup(*from, 2, 1, {"weekly"}, "logs");
  Snapshot c = Backup(*from, 3, 1, {"daily"}, "files");
  std::string to_url = NewTarget();
  auto to = OpenAt(to_url, "target pw");
  auto copied = [&](const CopyOptions& o) {
    auto res = CopySnapshots(*from, *to, o);
    EXPECT_TRUE(res.ok()) << res.status().ToString();
    std::vector<crypto::Id> ids;
    if (res.ok())
      for (const auto& s : res->copied) ids.push_back(s.source.id);
    return ids;
  };
  EXPECT_EQ(copied({.filter = {.kinds = {"logs"}}, .dry_run = true}), std::vector{b.id});
  EXPECT_EQ(copied({.filter = {.tags = {"daily"}}, .dry_run = true}), (std::vector{a.id, c.id}));
  EXPECT_EQ(copied({.since_ns = b.time_ns, .dry_run = true}), (std::vector{b.id, c.id}));
  EXPECT_EQ(copied({.snapshots = {a.id.Hex().substr(0, 8)}, .dry_run = true}),
            std::vector{a.id});
  EXPECT_EQ(Count(to_url, "snapshots/"), 0u) << "a dry run wrote a snapshot";
  EXPECT_EQ(Count(to_url, "data/"), 0u) << "a dry run wrote data";
  EXPECT_EQ(copied({.filter = {.tags = {"daily"}}}), (std::vector{a.id, c.id}));
  EXPECT_EQ(copied({}), std::vector{b.id});
  auto unknown = CopySnapshots(*from, *to, {.snapshots = {"ffffffff"}});
  EXPECT_EQ(unknown.status().code(), Code::kNotFound);
}

TEST_P(CopyTest, DryRunCountsWhatIsMissing) {
  auto from = From();
  Backup(*from, 1);
  std::string to_url = NewTarget();
  size_t before = Count(to_url, "");
  auto res = CopySnapshots(*from, *OpenAt(to_url, "target pw"), {.dry_run = true});
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->snapshots_copied, 1u);
  // Every data blob once, and the five trees (root, top, d0..d2).
  EXPECT_EQ(res->blobs_copied, 3u * 3 * 2 + 3 + 5);
  EXPECT_GT(res->bytes_read, 0u);
  EXPECT_EQ(Count(to_url, ""), before);
}

// Copy, copy of the copy, and back: every repository recognises the snapshot by its original.
TEST_P(CopyTest, CopiesOfCopiesKeepTheOriginal) {
  auto from = From();
  Snapshot s = Backup(*from, 1);
  std::string b_url = NewTarget("-b");
  std::string c_url = NewTarget("-c");
  ASSERT_TRUE(CopySnapshots(*from, *OpenAt(b_url, "target pw"), {}).ok());
  auto b = OpenAt(b_url, "target pw");
  ASSERT_TRUE(CopySnapshots(*b, *OpenAt(c_url, "target pw"), {}).ok());
  auto in_c = ListSnapshots(*OpenAt(c_url, "target pw")).value();
  ASSERT_EQ(in_c.size(), 1u);
  EXPECT_EQ(in_c[0].original, s.id);
  auto back = CopySnapshots(*OpenAt(c_url, "target pw"), *From(), {});
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->snapshots_copied, 0u);
  EXPECT_EQ(back->snapshots_skipped, 1u);
  EXPECT_EQ(CopySnapshots(*b, *b, {}).status().code(), Code::kInvalidArgument);
}

// The target already holds some of the data, written by its own backup: those blobs are not
// stored again (and, with shared ids, not even read).
TEST_P(CopyTest, TargetThatHasTheBlobsAlready) {
  std::string to_url = NewTarget();
  {
    auto to = OpenAt(to_url, "target pw");
    Backup(*to, 1);  // the same content, by the target's own backup
  }
  auto from = From();
  Backup(*from, 1, 4);
  auto res = CopySnapshots(*from, *OpenAt(to_url, "target pw"), {});
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->snapshots_copied, 1u);
  // Only d3 is new: three files of two blobs, its tree and the two trees above it.
  if (GetParam() == Ids::kShared) {
    EXPECT_EQ(res->blobs_copied, 3u * 2 + 3);
    EXPECT_GE(res->blobs_present, 3u * 3 * 2 + 3);
  } else {
    // Without shared ids the data must be read to learn its target id, but what the target
    // has is not stored again.
    EXPECT_EQ(res->blobs_copied, 3u * 2 + 3);
  }
  auto to = OpenAt(to_url, "target pw");
  auto snaps = ListSnapshots(*to).value();
  ASSERT_EQ(snaps.size(), 2u);
  auto res2 = Check(*to, {.read_data = true, .read_fraction = 1.0, .threads = 2});
  ASSERT_TRUE(res2.ok());
  EXPECT_TRUE(res2->ok()) << res2->errors[0];
  auto copy = std::find_if(snaps.begin(), snaps.end(), [](const Snapshot& s) { return s.original.has_value(); });
  ASSERT_NE(copy, snaps.end());
  EXPECT_EQ(Flatten(*to, copy->tree), Flatten(*From(), ListSnapshots(*From()).value()[0].tree));
}

// A damaged pack in the source: the copy fails naming the pack; snapshots copied before it
// are complete, and no snapshot of the target refers to data it lacks.
TEST_P(CopyTest, DamagedSourcePackIsNamedAndNothingBrokenIsCommitted) {
  auto from = From();
  Snapshot good = Backup(*from, 1);
  Snapshot bad = Backup(*from, 2);
  // Damage a blob only the second snapshot has.
  auto loc = (*from->index())->FindAny(from->BlobId(Data(2000)));
  ASSERT_TRUE(loc.has_value());
  std::string pack = PackName(loc->pack);
  auto raw = storage::OpenStorage(from_url_);
  Bytes bytes = (*raw)->Get(pack).value();
  bytes[loc->offset + 20] ^= 0xFF;
  ASSERT_TRUE((*raw)->Put(pack, bytes).ok());

  std::string to_url = NewTarget();
  auto res = CopySnapshots(*From(), *OpenAt(to_url, "target pw"), {});
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().code(), Code::kCorruption);
  EXPECT_NE(res.status().message().find(pack), std::string::npos) << res.status().ToString();
  EXPECT_NE(res.status().message().find(bad.id.Short()), std::string::npos);
  auto to = OpenAt(to_url, "target pw");
  auto snaps = ListSnapshots(*to).value();
  ASSERT_EQ(snaps.size(), 1u);
  EXPECT_EQ(snaps[0].original, good.id);
  auto check = Check(*to, {.read_data = true, .read_fraction = 1.0, .threads = 2});
  ASSERT_TRUE(check.ok());
  EXPECT_TRUE(check->ok()) << check->errors[0];
  EXPECT_FALSE(Flatten(*to, snaps[0].tree).empty());
}

// Every storage call of the target fails once, in turn; a clean rerun then completes the
// copy: every snapshot exactly once, check --read-data clean, contents identical.
TEST_P(CopyTest, InterruptedAtEveryTargetCallThenResumed) {
  {
    auto from = From();
    Backup(*from, 1, 5);
    Backup(*from, 2, 2);
    Backup(*from, 3, 4);
  }
  uint64_t calls = 0;
  {
    std::string url = NewTarget("-count");
    auto inner = storage::OpenStorage(url);
    auto fault = std::make_unique<storage::FaultStorage>(**inner);
    auto* f = fault.get();
    auto to = Repository::Open(std::move(fault), "target pw");
    ASSERT_TRUE(to.ok());
    uint64_t before = f->total_calls();
    ASSERT_TRUE(CopySnapshots(*From(), **to, {.threads = 2}).ok());
    calls = f->total_calls() - before;
  }
  ASSERT_GT(calls, 20u);
  int failed_runs = 0;
  for (uint64_t n = 1; n <= calls; ++n) {
    std::string url = NewTarget("-" + std::to_string(n));
    {
      auto inner = storage::OpenStorage(url);
      auto fault = std::make_unique<storage::FaultStorage>(**inner);
      auto* f = fault.get();
      auto to = Repository::Open(std::move(fault), "target pw");
      ASSERT_TRUE(to.ok());
      ASSERT_TRUE(f->AddRule({.nth = n}).ok());
      auto res = CopySnapshots(*From(), **to, {.threads = 2});
      if (!res.ok()) ++failed_runs;
    }
    {
      // What the interrupted run left is consistent on its own.
      auto to = OpenAt(url, "target pw");
      auto check = Check(*to, {.read_data = true, .read_fraction = 1.0, .threads = 1});
      ASSERT_TRUE(check.ok());
      ASSERT_TRUE(check->ok()) << "fault at call " << n << ": " << check->errors[0];
    }
    auto res = CopySnapshots(*From(), *OpenAt(url, "target pw"), {.threads = 2});
    ASSERT_TRUE(res.ok()) << "rerun after a fault at call " << n << ": " << res.status().ToString();
    SCOPED_TRACE("fault at call " + std::to_string(n));
    ExpectSameSnapshots(*From(), *OpenAt(url, "target pw"));
  }
  EXPECT_GT(failed_runs, int(calls) / 2);
}

// Reads of the source that fail (a lost connection) stop the copy with the error; what it
// wrote is consistent, and the next copy completes.
TEST_P(CopyTest, SourceReadFailuresThenResumed) {
  {
    auto from = From();
    Backup(*from, 1, 4);
    Backup(*from, 2, 3);
  }
  for (uint64_t n : {1, 2, 5, 9, 14}) {
    std::string url = NewTarget("-" + std::to_string(n));
    {
      auto inner = storage::OpenStorage(from_url_);
      auto fault = std::make_unique<storage::FaultStorage>(**inner);
      auto* f = fault.get();
      auto from = Repository::Open(std::move(fault), "source pw");
      ASSERT_TRUE(from.ok());
      ASSERT_TRUE(f->AddRule({.op = storage::StorageOp::kGetRange, .nth = n, .code = Code::kUnavailable}).ok());
      auto res = CopySnapshots(**from, *OpenAt(url, "target pw"), {.threads = 2});
      ASSERT_FALSE(res.ok()) << "no failure with a fault at read " << n;
      EXPECT_EQ(res.status().code(), Code::kUnavailable) << res.status().ToString();
      auto check = Check(*OpenAt(url, "target pw"), {.read_data = true, .read_fraction = 1.0, .threads = 1});
      ASSERT_TRUE(check.ok());
      EXPECT_TRUE(check->ok()) << check->errors[0];
    }
    ASSERT_TRUE(CopySnapshots(*From(), *OpenAt(url, "target pw"), {}).ok());
    SCOPED_TRACE("fault at source read " + std::to_string(n));
    ExpectSameSnapshots(*From(), *OpenAt(url, "target pw"));
  }
}

// A wrong password for the source fails before either repository is touched.
TEST_P(CopyTest, WrongSourcePasswordWritesNothing) {
  auto from = From();
  Backup(*from, 1, 1);
  std::string to_url = NewTarget();
  size_t before = Count(to_url, "");
  auto st = storage::OpenStorage(from_url_);
  auto wrong = Repository::Open(std::move(*st), "not the source pw");
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), Code::kWrongKey);
  EXPECT_EQ(ExitCodeFor(wrong.status().code()), 4);
  EXPECT_EQ(Count(to_url, ""), before);
}

// The target forgets its copy and prunes the data away; the id map (translated) and the
// index (shared ids) must not make the next copy skip blobs the target no longer has.
TEST_P(CopyTest, CopyAfterTheTargetPrunedTheData) {
  auto from = From();
  Backup(*from, 1);
  std::string to_url = NewTarget();
  ASSERT_TRUE(CopySnapshots(*from, *OpenAt(to_url, "target pw"), {}).ok());
  {
    auto to = OpenAt(to_url, "target pw");
    std::vector<crypto::Id> ids;
    auto snaps = ListSnapshots(*to).value();
    for (const auto& s : snaps) ids.push_back(s.id);
    ASSERT_TRUE(ForgetSnapshots(*to, ids).ok());
    auto pruned = Prune(*to, {});
    ASSERT_TRUE(pruned.ok()) << pruned.status().ToString();
    ASSERT_GT(pruned->packs_deleted, 0u);
  }
  auto res = CopySnapshots(*From(), *OpenAt(to_url, "target pw"), {});
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->snapshots_copied, 1u);
  EXPECT_EQ(res->blobs_present, 0u);
  ExpectSameSnapshots(*From(), *OpenAt(to_url, "target pw"));
}

// Every translated copy that stores blobs adds a map file; the copy that finds too many
// merges them into one, and the merged map still saves the reads.
TEST_P(CopyTest, ManyMapFilesAreMerged) {
  if (GetParam() == Ids::kShared) GTEST_SKIP() << "copies with shared ids keep no map";
  std::string to_url = NewTarget();
  for (uint64_t seed = 1; seed <= 34; ++seed) {
    auto from = From();
    Snapshot s = Backup(*from, seed, 1);
    auto res = CopySnapshots(*from, *OpenAt(to_url, "target pw"), {.snapshots = {s.id.Hex()}});
    ASSERT_TRUE(res.ok()) << res.status().ToString();
  }
  // The 34th copy found 33 files, merged them and added its own.
  EXPECT_EQ(Count(to_url, "copy/"), 2u);
  // A new snapshot of old content reads nothing but its trees.
  auto from = From();
  Backup(*from, 5, 1, {"again"});
  auto res = CopySnapshots(*from, *OpenAt(to_url, "target pw"), {});
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->snapshots_copied, 1u);
  EXPECT_EQ(res->blobs_copied, 0u) << "the trees and data are the same as seed 5's";
  EXPECT_EQ(res->blobs_present, 3u * 2 + 3);
  ExpectSameSnapshots(*From(), *OpenAt(to_url, "target pw"));
}

// Named objects (the WAL archive's form): what the target lacks is copied, what it has is
// left alone, and a name that appears meanwhile with other content is refused.
TEST_P(CopyTest, NamedObjects) {
  auto from = From();
  for (int i = 1; i <= 20; ++i) {
    Bytes seg = Data(uint64_t(i), 20000);
    ASSERT_TRUE(from->PutNamed(fmt::format("wal/main/00000001/{:024X}", i), seg, 1, true).ok());
  }
  ASSERT_TRUE(from->PutNamed("wal/other/x", Data(99), 1, true).ok());
  std::string to_url = NewTarget();
  auto to = OpenAt(to_url, "target pw");
  // The target has one segment already, with the same content.
  ASSERT_TRUE(to->PutNamed(fmt::format("wal/main/00000001/{:024X}", 1), Data(1, 20000), 0, true).ok());
  auto res = CopyNamedObjects(*from, *to, "wal/main/", {.dry_run = true});
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->objects_copied, 19u);
  EXPECT_EQ(Count(to_url, "wal/"), 1u);
  res = CopyNamedObjects(*from, *to, "wal/main/",
                         {.threads = 4, .select = [](const std::string& n) {
                            return n.back() != '7';  // leave one out
                          }});
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->objects_copied, 18u);
  EXPECT_EQ(res->objects_present, 1u);
  EXPECT_EQ(res->objects_skipped, 1u);
  EXPECT_GT(res->bytes_written, 0u);
  for (int i = 1; i <= 20; ++i) {
    std::string name = fmt::format("wal/main/00000001/{:024X}", i);
    auto got = to->GetNamed(name);
    if (i == 7) {
      EXPECT_EQ(got.status().code(), Code::kNotFound);
      continue;
    }
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(*got, Data(uint64_t(i), 20000));
  }
  EXPECT_EQ(to->GetNamed("wal/other/x").status().code(), Code::kNotFound);
  auto again = CopyNamedObjects(*from, *to, "wal/main/", {});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->objects_copied, 1u);
  EXPECT_EQ(again->objects_present, 19u);

  // Appearing in the target between its listing and the write: same content is fine...
  ASSERT_TRUE(from->PutNamed("wal/main/00000001/A1", Data(1), 1, true).ok());
  ASSERT_TRUE(from->PutNamed("wal/main/00000001/A2", Data(2), 1, true).ok());
  // Puts `content` under `name` into the target when the copy's listing of the source shows
  // the name (the target was listed before), and leaves `skip` out.
  auto sneak = [&](std::string name, Bytes content, std::string skip) {
    return [&to, name, content, skip](const std::string& n) {
      if (n == name) {
        EXPECT_TRUE(to->PutNamed(name, content, 3, true).ok());
      }
      return n != skip;
    };
  };
  auto same = CopyNamedObjects(
      *from, *to, "wal/main/",
      {.select = sneak("wal/main/00000001/A1", Data(1), "wal/main/00000001/A2")});
  ASSERT_TRUE(same.ok()) << same.status().ToString();
  EXPECT_EQ(same->objects_present, 21u);
  EXPECT_EQ(same->objects_copied, 0u);
  // ... different content is refused, naming the object.
  auto other = CopyNamedObjects(*from, *to, "wal/main/",
                                {.select = sneak("wal/main/00000001/A2", Data(3), "")});
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), Code::kAlreadyExists);
  EXPECT_NE(other.status().message().find("wal/main/00000001/A2"), std::string::npos);
}

}  // namespace
}  // namespace lb::repo
