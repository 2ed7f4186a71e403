#include "repo/prune.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <unordered_set>

#include "repo/lock.h"
#include "repo/names.h"
#include "repo/snapshot.h"
#include "repo/tree.h"
#include "util/log.h"

namespace lb::repo {

namespace {

using IdSet = std::unordered_set<crypto::Id, crypto::IdHash>;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Every blob (data and tree) some snapshot references. Trees are read through FindAny, so
// a snapshot of a backup that deduplicated against a condemned pack still counts.
Status CollectReferenced(Repository& repo, const std::vector<Snapshot>& snaps, IdSet& out) {
  std::vector<crypto::Id> stack;
  for (const auto& s : snaps) stack.push_back(s.tree);
  while (!stack.empty()) {
    crypto::Id t = stack.back();
    stack.pop_back();
    if (!out.insert(t).second) continue;
    LB_ASSIGN_OR_RETURN(Bytes blob, repo.LoadBlob(t));
    LB_ASSIGN_OR_RETURN(auto nodes, DecodeTree(blob));
    for (const auto& n : nodes) {
      if (n.type == NodeType::kDir) stack.push_back(n.subtree);
      for (const auto& c : n.content) out.insert(c);
    }
  }
  return Status::Ok();
}

// A condemned/ object: "condemned/<state>-<id>", state "pending" while the live index is
// being rewritten, else the time (ns) the rewrite finished.
struct Condemned {
  std::string name;
  bool pending = false;
  int64_t final_ns = 0;
  crypto::Id id;
  std::vector<IndexPack> packs;
};

Result<std::vector<Condemned>> LoadCondemned(Repository& repo) {
  std::vector<std::string> names;
  LB_RETURN_IF_ERROR(repo.storage().List("condemned/", [&](const storage::ObjectInfo& o) {
    names.push_back(o.name);
    return Status::Ok();
  }));
  std::vector<Condemned> out;
  for (const auto& name : names) {
    std::string base = name.substr(10);
    size_t dash = base.rfind('-');
    if (dash == std::string::npos) continue;
    Condemned c;
    c.name = name;
    std::string state = base.substr(0, dash);
    c.pending = state == "pending";
    if (!c.pending) c.final_ns = std::stoll(state);
    if (!crypto::Id::Parse(base.substr(dash + 1), c.id)) continue;
    LB_ASSIGN_OR_RETURN(Bytes stored, repo.storage().Get(name));
    LB_ASSIGN_OR_RETURN(Bytes run_bytes, OpenIndexFile(repo.key(), c.id, stored));
    LB_ASSIGN_OR_RETURN(IndexRun run, IndexRun::FromBytes(run_bytes));
    std::map<crypto::Id, IndexPack> packs;
    for (uint32_t i = 0; i < run.entry_count(); ++i) {
      crypto::Id blob;
      BlobLocation loc;
      run.Entry(i, blob, loc);
      auto& p = packs[loc.pack];
      p.id = loc.pack;
      p.type = loc.type;
      p.blobs.push_back({blob, loc.type, loc.offset, loc.length, loc.raw_length});
    }
    // Packs without blobs (unindexed debris with unreadable headers) are listed in the pack
    // table only.
    for (uint32_t i = 0; i < run.pack_count(); ++i) {
      auto& p = packs[run.PackId(i)];
      p.id = run.PackId(i);
      p.type = run.PackType(i);
    }
    for (auto& [id, p] : packs) c.packs.push_back(std::move(p));
    out.push_back(std::move(c));
  }
  return out;
}

Status WriteIndexFiles(Repository& repo, std::vector<IndexPack>& packs, PruneResult& res) {
  std::vector<IndexPack> batch;
  size_t entries = 0;
  auto flush = [&]() -> Status {
    if (batch.empty()) return Status::Ok();
    Bytes run = EncodeRun(batch);
    auto [id, sealed] = SealIndexFile(repo.key(), run);
    LB_RETURN_IF_ERROR(repo.storage().Put(IndexName(id), sealed).WithContext("write index"));
    res.index_files_written++;
    batch.clear();
    entries = 0;
    return Status::Ok();
  };
  for (auto& p : packs) {
    entries += p.blobs.size();
    batch.push_back(std::move(p));
    if (entries >= 200000) LB_RETURN_IF_ERROR(flush());
  }
  return flush();
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

// Phase 2: deletes the packs of a finalized condemned object that neither the live index nor
// any snapshot references; referenced ones go back into the index.
Status FinishCondemned(Repository& repo, Condemned& c, const std::set<crypto::Id>& live_packs,
                       const Index& live, const IdSet& referenced, PruneResult& res) {
  std::vector<IndexPack> resurrect;
  std::vector<crypto::Id> doomed;
  for (auto& p : c.packs) {
    // Indexed again (a backup that was running indexed its own pack, or an interrupted
    // rewrite): it stays.
    if (live_packs.count(p.id)) continue;
    // Needed only for a referenced blob the live index has no other copy of (a repacked
    // pack's live blobs are in their new packs already).
    bool used = false;
    for (const auto& b : p.blobs) used |= referenced.count(b.id) > 0 && !live.Has(b.id);
    if (used) resurrect.push_back(p);
    else doomed.push_back(p.id);
  }
  // Durable order: the index of resurrected packs first, then deletions, then the marker.
  res.packs_resurrected += resurrect.size();
  if (!resurrect.empty()) LB_RETURN_IF_ERROR(WriteIndexFiles(repo, resurrect, res));
  for (const auto& pid : doomed) {
    auto info = repo.storage().Stat(PackName(pid));
    Status s = repo.storage().Remove(PackName(pid));
    if (s.ok()) {
      res.packs_deleted++;
      if (info.ok()) res.bytes_deleted += info->size;
    } else if (s.code() != Code::kNotFound) {
      return s.WithContext(fmt::format("delete pack {}", pid.Short()));
    }
  }
  return repo.storage().Remove(c.name);
}

}  // namespace

Result<PruneResult> Prune(Repository& repo, const PruneOptions& opts) {
  PruneResult res;
  storage::Storage& st = repo.storage();

  // 0. Earlier runs: complete pending rewrites are redone below; finalized ones whose
  // blocking processes are gone are finished now.
  LB_ASSIGN_OR_RETURN(auto earlier, LoadCondemned(repo));
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
  IdSet referenced;
  LB_RETURN_IF_ERROR(CollectReferenced(repo, snaps, referenced));

  std::set<crypto::Id> already_condemned;
  for (const auto& c : earlier)
    for (const auto& p : c.packs) already_condemned.insert(p.id);

  struct Usage {
    BlobType type = BlobType::kData;
    uint64_t used = 0, unused = 0;
    std::vector<std::pair<crypto::Id, BlobLocation>> blobs;
  };
  std::map<crypto::Id, Usage> usage;
  LB_RETURN_IF_ERROR(idx->ForEach([&](const crypto::Id& blob, const BlobLocation& loc) {
    auto& u = usage[loc.pack];
    u.type = loc.type;
    u.blobs.emplace_back(blob, loc);
    if (referenced.count(blob)) {
      u.used += loc.length;
      res.blobs_referenced++;
    } else {
      u.unused += loc.length;
      res.blobs_unreferenced++;
    }
    return Status::Ok();
  }));
  // Packs on storage but in no index: debris of interrupted backups, or packs a running
  // backup has not indexed yet. Condemned like the rest; the wait protects running backups.
  std::map<crypto::Id, uint64_t> pack_sizes;
  LB_RETURN_IF_ERROR(st.List("data/", [&](const storage::ObjectInfo& o) {
    crypto::Id id;
    if (IdFromName(o.name, id)) pack_sizes[id] = o.size;
    return Status::Ok();
  }));
  res.packs_total = pack_sizes.size();
  std::vector<IndexPack> condemn;
  std::vector<crypto::Id> repack;
  std::set<crypto::Id> dropped;  // packs leaving the live index
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
      condemn.push_back(std::move(ip));
      continue;
    }
    const Usage& u = it->second;
    res.bytes_unreferenced += u.unused;
    if (u.used == 0) {
      res.packs_unused++;
      IndexPack ip{pid, u.type, {}};
      for (const auto& [b, l] : u.blobs) ip.blobs.push_back({b, l.type, l.offset, l.length, l.raw_length});
      condemn.push_back(std::move(ip));
      dropped.insert(pid);
    } else if (double(u.unused) >= opts.max_unused * double(u.used + u.unused)) {
      repack.push_back(pid);
    }
  }
  if (opts.dry_run) {
    for (const auto& pid : repack) {
      res.packs_repacked++;
      res.bytes_repacked += usage[pid].used;
    }
    for (const auto& c : condemn) res.bytes_waiting += pack_sizes[c.id];
    res.packs_waiting = condemn.size() + repack.size();
    return res;
  }

  // 2. Repack: copy live blobs (still sealed) into new packs; durable with their index.
  if (!repack.empty()) {
    BlobWriter writer(repo);
    for (const auto& pid : repack) {
      const Usage& u = usage[pid];
      LB_ASSIGN_OR_RETURN(Bytes pack, st.Get(PackName(pid)));
      IndexPack ip{pid, u.type, {}};
      for (const auto& [b, l] : u.blobs) {
        ip.blobs.push_back({b, l.type, l.offset, l.length, l.raw_length});
        if (!referenced.count(b)) continue;
        if (uint64_t(l.offset) + l.length > pack.size())
          return Err(Code::kCorruption, "pack {} is shorter than its index says", pid.Short());
        ByteSpan sealed(pack.data() + l.offset, l.length);
        // Verify before copying: a repack must never spread damage under a new name.
        auto plain = OpenBlob(repo.key().enc, repo.key().id, b, sealed);
        if (!plain.ok())
          return plain.status().WithContext(fmt::format("repack pack {}", pid.Short()));
        LB_RETURN_IF_ERROR(writer.AddSealed(u.type, b, sealed, l.raw_length));
        res.bytes_repacked += l.raw_length;
      }
      condemn.push_back(std::move(ip));
      dropped.insert(pid);
      res.packs_repacked++;
    }
    LB_RETURN_IF_ERROR(writer.Flush());
    res.index_files_written += writer.stats().index_files;
  }

  if (!condemn.empty()) {
    // 3. The condemned object, "pending" until the live index no longer lists its packs.
    std::vector<IndexPack> copy = condemn;
    Bytes run = EncodeRun(copy);
    auto [cid, sealed] = SealIndexFile(repo.key(), run);
    std::string pending = "condemned/pending-" + cid.Hex();
    LB_RETURN_IF_ERROR(st.Put(pending, sealed).WithContext("write condemned list"));

    // 4. Rewrite the live index without the dropped packs, then remove the old files.
    if (!dropped.empty()) {
      std::map<crypto::Id, IndexPack> keep;
      LB_RETURN_IF_ERROR(idx->ForEach([&](const crypto::Id& blob, const BlobLocation& loc) {
        if (dropped.count(loc.pack)) return Status::Ok();
        auto& p = keep[loc.pack];
        p.id = loc.pack;
        p.type = loc.type;
        p.blobs.push_back({blob, loc.type, loc.offset, loc.length, loc.raw_length});
        return Status::Ok();
      }));
      std::vector<IndexPack> packs;
      for (auto& [id, p] : keep) packs.push_back(std::move(p));
      // Index files written by the repack above are not in idx->files(): they survive.
      LB_RETURN_IF_ERROR(WriteIndexFiles(repo, packs, res));
      for (const auto& f : idx->files()) {
        Status s = st.Remove(IndexName(f));
        if (s.ok()) res.index_files_removed++;
        else if (s.code() != Code::kNotFound) return s.WithContext("remove old index file");
      }
    }
    // 5. Final: the time from which no new reader can see the dropped packs in the index.
    int64_t t_final = NowNs();
    std::string final_name = fmt::format("condemned/{}-{}", t_final, cid.Hex());
    LB_RETURN_IF_ERROR(st.Put(final_name, sealed).WithContext("write condemned list"));
    LB_RETURN_IF_ERROR(st.Remove(pending));
    Condemned c;
    c.name = final_name;
    c.final_ns = t_final;
    c.id = cid;
    c.packs = std::move(condemn);
    earlier.push_back(std::move(c));
  }

  // 6. Finish every finalized condemned list no running process can still need.
  std::vector<Condemned*> ready;
  for (auto& c : earlier) {
    if (c.pending) {
      // Left by a prune killed during its index rewrite. Its packs may already be gone from
      // the index while a backup that started earlier reuses their blobs: finalize it now,
      // so the usual wait and reference check apply (packs still indexed are kept anyway).
      std::string final_name = fmt::format("condemned/{}-{}", NowNs(), c.id.Hex());
      LB_ASSIGN_OR_RETURN(Bytes stored, st.Get(c.name));
      LB_RETURN_IF_ERROR(st.Put(final_name, stored).WithContext("finalize condemned list"));
      LB_RETURN_IF_ERROR(st.Remove(c.name));
      c.name = final_name;
      c.pending = false;
      c.final_ns = NowNs();
    }
    auto blocker = BlockingLock(st, c.final_ns);
    if (blocker) {
      res.packs_waiting += c.packs.size();
      for (const auto& p : c.packs) res.bytes_waiting += pack_sizes.count(p.id) ? pack_sizes[p.id] : 0;
      res.waiting_for = fmt::format("{} by {}@{} pid {}, started before this prune",
                                    blocker->purpose, blocker->user, blocker->host, blocker->pid);
      continue;
    }
    ready.push_back(&c);
  }
  if (!ready.empty()) {
    // What is live now: the index as rewritten plus what finished backups added, and every
    // snapshot, including those of backups that ran during the mark.
    LB_RETURN_IF_ERROR(repo.LoadIndex());
    LB_ASSIGN_OR_RETURN(Index * live, repo.index());
    std::set<crypto::Id> live_packs;
    LB_RETURN_IF_ERROR(live->ForEach([&](const crypto::Id&, const BlobLocation& loc) {
      live_packs.insert(loc.pack);
      return Status::Ok();
    }));
    std::vector<DamagedSnapshot> damaged_now;
    LB_ASSIGN_OR_RETURN(auto snaps_now, ListSnapshots(repo, &damaged_now));
    if (!damaged_now.empty())
      return Err(Code::kFailedPrecondition, "snapshot {} is unreadable; refusing to delete data",
                 damaged_now[0].id.substr(0, 8));
    IdSet referenced_now;
    LB_RETURN_IF_ERROR(CollectReferenced(repo, snaps_now, referenced_now));
    for (Condemned* c : ready)
      LB_RETURN_IF_ERROR(FinishCondemned(repo, *c, live_packs, *live, referenced_now, res));
  }
  return res;
}

}  // namespace lb::repo
