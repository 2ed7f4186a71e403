#include "repo/copy.h"

#include <algorithm>
#include <cstring>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "repo/names.h"
#include "repo/tree.h"
#include "util/log.h"
#include "util/thread_pool.h"

namespace lb::repo {

namespace {

using IdSet = std::unordered_set<crypto::Id, crypto::IdHash>;

// Id map files (docs/repository-format.md, "Copies").
constexpr uint32_t kMapMagic = 0x4D43424C;  // "LBCM"
constexpr uint8_t kMapVersion = 1;
constexpr size_t kMapHeaderSize = 12;
constexpr size_t kMapEntrySize = 64;
// More map files than this are merged into one by the next copy that finds them: loading
// costs one read per file.
constexpr size_t kMapFilesBeforeMerge = 32;
// While a snapshot is copied, a map file is written whenever this many entries wait
// (~1 MiB of map) or this much data was read since the last one, so a copy killed halfway
// through a large snapshot does not read again what it already stored. Each map file costs
// the next copy one read until it merges them: about 2000 per TiB copied.
constexpr size_t kMapCheckpointEntries = 16384;
constexpr uint64_t kMapCheckpointBytes = 512u << 20;
// Blobs to read are collected into batches and grouped by pack, so neighbours in a pack are
// read with one request.
constexpr size_t kBatchBlobs = 512;
constexpr uint64_t kBatchBytes = 64u << 20;
// One request covers blobs of one pack whose gaps are at most kMaxGap, up to kMaxSpan bytes
// (one pack of the default size): gaps are read and thrown away, which costs less than a
// request each on S3.
constexpr uint64_t kMaxGap = 256u << 10;
constexpr uint64_t kMaxSpan = 16u << 20;
// Trees a translated copy keeps between its two passes; beyond this they are read again.
constexpr size_t kTreeCacheBytes = 64u << 20;

std::string MapDir(const Repository& from) { return "copy/" + from.config().id; }

bool SameRepository(const Repository& a, const Repository& b) {
  return a.config().id == b.config().id;
}

// Source blob id → target blob id for a copy between repositories whose id keys differ: the
// map files of earlier copies (sorted, merged in memory) and what this copy adds.
// Thread-safe.
class IdMap {
 public:
  struct Entry {
    crypto::Id src, tgt;
  };

  // Reads every map file under `dir`; damaged ones are skipped with a warning (the map only
  // saves reads). With `may_merge`, more than kMapFilesBeforeMerge files are merged into one
  // that keeps only entries whose target blob `to_index` still lists.
  Status Load(Repository& to, std::string dir, bool may_merge, const Index& to_index) {
    dir_ = std::move(dir);
    std::vector<crypto::Id> files;
    LB_RETURN_IF_ERROR(to.storage().List(dir_ + "/", [&](const storage::ObjectInfo& o) {
      crypto::Id id;
      if (IdFromName(o.name, id)) files.push_back(id);
      return Status::Ok();
    }));
    for (const auto& f : files) {
      auto plain = to.LoadFile(dir_, f);
      Status s = plain.ok() ? Decode(*plain, base_) : plain.status();
      if (s.code() == Code::kNotFound) continue;  // merged away by a concurrent copy
      if (!s.ok()) {
        if (s.code() != Code::kCorruption) return s.WithContext("read copy map");
        LogWarning("copy map {}/{} skipped: {}", dir_, f.Short(), s.ToString());
      }
    }
    std::sort(base_.begin(), base_.end(),
              [](const Entry& a, const Entry& b) { return a.src < b.src; });
    base_.erase(std::unique(base_.begin(), base_.end(),
                            [](const Entry& a, const Entry& b) { return a.src == b.src; }),
                base_.end());
    if (!may_merge || files.size() <= kMapFilesBeforeMerge) return Status::Ok();
    // Entries of blobs a prune has removed since are dropped on the way.
    std::vector<Entry> live;
    for (const auto& e : base_)
      if (to_index.Has(e.tgt)) live.push_back(e);
    Bytes merged = Encode(live);
    LB_RETURN_IF_ERROR(to.SaveFile(dir_, merged).status().WithContext("write copy map"));
    // Only the files read above go: a concurrent copy's new file stays.
    for (const auto& f : files) {
      Status s = to.storage().Remove(dir_ + "/" + f.Hex());
      if (!s.ok() && s.code() != Code::kNotFound)
        LogWarning("remove merged copy map {}: {}", f.Short(), s.ToString());
    }
    base_ = std::move(live);
    return Status::Ok();
  }

  std::optional<crypto::Id> Find(const crypto::Id& src) const {
    auto it = std::lower_bound(base_.begin(), base_.end(), src,
                               [](const Entry& e, const crypto::Id& id) { return e.src < id; });
    if (it != base_.end() && it->src == src) return it->tgt;
    std::lock_guard lock(mu_);
    auto a = added_.find(src);
    if (a != added_.end()) return a->second;
    return std::nullopt;
  }

  void Add(const crypto::Id& src, const crypto::Id& tgt) {
    std::lock_guard lock(mu_);
    if (added_.emplace(src, tgt).second) unsaved_.push_back({src, tgt});
  }

  size_t unsaved() const {
    std::lock_guard lock(mu_);
    return unsaved_.size();
  }

  // Writes one map file with the unsaved entries whose target blob is durable (`durable`;
  // empty: all of them, after a flush); the others wait for a later call.
  Status Save(Repository& to, const std::function<bool(const crypto::Id&)>& durable) {
    std::vector<Entry> out;
    {
      std::lock_guard lock(mu_);
      std::vector<Entry> wait;
      for (const auto& e : unsaved_) (!durable || durable(e.tgt) ? out : wait).push_back(e);
      unsaved_.swap(wait);
    }
    if (out.empty()) return Status::Ok();
    std::sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) { return a.src < b.src; });
    return to.SaveFile(dir_, Encode(out)).status().WithContext("write copy map");
  }

 private:
  static Bytes Encode(const std::vector<Entry>& entries) {
    Bytes out;
    out.reserve(kMapHeaderSize + entries.size() * kMapEntrySize);
    PutU32(out, kMapMagic);
    out.push_back(kMapVersion);
    out.insert(out.end(), 3, 0);
    PutU32(out, uint32_t(entries.size()));
    for (const auto& e : entries) {
      out.insert(out.end(), e.src.bytes.begin(), e.src.bytes.end());
      out.insert(out.end(), e.tgt.bytes.begin(), e.tgt.bytes.end());
    }
    return out;
  }

  static Status Decode(ByteSpan b, std::vector<Entry>& out) {
    if (b.size() < kMapHeaderSize || GetU32(b.data()) != kMapMagic)
      return Err(Code::kCorruption, "not a copy map");
    if (b[4] != kMapVersion) return Err(Code::kCorruption, "copy map version {}", b[4]);
    uint64_t n = GetU32(b.data() + 8);
    if (b.size() != kMapHeaderSize + n * kMapEntrySize)
      return Err(Code::kCorruption, "copy map of {} bytes cannot hold {} entries", b.size(), n);
    const uint8_t* p = b.data() + kMapHeaderSize;
    for (uint64_t i = 0; i < n; ++i, p += kMapEntrySize) {
      Entry e;
      std::memcpy(e.src.bytes.data(), p, 32);
      std::memcpy(e.tgt.bytes.data(), p + 32, 32);
      out.push_back(e);
    }
    return Status::Ok();
  }

  std::string dir_;
  std::vector<Entry> base_;  // sorted by src; written only by Load
  mutable std::mutex mu_;
  std::unordered_map<crypto::Id, crypto::Id, crypto::IdHash> added_;  // guarded by mu_
  std::vector<Entry> unsaved_;                                        // guarded by mu_
};

// One CopySnapshots run. Trees are walked on the calling thread; data blobs the target lacks
// are read, grouped by pack, and stored by a pool of workers.
class Copier {
 public:
  Copier(Repository& from, Repository& to, const CopyOptions& opts)
      : from_(from), to_(to), opts_(opts) {}
  ~Copier() {
    // Workers use everything else: they finish (or skip their task) first.
    pool_.reset();
  }

  Result<CopyResult> Run();

 private:
  struct Pending {
    crypto::Id id;
    BlobLocation loc;
  };

  Status Prepare();
  Status CopyOne(const Snapshot& s, std::optional<crypto::Id> parent, CopiedSnapshot& out);
  // Reads every tree below `root` not seen before in this run (appending them to
  // `post_order`, children first) and queues the data blobs the target lacks.
  Status Walk(const crypto::Id& root, std::vector<crypto::Id>& post_order);
  Status NeedData(const crypto::Id& id);
  void SubmitBatch();
  void ReadGroup(const std::vector<Pending>& group);
  // Translated copies: the trees of `post_order` with target ids, bottom-up.
  Status Rebuild(const std::vector<crypto::Id>& post_order);
  Result<Bytes> LoadSourceTree(const crypto::Id& id);
  void SetError(const Status& s);
  Status error() {
    std::lock_guard lock(mu_);
    return error_;
  }
  void AddRead(uint64_t n) {
    bytes_read_ += n;
    if (opts_.progress) opts_.progress->bytes_read += n;
  }

  Repository& from_;
  Repository& to_;
  const CopyOptions& opts_;
  bool same_ids_ = false;
  Index* from_index_ = nullptr;
  Index* to_index_ = nullptr;
  IdMap map_;
  IdSet visited_trees_;  // source trees handled in this run
  std::unordered_map<crypto::Id, crypto::Id, crypto::IdHash> tree_map_;  // translated trees
  IdSet queued_;  // source data blobs queued (or, dry run, counted) in this run
  std::vector<Pending> batch_;
  uint64_t batch_bytes_ = 0;
  std::unordered_map<crypto::Id, Bytes, crypto::IdHash> tree_cache_;
  size_t tree_cache_bytes_ = 0;
  uint64_t blobs_present_ = 0;
  uint64_t dry_blobs_ = 0, dry_bytes_ = 0;
  std::atomic<uint64_t> bytes_read_{0};
  uint64_t checkpoint_read_ = 0;  // bytes_read_ at the last map checkpoint
  std::atomic<bool> failed_{false};
  std::mutex mu_;
  Status error_;  // guarded by mu_: the first error of a worker
  std::unique_ptr<BlobWriter> writer_;
  std::unique_ptr<ThreadPool> pool_;  // last: destroyed first
};

void Copier::SetError(const Status& s) {
  {
    std::lock_guard lock(mu_);
    if (error_.ok()) error_ = s;
  }
  failed_ = true;
  // Blobs reserved but never stored must fail the flush.
  if (writer_) writer_->Fail(s);
}

Status Copier::Prepare() {
  LB_ASSIGN_OR_RETURN(from_index_, from_.index());
  LB_ASSIGN_OR_RETURN(to_index_, to_.index());
  if (!same_ids_) LB_RETURN_IF_ERROR(map_.Load(to_, MapDir(from_), !opts_.dry_run, *to_index_));
  if (opts_.dry_run) return Status::Ok();
  writer_ = std::make_unique<BlobWriter>(to_);
  size_t threads = opts_.threads ? opts_.threads : ThreadPool::DefaultThreads();
  // A short queue: each queued group becomes one read range in memory once it runs.
  pool_ = std::make_unique<ThreadPool>(threads, threads);
  return Status::Ok();
}

Result<Bytes> Copier::LoadSourceTree(const crypto::Id& id) {
  auto loc = from_index_->FindAny(id);
  if (!loc) return Err(Code::kCorruption, "tree {} is not in the source's index", id.Short());
  AddRead(loc->length);
  auto b = from_.LoadBlobAt(id, *loc);
  if (!b.ok()) return b.status().WithContext(fmt::format("read '{}' of the source", PackName(loc->pack)));
  return b;
}

Status Copier::NeedData(const crypto::Id& id) {
  if (opts_.dry_run) {
    bool present = false;
    if (same_ids_) {
      present = to_index_->Has(id);
    } else {
      auto tgt = map_.Find(id);
      present = tgt && to_index_->Has(*tgt);
    }
    if (present) {
      blobs_present_++;
    } else if (queued_.insert(id).second) {
      auto loc = from_index_->FindAny(id);
      dry_blobs_++;
      dry_bytes_ += loc ? loc->raw_length : 0;
    }
    return Status::Ok();
  }
  if (same_ids_) {
    if (queued_.count(id)) return Status::Ok();  // referenced again in this run
    // Claimed here, stored by a worker: the target's index has it, or it is new.
    LB_ASSIGN_OR_RETURN(bool fresh, writer_->Reserve(id));
    if (!fresh) {
      blobs_present_++;
      return Status::Ok();
    }
    queued_.insert(id);
  } else {
    if (queued_.count(id)) return Status::Ok();  // referenced again in this run
    auto tgt = map_.Find(id);
    if (tgt && writer_->Known(*tgt)) {
      blobs_present_++;
      return Status::Ok();
    }
    queued_.insert(id);
  }
  auto loc = from_index_->FindAny(id);
  if (!loc) {
    Status s = Err(Code::kCorruption, "data blob {} is not in the source's index", id.Short());
    SetError(s);
    return s;
  }
  batch_.push_back({id, *loc});
  batch_bytes_ += loc->length;
  if (batch_.size() >= kBatchBlobs || batch_bytes_ >= kBatchBytes) SubmitBatch();
  return Status::Ok();
}

void Copier::SubmitBatch() {
  std::sort(batch_.begin(), batch_.end(), [](const Pending& a, const Pending& b) {
    return a.loc.pack != b.loc.pack ? a.loc.pack < b.loc.pack : a.loc.offset < b.loc.offset;
  });
  for (size_t i = 0; i < batch_.size();) {
    uint64_t start = batch_[i].loc.offset;
    uint64_t end = start + batch_[i].loc.length;
    size_t j = i + 1;
    while (j < batch_.size() && batch_[j].loc.pack == batch_[i].loc.pack &&
           batch_[j].loc.offset <= end + kMaxGap &&
           std::max<uint64_t>(end, uint64_t(batch_[j].loc.offset) + batch_[j].loc.length) -
                   start <= kMaxSpan) {
      end = std::max<uint64_t>(end, uint64_t(batch_[j].loc.offset) + batch_[j].loc.length);
      ++j;
    }
    std::vector<Pending> group(batch_.begin() + long(i), batch_.begin() + long(j));
    pool_->Submit([this, g = std::move(group)] { ReadGroup(g); });
    i = j;
  }
  batch_.clear();
  batch_bytes_ = 0;
}

void Copier::ReadGroup(const std::vector<Pending>& group) {
  if (failed_) return;
  const crypto::Id& pack = group.front().loc.pack;
  std::string name = PackName(pack);
  uint64_t start = group.front().loc.offset, end = start;
  for (const auto& p : group) end = std::max<uint64_t>(end, uint64_t(p.loc.offset) + p.loc.length);
  auto range = from_.storage().GetRange(name, start, end - start);
  if (!range.ok()) {
    SetError(range.status().WithContext(fmt::format("read '{}' of the source", name)));
    return;
  }
  AddRead(end - start);
  thread_local Bytes resealed;
  for (const auto& p : group) {
    if (failed_) return;
    ByteSpan sealed(range->data() + (p.loc.offset - start), p.loc.length);
    if (same_ids_) {
      resealed.clear();
      auto raw = ResealBlob(from_.key().enc, from_.key().id, to_.key().enc, p.id, sealed, resealed);
      if (!raw.ok()) {
        SetError(raw.status().WithContext(fmt::format("'{}' of the source", name)));
        return;
      }
      Status s = writer_->StoreReservedSealed(BlobType::kData, p.id, resealed, *raw);
      if (!s.ok()) {
        SetError(s);
        return;
      }
    } else {
      auto plain = OpenBlob(from_.key().enc, from_.key().id, p.id, sealed);
      if (!plain.ok()) {
        SetError(plain.status().WithContext(
            fmt::format("'{}' of the source, blob {}", name, p.id.Short())));
        return;
      }
      crypto::Id tgt = to_.BlobId(*plain);
      auto fresh = writer_->Save(BlobType::kData, tgt, *plain);
      if (!fresh.ok()) {
        SetError(fresh.status());
        return;
      }
      map_.Add(p.id, tgt);
    }
  }
  if (resealed.capacity() > (16u << 20)) Bytes().swap(resealed);
  if (opts_.progress) opts_.progress->bytes_written = writer_->stats().bytes_new_stored;
}

Status Copier::Walk(const crypto::Id& root, std::vector<crypto::Id>& post_order) {
  // (tree, children done): a tree is appended to post_order when popped the second time.
  std::vector<std::pair<crypto::Id, bool>> stack{{root, false}};
  while (!stack.empty()) {
    if (failed_) return error();
    auto [t, done] = stack.back();
    stack.pop_back();
    if (done) {
      post_order.push_back(t);
      continue;
    }
    if (!visited_trees_.insert(t).second) continue;
    LB_ASSIGN_OR_RETURN(Bytes blob, LoadSourceTree(t));
    auto nodes = DecodeTree(blob);
    if (!nodes.ok()) return nodes.status().WithContext(fmt::format("source tree {}", t.Short()));
    if (opts_.dry_run) {
      // A translated tree gets its target id only once its data is translated: counted as
      // missing (an upper bound).
      if (!same_ids_ || !to_index_->Has(t)) {
        dry_blobs_++;
        dry_bytes_ += blob.size();
      }
    } else if (same_ids_) {
      // Ids agree: the tree is stored as it is, sealed with the target's key.
      LB_ASSIGN_OR_RETURN(bool fresh, writer_->Reserve(t));
      if (fresh) LB_RETURN_IF_ERROR(writer_->StoreReserved(BlobType::kTree, t, blob));
    }
    for (const auto& n : *nodes)
      for (const auto& c : n.content) LB_RETURN_IF_ERROR(NeedData(c));
    stack.push_back({t, true});
    for (const auto& n : *nodes)
      if (n.type == NodeType::kDir) stack.push_back({n.subtree, false});
    if (!same_ids_ && !opts_.dry_run && tree_cache_bytes_ + blob.size() <= kTreeCacheBytes) {
      tree_cache_bytes_ += blob.size();
      tree_cache_.emplace(t, std::move(blob));
    }
    if (!same_ids_ && !opts_.dry_run &&
        (map_.unsaved() >= kMapCheckpointEntries ||
         bytes_read_ - checkpoint_read_ >= kMapCheckpointBytes)) {
      // Only entries whose blob is in a durable pack: a pack still being filled may be lost.
      checkpoint_read_ = bytes_read_;
      LB_RETURN_IF_ERROR(map_.Save(to_, [&](const crypto::Id& id) { return to_index_->Has(id); }));
    }
  }
  return Status::Ok();
}

Status Copier::Rebuild(const std::vector<crypto::Id>& post_order) {
  for (const auto& t : post_order) {
    Bytes blob;
    if (auto it = tree_cache_.find(t); it != tree_cache_.end()) {
      blob = std::move(it->second);
      tree_cache_bytes_ -= blob.size();
      tree_cache_.erase(it);
    } else {
      LB_ASSIGN_OR_RETURN(blob, LoadSourceTree(t));
    }
    LB_ASSIGN_OR_RETURN(auto nodes, DecodeTree(blob));
    for (auto& n : nodes) {
      for (auto& c : n.content) {
        auto tgt = map_.Find(c);
        if (!tgt) return Err(Code::kInternal, "blob {} was not translated", c.Short());
        c = *tgt;
      }
      if (n.type == NodeType::kDir) {
        auto it = tree_map_.find(n.subtree);
        if (it == tree_map_.end())
          return Err(Code::kInternal, "tree {} was not translated", n.subtree.Short());
        n.subtree = it->second;
      }
    }
    Bytes encoded = EncodeTree(nodes);
    crypto::Id tgt = to_.BlobId(encoded);
    LB_RETURN_IF_ERROR(writer_->Save(BlobType::kTree, tgt, encoded).status());
    tree_map_[t] = tgt;
  }
  return Status::Ok();
}

Status Copier::CopyOne(const Snapshot& s, std::optional<crypto::Id> parent,
                       CopiedSnapshot& out) {
  uint64_t read0 = bytes_read_, dry_blobs0 = dry_blobs_, dry_bytes0 = dry_bytes_;
  WriterStats w0 = writer_ ? writer_->stats() : WriterStats{};
  std::vector<crypto::Id> post_order;
  Status walked = Walk(s.tree, post_order);
  if (opts_.dry_run) {
    LB_RETURN_IF_ERROR(walked);
    out.blobs = dry_blobs_ - dry_blobs0;
    out.bytes_read = dry_bytes_ - dry_bytes0;
    return Status::Ok();
  }
  if (walked.ok()) SubmitBatch();
  pool_->Wait();  // also after a failed walk: no worker may still use this snapshot's state
  LB_RETURN_IF_ERROR(walked);
  LB_RETURN_IF_ERROR(error());
  crypto::Id root = s.tree;
  if (!same_ids_) {
    LB_RETURN_IF_ERROR(Rebuild(post_order));
    root = tree_map_.at(s.tree);
  }
  // Packs, then the index that lists them, then the map, then the snapshot.
  LB_RETURN_IF_ERROR(writer_->Flush());
  if (!same_ids_) LB_RETURN_IF_ERROR(map_.Save(to_, {}));
  Snapshot c = s;
  c.original = OriginalId(s);
  c.tree = root;
  c.parent = parent;
  LB_ASSIGN_OR_RETURN(out.target_id, SaveSnapshot(to_, c));
  WriterStats w1 = writer_->stats();
  out.blobs = w1.blobs_new - w0.blobs_new;
  out.bytes_read = bytes_read_ - read0;
  out.bytes_written = w1.bytes_new_stored - w0.bytes_new_stored;
  return Status::Ok();
}

Result<CopyResult> Copier::Run() {
  if (SameRepository(from_, to_))
    return Err(Code::kInvalidArgument, "the source and the target are the same repository");
  CopyResult res;
  // Compared in memory only; the keys are never printed.
  same_ids_ = crypto::Equal(from_.key().id.bytes, to_.key().id.bytes);
  res.same_id_key = same_ids_;

  std::vector<DamagedSnapshot> damaged;
  LB_ASSIGN_OR_RETURN(auto all, ListSnapshots(from_, &damaged));
  IdSet named;
  for (const auto& ref : opts_.snapshots) {
    LB_ASSIGN_OR_RETURN(Snapshot s, FindSnapshot(from_, ref));
    named.insert(s.id);
  }
  if (opts_.snapshots.empty()) res.damaged = std::move(damaged);
  res.snapshots_damaged = res.damaged.size();

  std::vector<DamagedSnapshot> target_damaged;
  LB_ASSIGN_OR_RETURN(auto existing, ListSnapshots(to_, &target_damaged));
  for (const auto& d : target_damaged)
    LogWarning("target snapshot {} is unreadable ({}); the snapshot it holds may be copied again",
               d.id.substr(0, 8), d.error.ToString());
  // The target's snapshots by the original they stand for.
  std::unordered_map<crypto::Id, crypto::Id, crypto::IdHash> have;
  for (const auto& t : existing) have.emplace(OriginalId(t), t.id);
  std::unordered_map<crypto::Id, const Snapshot*, crypto::IdHash> source_by_id;
  for (const auto& s : all) source_by_id.emplace(s.id, &s);

  std::vector<const Snapshot*> to_copy;
  for (const auto& s : all) {
    if (!named.empty() && !named.count(s.id)) continue;
    if (!opts_.filter.Matches(s) || s.time_ns < opts_.since_ns) continue;
    res.snapshots_selected++;
    if (have.count(OriginalId(s))) {
      res.snapshots_skipped++;
      res.skipped.push_back(s);
    } else {
      to_copy.push_back(&s);
    }
  }
  if (opts_.progress) opts_.progress->snapshots_total += to_copy.size();
  if (to_copy.empty()) return res;

  LB_RETURN_IF_ERROR(Prepare());
  for (const Snapshot* s : to_copy) {
    // The parent becomes the target's copy of it, when the target has one.
    std::optional<crypto::Id> parent;
    if (s->parent) {
      auto p = source_by_id.find(*s->parent);
      if (p != source_by_id.end()) {
        auto h = have.find(OriginalId(*p->second));
        if (h != have.end()) parent = h->second;
      }
    }
    CopiedSnapshot c;
    c.source = *s;
    LB_RETURN_IF_ERROR(
        CopyOne(*s, parent, c).WithContext(fmt::format("copy snapshot {}", s->id.Short())));
    if (!opts_.dry_run) have.emplace(OriginalId(*s), c.target_id);
    res.snapshots_copied++;
    if (opts_.progress) opts_.progress->snapshots_done++;
    if (opts_.on_snapshot) opts_.on_snapshot(c);
    res.copied.push_back(std::move(c));
  }
  res.blobs_present = blobs_present_;
  if (opts_.dry_run) {
    res.blobs_copied = dry_blobs_;
    res.bytes_read = dry_bytes_;
  } else {
    WriterStats w = writer_->stats();
    res.blobs_copied = w.blobs_new;
    res.bytes_written = w.bytes_new_stored;
    res.bytes_read = bytes_read_;
  }
  return res;
}

}  // namespace

Result<CopyResult> CopySnapshots(Repository& from, Repository& to, const CopyOptions& opts) {
  Copier copier(from, to, opts);
  return copier.Run();
}

Result<NamedCopyResult> CopyNamedObjects(Repository& from, Repository& to,
                                         const std::string& prefix,
                                         const NamedCopyOptions& opts) {
  if (SameRepository(from, to))
    return Err(Code::kInvalidArgument, "the source and the target are the same repository");
  NamedCopyResult res;
  std::unordered_set<std::string> have;
  LB_RETURN_IF_ERROR(to.storage().List(prefix, [&](const storage::ObjectInfo& o) {
    have.insert(o.name);
    return Status::Ok();
  }));
  std::vector<storage::ObjectInfo> missing;
  LB_RETURN_IF_ERROR(from.storage().List(prefix, [&](const storage::ObjectInfo& o) {
    if (opts.select && !opts.select(o.name)) res.objects_skipped++;
    else if (have.count(o.name)) res.objects_present++;
    else missing.push_back(o);
    return Status::Ok();
  }));
  // Oldest WAL first, so an interrupted copy leaves the target's archive without gaps
  // except near where it stopped.
  std::sort(missing.begin(), missing.end(),
            [](const storage::ObjectInfo& a, const storage::ObjectInfo& b) { return a.name < b.name; });
  if (opts.progress) opts.progress->objects_total += missing.size();
  if (opts.dry_run) {
    res.objects_copied = missing.size();
    for (const auto& o : missing) res.bytes_read += o.size;
    return res;
  }

  std::mutex mu;
  Status first_error;  // guarded by mu
  std::atomic<bool> failed{false};
  auto fail = [&](const Status& s) {
    std::lock_guard lock(mu);
    if (first_error.ok()) first_error = s;
    failed = true;
  };
  {
    size_t threads = opts.threads ? opts.threads : ThreadPool::DefaultThreads();
    ThreadPool pool(threads, threads);
    for (const auto& o : missing) {
      if (failed) break;
      pool.Submit([&, name = o.name] {
        if (failed) return;
        auto payload = from.GetNamedPayload(name);
        if (!payload.ok()) {
          fail(payload.status().WithContext(fmt::format("read '{}' of the source", name)));
          return;
        }
        uint64_t read = payload->size() + crypto::kSealOverhead;
        Status s = to.PutNamedPayload(name, *payload, true);
        bool present = false;
        if (s.code() == Code::kAlreadyExists) {
          // Written meanwhile (a concurrent copy, or the target's own archiver): the same
          // content is fine, different content is two histories under one name.
          auto ours = from.GetNamed(name);
          auto theirs = to.GetNamed(name);
          if (!ours.ok()) s = ours.status().WithContext(fmt::format("read '{}' of the source", name));
          else if (!theirs.ok()) s = theirs.status().WithContext(fmt::format("read '{}' of the target", name));
          else if (*ours == *theirs) present = true;
          else
            s = Status(Code::kAlreadyExists,
                       fmt::format("'{}' exists in the target with different content", name))
                    .WithHint("the target holds another cluster's archive under this source "
                              "name; copy into another repository");
        }
        if (!s.ok() && !present) {
          fail(s);
          return;
        }
        std::lock_guard lock(mu);
        res.bytes_read += read;
        if (present) {
          res.objects_present++;
        } else {
          res.objects_copied++;
          res.bytes_written += read;
        }
        if (opts.progress) {
          opts.progress->objects_done++;
          opts.progress->bytes_read += read;
          if (!present) opts.progress->bytes_written += read;
        }
      });
    }
    pool.Wait();
  }
  if (!first_error.ok()) return first_error;
  return res;
}

}  // namespace lb::repo
