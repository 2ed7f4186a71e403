#include "repo/prune.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "repo/lock.h"
#include "repo/names.h"
#include "repo/snapshot.h"
#include "repo/tree.h"
#include "util/log.h"

namespace lb::repo {

namespace {

using IdSet = std::unordered_set<crypto::Id, crypto::IdHash>;

// Trees remembered as walked. The set is cleared when full: a tree met again after that is
// walked again (time, not correctness), so memory does not grow with the repository.
constexpr size_t kVisitedTrees = 65536;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Every blob (data and tree) some snapshot references, as a sorted set on scratch files.
// Trees are read through FindAny, so a snapshot of a backup that deduplicated against a
// condemned pack still counts.
Result<std::unique_ptr<IdSpill>> CollectReferenced(Repository& repo,
                                                   const std::vector<Snapshot>& snaps,
                                                   const PruneOptions& opts) {
  LB_ASSIGN_OR_RETURN(auto out, IdSpill::Create(repo.cache_dir() + "/scratch", opts.spill_batch));
  IdSet visited;
  std::vector<crypto::Id> stack;
  for (const auto& s : snaps) stack.push_back(s.tree);
  while (!stack.empty()) {
    crypto::Id t = stack.back();
    stack.pop_back();
    if (visited.count(t)) continue;
    if (visited.size() >= kVisitedTrees) visited.clear();
    visited.insert(t);
    LB_RETURN_IF_ERROR(out->Add(t));
    LB_ASSIGN_OR_RETURN(Bytes blob, repo.LoadBlob(t));
    LB_ASSIGN_OR_RETURN(auto nodes, DecodeTree(blob));
    for (const auto& n : nodes) {
      if (n.type == NodeType::kDir) stack.push_back(n.subtree);
      for (const auto& c : n.content) LB_RETURN_IF_ERROR(out->Add(c));
    }
  }
  LB_RETURN_IF_ERROR(out->Finish());
  return out;
}

// Groups a stream of index entries into runs of at most `max_entries` entries (65536 by
// default: about 3 MiB, the most prune holds of the index at once) and hands each
// sealed run to `store` as soon as it is full, so memory is one run whatever the input.
// A pack may be split across runs; readers merge runs (docs/repository-format.md, 5).
class RunWriter {
 public:
  using Store = std::function<Status(const crypto::Id& file_id, const Bytes& sealed)>;
  RunWriter(const MasterKey& key, size_t max_entries, Store store)
      : key_(key), max_entries_(std::max<size_t>(1, max_entries)), store_(std::move(store)) {}

  Status Add(const crypto::Id& blob, const BlobLocation& loc) {
    auto& p = packs_[loc.pack];
    p.id = loc.pack;
    p.type = loc.type;
    p.blobs.push_back({blob, loc.type, loc.offset, loc.length, loc.raw_length});
    if (++entries_ >= max_entries_) return Flush();
    return Status::Ok();
  }
  // A whole pack (possibly without blobs: listed in the pack table only).
  Status AddPack(IndexPack p) {
    entries_ += p.blobs.size();
    auto& slot = packs_[p.id];
    if (slot.blobs.empty()) {
      slot = std::move(p);
    } else {
      slot.blobs.insert(slot.blobs.end(), p.blobs.begin(), p.blobs.end());
    }
    if (entries_ >= max_entries_) return Flush();
    return Status::Ok();
  }
  Status Flush() {
    if (packs_.empty()) return Status::Ok();
    std::vector<IndexPack> packs;
    packs.reserve(packs_.size());
    for (auto& [id, p] : packs_) packs.push_back(std::move(p));
    packs_.clear();
    entries_ = 0;
    Bytes run = EncodeRun(packs);
    packs.clear();
    auto [id, sealed] = SealIndexFile(key_, run);
    ++runs_;
    return store_(id, sealed);
  }
  uint64_t runs() const { return runs_; }

 private:
  const MasterKey& key_;
  size_t max_entries_;
  Store store_;
  std::map<crypto::Id, IndexPack> packs_;
  size_t entries_ = 0;
  uint64_t runs_ = 0;
};

// A condemned/ object: "condemned/<state>-<id>", state "pending" while the live index is
// being rewritten, else the time (ns) the rewrite finished. One prune run writes several
// (one run of at most PruneOptions::run_entries entries each), all finalized with the same time.
struct Condemned {
  std::string name;
  bool pending = false;
  int64_t final_ns = 0;
  crypto::Id id;
};

Result<std::vector<Condemned>> ListCondemned(Repository& repo) {
  std::vector<Condemned> out;
  LB_RETURN_IF_ERROR(repo.storage().List("condemned/", [&](const storage::ObjectInfo& o) {
    std::string base = o.name.substr(10);
    size_t dash = base.rfind('-');
    if (dash == std::string::npos) return Status::Ok();
    Condemned c;
    c.name = o.name;
    std::string state = base.substr(0, dash);
    c.pending = state == "pending";
    if (!c.pending) {
      char* end = nullptr;
      c.final_ns = std::strtoll(state.c_str(), &end, 10);
      if (state.empty() || *end != '\0') return Status::Ok();
    }
    if (!crypto::Id::Parse(base.substr(dash + 1), c.id)) return Status::Ok();
    out.push_back(std::move(c));
    return Status::Ok();
  }));
  return out;
}

// The run of one condemned object (one RunWriter run).
Result<Bytes> LoadCondemnedRun(Repository& repo, const Condemned& c) {
  LB_ASSIGN_OR_RETURN(Bytes stored, repo.storage().Get(c.name));
  return OpenIndexFile(repo.key(), c.id, stored);
}

// The oldest live lock (other than prune's own) taken before `t_ns`: while it lives, packs
// condemned at t_ns may still be referenced by what its holder writes or reads.
std::optional<LockInfo> BlockingLock(storage::Storage& st, int64_t t_ns) {
  auto locks = ListLocks(st);
  if (!locks.ok()) {
    LockInfo unknown;  // cannot tell: assume a holder that blocks
    unknown.id = "?";
    unknown.purpose = locks.status().ToString();
    return unknown;
  }
  std::optional<LockInfo> oldest;
  for (const auto& l : *locks) {
    if (l.stale || l.purpose == "prune") continue;
    if (l.started_unix_ns < t_ns && (!oldest || l.started_unix_ns < oldest->started_unix_ns))
      oldest = l;
  }
  return oldest;
}

// Phase 2 for every finalized condemned object no running process can still need: deletes
// their packs unless the live index lists them again or a snapshot references a blob of
// theirs that the live index has no other copy of; those go back into the index. The
// objects of one prune run are always ready together (one time), so a pack split across
// them is judged on all its blobs.
Status FinishCondemned(Repository& repo, const PruneOptions& opts,
                       const std::vector<Condemned*>& ready,
                       const std::unordered_set<crypto::Id, crypto::IdHash>& live_packs,
                       const Index& live, IdSpill& referenced, PruneResult& res) {
  storage::Storage& st = repo.storage();
  std::set<crypto::Id> candidates, used;
  for (const Condemned* c : ready) {
    LB_ASSIGN_OR_RETURN(Bytes run_bytes, LoadCondemnedRun(repo, *c));
    LB_ASSIGN_OR_RETURN(IndexRun run, IndexRun::FromBytes(run_bytes));
    for (uint32_t i = 0; i < run.pack_count(); ++i) candidates.insert(run.PackId(i));
    for (uint32_t i = 0; i < run.entry_count(); ++i) {
      crypto::Id blob;
      BlobLocation loc;
      run.Entry(i, blob, loc);
      if (live_packs.count(loc.pack) || used.count(loc.pack)) continue;
      LB_ASSIGN_OR_RETURN(bool ref, referenced.Contains(blob));
      if (ref && !live.Has(blob)) used.insert(loc.pack);
    }
  }
  // Durable order: the index of resurrected packs first, then deletions, then the markers.
  if (!used.empty()) {
    RunWriter writer(repo.key(), opts.run_entries, [&](const crypto::Id& id, const Bytes& sealed) {
      res.index_files_written++;
      return st.Put(IndexName(id), sealed).WithContext("write index");
    });
    for (const Condemned* c : ready) {
      LB_ASSIGN_OR_RETURN(Bytes run_bytes, LoadCondemnedRun(repo, *c));
      LB_ASSIGN_OR_RETURN(IndexRun run, IndexRun::FromBytes(run_bytes));
      for (uint32_t i = 0; i < run.entry_count(); ++i) {
        crypto::Id blob;
        BlobLocation loc;
        run.Entry(i, blob, loc);
        if (used.count(loc.pack)) LB_RETURN_IF_ERROR(writer.Add(blob, loc));
      }
    }
    LB_RETURN_IF_ERROR(writer.Flush());
    res.packs_resurrected += used.size();
  }
  for (const auto& pid : candidates) {
    if (live_packs.count(pid) || used.count(pid)) continue;
    auto info = st.Stat(PackName(pid));
    Status s = st.Remove(PackName(pid));
    if (s.ok()) {
      res.packs_deleted++;
      if (info.ok()) res.bytes_deleted += info->size;
    } else if (s.code() != Code::kNotFound) {
      return s.WithContext(fmt::format("delete pack {}", pid.Short()));
    }
  }
  for (const Condemned* c : ready) {
    Status s = st.Remove(c->name);
    if (!s.ok() && s.code() != Code::kNotFound) return s.WithContext("remove condemned list");
  }
  return Status::Ok();
}

// Renames pending condemned objects to their final name with time `t_ns`: write the final
// copy, then remove the pending one (a crash in between leaves both; the next run finishes
// the final one and finalizes the pending one again, which is harmless).
Status Finalize(storage::Storage& st, Condemned& c, int64_t t_ns) {
  std::string final_name = fmt::format("condemned/{}-{}", t_ns, c.id.Hex());
  LB_ASSIGN_OR_RETURN(Bytes stored, st.Get(c.name));
  LB_RETURN_IF_ERROR(st.Put(final_name, stored).WithContext("finalize condemned list"));
  LB_RETURN_IF_ERROR(st.Remove(c.name));
  c.name = final_name;
  c.pending = false;
  c.final_ns = t_ns;
  return Status::Ok();
}

}  // namespace

Result<PruneResult> Prune(Repository& repo, const PruneOptions& opts) {
  PruneResult res;
  storage::Storage& st = repo.storage();
  const int64_t t_start = NowNs();

  // 0. Earlier runs: complete pending rewrites are redone below; finalized ones whose
  // blocking processes are gone are finished now.
  LB_ASSIGN_OR_RETURN(auto earlier, ListCondemned(repo));
  LB_ASSIGN_OR_RETURN(Index * idx, repo.index());

  // 1. What is referenced, what the packs hold.
  std::vector<DamagedSnapshot> damaged;
  LB_ASSIGN_OR_RETURN(auto snaps, ListSnapshots(repo, &damaged));
  if (!damaged.empty())
    return Status(Code::kFailedPrecondition,
                  fmt::format("snapshot {} is unreadable; prune would not know what it needs",
                              damaged[0].id.substr(0, 8)))
        .WithHint("run 'lifeboat check' and remove or repair the damaged snapshot first");
  res.snapshots = snaps.size();
  LB_ASSIGN_OR_RETURN(std::unique_ptr<IdSpill> referenced, CollectReferenced(repo, snaps, opts));

  std::unordered_set<crypto::Id, crypto::IdHash> already_condemned;
  for (const auto& c : earlier) {
    LB_ASSIGN_OR_RETURN(Bytes run_bytes, LoadCondemnedRun(repo, c));
    LB_ASSIGN_OR_RETURN(IndexRun run, IndexRun::FromBytes(run_bytes));
    for (uint32_t i = 0; i < run.pack_count(); ++i) already_condemned.insert(run.PackId(i));
  }

  // Per pack, not per blob: the index is walked in blob-id order beside the sorted
  // referenced set, so neither is ever held in memory.
  struct Usage {
    BlobType type = BlobType::kData;
    uint64_t used = 0, unused = 0;
  };
  std::unordered_map<crypto::Id, Usage, crypto::IdHash> usage;
  {
    IdSpill::Scan scan = referenced->Ids();
    crypto::Id ref;
    LB_ASSIGN_OR_RETURN(bool have, scan.Next(ref));
    LB_RETURN_IF_ERROR(idx->ForEachSorted([&](const crypto::Id& blob, const BlobLocation& loc) {
      while (have && ref < blob) {
        LB_ASSIGN_OR_RETURN(have, scan.Next(ref));
      }
      auto& u = usage[loc.pack];
      u.type = loc.type;
      if (have && ref == blob) {
        u.used += loc.length;
        res.blobs_referenced++;
      } else {
        u.unused += loc.length;
        res.blobs_unreferenced++;
      }
      return Status::Ok();
    }));
  }
  // Packs on storage but in no index: debris of interrupted backups, or packs a running
  // backup has not indexed yet. Condemned like the rest; the wait protects running backups.
  std::unordered_map<crypto::Id, uint64_t, crypto::IdHash> pack_sizes;
  LB_RETURN_IF_ERROR(st.List("data/", [&](const storage::ObjectInfo& o) {
    crypto::Id id;
    if (IdFromName(o.name, id)) pack_sizes[id] = o.size;
    return Status::Ok();
  }));
  res.packs_total = pack_sizes.size();
  std::vector<IndexPack> unindexed;  // with the blobs their headers list
  std::vector<crypto::Id> repack;
  std::unordered_set<crypto::Id, crypto::IdHash> dropped;  // indexed packs leaving the index
  for (const auto& [pid, size] : pack_sizes) {
    res.bytes_total += size;
    if (already_condemned.count(pid)) continue;
    auto it = usage.find(pid);
    if (it == usage.end()) {
      res.packs_unindexed++;
      res.bytes_unreferenced += size;
      // Its own header says what it holds, so the sweep can still tell whether a snapshot
      // references it (a backup that was running when it was condemned).
      IndexPack ip{pid, BlobType::kData, {}};
      uint64_t tail_len = std::min<uint64_t>(size, 256 * 1024);
      auto tail = st.GetRange(PackName(pid), size - tail_len, tail_len);
      if (tail.ok()) {
        auto header = ParsePackHeader(repo.key().enc, *tail, size);
        if (header.ok() && !header->empty()) {
          ip.type = (*header)[0].type;
          ip.blobs = std::move(*header);
        }
      }
      unindexed.push_back(std::move(ip));
      continue;
    }
    const Usage& u = it->second;
    res.bytes_unreferenced += u.unused;
    if (u.used == 0) {
      res.packs_unused++;
      dropped.insert(pid);
    } else if (double(u.unused) >= opts.max_unused * double(u.used + u.unused)) {
      repack.push_back(pid);
    }
  }
  std::sort(repack.begin(), repack.end());
  if (opts.dry_run) {
    for (const auto& pid : repack) {
      res.packs_repacked++;
      res.bytes_repacked += usage[pid].used;
    }
    for (const auto& pid : dropped) res.bytes_waiting += pack_sizes[pid];
    for (const auto& ip : unindexed) res.bytes_waiting += pack_sizes[ip.id];
    res.packs_waiting = dropped.size() + unindexed.size() + repack.size();
    return res;
  }

  // 2. Repack: copy live blobs (still sealed) into new packs; durable with their index.
  // The pack's own header lists what it holds; one pack is in memory at a time.
  if (!repack.empty()) {
    BlobWriter writer(repo);
    for (const auto& pid : repack) {
      LB_ASSIGN_OR_RETURN(Bytes pack, st.Get(PackName(pid)));
      auto header = ParsePackHeader(repo.key().enc, pack, pack.size());
      if (!header.ok())
        return header.status().WithContext(fmt::format("repack pack {}", pid.Short()));
      for (const auto& e : *header) {
        LB_ASSIGN_OR_RETURN(bool ref, referenced->Contains(e.id));
        if (!ref) continue;
        if (uint64_t(e.offset) + e.length > pack.size())
          return Err(Code::kCorruption, "pack {} is shorter than its header says", pid.Short());
        ByteSpan sealed(pack.data() + e.offset, e.length);
        // Verify before copying: a repack must never spread damage under a new name.
        auto plain = OpenBlob(repo.key().enc, repo.key().id, e.id, sealed);
        if (!plain.ok())
          return plain.status().WithContext(fmt::format("repack pack {}", pid.Short()));
        LB_RETURN_IF_ERROR(writer.AddSealed(e.type, e.id, sealed, e.raw_length));
        res.bytes_repacked += e.raw_length;
      }
      dropped.insert(pid);
      res.packs_repacked++;
    }
    LB_RETURN_IF_ERROR(writer.Flush());
    res.index_files_written += writer.stats().index_files;
  }

  if (!dropped.empty() || !unindexed.empty()) {
    // 3. The condemned lists, "pending" until the live index no longer lists their packs.
    std::vector<Condemned> mine;
    RunWriter condemned(repo.key(), opts.run_entries, [&](const crypto::Id& id, const Bytes& sealed) {
      Condemned c;
      c.name = "condemned/pending-" + id.Hex();
      c.pending = true;
      c.id = id;
      mine.push_back(c);
      return st.Put(c.name, sealed).WithContext("write condemned list");
    });
    LB_RETURN_IF_ERROR(idx->ForEachSorted([&](const crypto::Id& blob, const BlobLocation& loc) {
      if (!dropped.count(loc.pack)) return Status::Ok();
      return condemned.Add(blob, loc);
    }));
    for (auto& ip : unindexed) LB_RETURN_IF_ERROR(condemned.AddPack(std::move(ip)));
    LB_RETURN_IF_ERROR(condemned.Flush());

    // 4. Rewrite the live index without the dropped packs, then remove the old files.
    if (!dropped.empty()) {
      RunWriter live(repo.key(), opts.run_entries, [&](const crypto::Id& id, const Bytes& sealed) {
        res.index_files_written++;
        return st.Put(IndexName(id), sealed).WithContext("write index");
      });
      LB_RETURN_IF_ERROR(idx->ForEachSorted([&](const crypto::Id& blob, const BlobLocation& loc) {
        if (dropped.count(loc.pack)) return Status::Ok();
        return live.Add(blob, loc);
      }));
      LB_RETURN_IF_ERROR(live.Flush());
      // Index files written by the repack above are not in idx->files(): they survive.
      for (const auto& f : idx->files()) {
        Status s = st.Remove(IndexName(f));
        if (s.ok()) res.index_files_removed++;
        else if (s.code() != Code::kNotFound) return s.WithContext("remove old index file");
      }
    }
    // 5. Final: the time from which no new reader can see the dropped packs in the index.
    const int64_t t_final = NowNs();
    for (auto& c : mine) {
      LB_RETURN_IF_ERROR(Finalize(st, c, t_final));
      earlier.push_back(std::move(c));
    }
  }

  // 6. Finish every finalized condemned list no running process can still need. Lists left
  // pending by a prune killed during its index rewrite are finalized now, together: their
  // packs may already be gone from the index while a backup that started earlier reuses
  // their blobs, so the usual wait and reference check apply (packs still indexed are kept).
  for (auto& c : earlier)
    if (c.pending) LB_RETURN_IF_ERROR(Finalize(st, c, t_start));
  std::map<int64_t, bool> blocked;  // final time → a lock older than it lives
  std::vector<Condemned*> ready;
  std::unordered_set<crypto::Id, crypto::IdHash> waiting;
  for (auto& c : earlier) {
    auto [it, fresh] = blocked.try_emplace(c.final_ns, false);
    if (fresh) {
      auto blocker = BlockingLock(st, c.final_ns);
      it->second = blocker.has_value();
      if (blocker)
        res.waiting_for = fmt::format("{} by {}@{} pid {}, started before this prune",
                                      blocker->purpose, blocker->user, blocker->host,
                                      blocker->pid);
    }
    if (!it->second) {
      ready.push_back(&c);
      continue;
    }
    LB_ASSIGN_OR_RETURN(Bytes run_bytes, LoadCondemnedRun(repo, c));
    LB_ASSIGN_OR_RETURN(IndexRun run, IndexRun::FromBytes(run_bytes));
    for (uint32_t i = 0; i < run.pack_count(); ++i) {
      if (!waiting.insert(run.PackId(i)).second) continue;
      res.packs_waiting++;
      auto sz = pack_sizes.find(run.PackId(i));
      if (sz != pack_sizes.end()) res.bytes_waiting += sz->second;
    }
  }
  if (!ready.empty()) {
    // What is live now: the index as rewritten plus what finished backups added, and every
    // snapshot, including those of backups that ran during the mark.
    referenced.reset();
    LB_RETURN_IF_ERROR(repo.LoadIndex());
    LB_ASSIGN_OR_RETURN(Index * live, repo.index());
    std::unordered_set<crypto::Id, crypto::IdHash> live_packs;
    LB_RETURN_IF_ERROR(live->ForEach([&](const crypto::Id&, const BlobLocation& loc) {
      live_packs.insert(loc.pack);
      return Status::Ok();
    }));
    std::vector<DamagedSnapshot> damaged_now;
    LB_ASSIGN_OR_RETURN(auto snaps_now, ListSnapshots(repo, &damaged_now));
    if (!damaged_now.empty())
      return Err(Code::kFailedPrecondition, "snapshot {} is unreadable; refusing to delete data",
                 damaged_now[0].id.substr(0, 8));
    LB_ASSIGN_OR_RETURN(std::unique_ptr<IdSpill> referenced_now,
                        CollectReferenced(repo, snaps_now, opts));
    LB_RETURN_IF_ERROR(FinishCondemned(repo, opts, ready, live_packs, *live, *referenced_now, res));
  }
  return res;
}

}  // namespace lb::repo
