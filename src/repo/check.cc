#include "repo/check.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "repo/lock.h"
#include "repo/names.h"
#include "repo/snapshot.h"
#include "repo/tree.h"
#include "util/log.h"
#include "util/thread_pool.h"

namespace lb::repo {

namespace {

using IdSet = std::unordered_set<crypto::Id, crypto::IdHash>;

struct PackExpect {
  uint64_t end = 0;  // max offset+length of indexed blobs
  std::vector<std::pair<crypto::Id, BlobLocation>> blobs;
};

// Walks every snapshot's trees; reports unreadable trees, blobs missing from the index, and
// files whose content includes a blob of `bad`.
void WalkSnapshots(Repository& repo, Index& idx, const std::vector<Snapshot>& snaps,
                   const IdSet& bad, CheckResult& res, bool count_trees) {
  std::unordered_map<crypto::Id, bool, crypto::IdHash> tree_ok;  // tree id -> intact below
  std::function<bool(const crypto::Id&, const std::string&, const Snapshot&)> walk =
      [&](const crypto::Id& tree, const std::string& path, const Snapshot& s) -> bool {
    auto seen = tree_ok.find(tree);
    if (seen != tree_ok.end() && seen->second) return true;
    bool intact = true;
    std::string label = fmt::format("snapshot {}: {}", s.id.Short(), path);
    if (!idx.FindAny(tree)) {
      res.errors.push_back(fmt::format("tree {} ({}) is not in the index", tree.Short(), label));
      res.affected.push_back(label + " (directory)");
      tree_ok[tree] = false;
      return false;
    }
    auto blob = repo.LoadBlob(tree);
    if (!blob.ok()) {
      if (!bad.count(tree))
        res.errors.push_back(fmt::format("tree {} ({}): {}", tree.Short(), label,
                                         blob.status().ToString()));
      res.affected.push_back(label + " (directory)");
      tree_ok[tree] = false;
      return false;
    }
    auto nodes = DecodeTree(*blob);
    if (!nodes.ok()) {
      res.errors.push_back(fmt::format("tree {} ({}): {}", tree.Short(), label,
                                       nodes.status().ToString()));
      res.affected.push_back(label + " (directory)");
      tree_ok[tree] = false;
      return false;
    }
    if (count_trees && seen == tree_ok.end()) res.trees++;
    std::string base = path == "/" ? "" : path;
    for (const auto& n : *nodes) {
      std::string p = base + "/" + PrintableName(n.name);
      if (n.type == NodeType::kDir) {
        if (!walk(n.subtree, p, s)) intact = false;
      } else if (n.type == NodeType::kFile) {
        bool damaged = false;
        for (const auto& id : n.content) {
          if (bad.count(id)) {
            damaged = true;
          } else if (!idx.FindAny(id)) {
            res.errors.push_back(fmt::format("data blob {} of snapshot {}: {} is not in the index",
                                             id.Short(), s.id.Short(), p));
            damaged = true;
          }
        }
        if (damaged) {
          res.affected.push_back(fmt::format("snapshot {}: {}", s.id.Short(), p));
          intact = false;
        }
      }
    }
    tree_ok[tree] = intact;
    return intact;
  };
  for (const auto& s : snaps) walk(s.tree, "/", s);
}

}  // namespace

Result<CheckResult> Check(Repository& repo, const CheckOptions& opts) {
  CheckResult res;
  storage::Storage& st = repo.storage();

  // 1. Index files, each on its own so one damaged file is named and the rest still count.
  std::vector<crypto::Id> index_ids;
  LB_RETURN_IF_ERROR(st.List("index/", [&](const storage::ObjectInfo& o) {
    crypto::Id id;
    if (IdFromName(o.name, id)) index_ids.push_back(id);
    else res.warnings.push_back(fmt::format("unexpected object '{}'", o.name));
    return Status::Ok();
  }));
  std::map<crypto::Id, PackExpect> expect;
  for (const auto& id : index_ids) {
    res.index_files++;
    auto stored = st.Get(IndexName(id));
    if (!stored.ok()) {
      res.errors.push_back(fmt::format("index file {}: {}", id.Short(), stored.status().ToString()));
      continue;
    }
    auto run_bytes = OpenIndexFile(repo.key(), id, *stored);
    if (!run_bytes.ok()) {
      res.errors.push_back(run_bytes.status().ToString());
      continue;
    }
    auto run = IndexRun::FromBytes(*run_bytes);
    for (uint32_t i = 0; i < run->entry_count(); ++i) {
      crypto::Id blob;
      BlobLocation loc;
      run->Entry(i, blob, loc);
      auto& e = expect[loc.pack];
      e.end = std::max<uint64_t>(e.end, uint64_t(loc.offset) + loc.length);
      e.blobs.emplace_back(blob, loc);
    }
  }

  // 2. Packs: every indexed pack exists and is long enough; unindexed ones are debris.
  std::map<crypto::Id, uint64_t> packs;
  LB_RETURN_IF_ERROR(st.List("data/", [&](const storage::ObjectInfo& o) {
    crypto::Id id;
    if (IdFromName(o.name, id)) packs[id] = o.size;
    else res.warnings.push_back(fmt::format("unexpected object '{}'", o.name));
    return Status::Ok();
  }));
  res.packs = packs.size();
  IdSet bad;
  for (const auto& [pid, e] : expect) {
    auto it = packs.find(pid);
    if (it == packs.end()) {
      res.errors.push_back(fmt::format("pack {} is missing ({} blobs)", pid.Short(), e.blobs.size()));
      for (const auto& b : e.blobs) bad.insert(b.first);
    } else if (it->second < e.end + 4) {
      res.errors.push_back(fmt::format("pack {} is truncated ({} bytes, index needs {})",
                                       pid.Short(), it->second, e.end + 4));
      for (const auto& b : e.blobs) bad.insert(b.first);
    }
  }
  uint64_t unindexed = 0;
  for (const auto& [pid, size] : packs)
    if (!expect.count(pid)) unindexed++;
  if (unindexed)
    res.warnings.push_back(fmt::format(
        "{} pack(s) are not in any index (left by an interrupted backup; 'prune' removes "
        "them, 'repair index' adds them back)", unindexed));

  // 3. Data: read packs, check the pack id, the header against the index, every blob.
  if (opts.read_data) {
    std::vector<crypto::Id> to_read;
    for (const auto& [pid, e] : expect)
      if (packs.count(pid)) to_read.push_back(pid);
    if (opts.read_fraction < 1.0) {
      std::mt19937_64 rng(std::random_device{}());
      std::shuffle(to_read.begin(), to_read.end(), rng);
      size_t n = size_t(double(to_read.size()) * opts.read_fraction + 0.999999);
      to_read.resize(std::min(n, to_read.size()));
    }
    std::mutex mu;
    ThreadPool pool(opts.threads ? opts.threads : ThreadPool::DefaultThreads());
    for (const auto& pid : to_read) {
      pool.Submit([&, pid] {
        const PackExpect& e = expect.at(pid);
        std::vector<std::string> errs;
        std::vector<crypto::Id> bad_here;
        uint64_t nblobs = 0, nbytes = 0;
        auto data = st.Get(PackName(pid));
        if (!data.ok()) {
          errs.push_back(fmt::format("pack {}: {}", pid.Short(), data.status().ToString()));
          for (const auto& b : e.blobs) bad_here.push_back(b.first);
        } else {
          nbytes = data->size();
          if (crypto::Sha256(*data) != pid)
            errs.push_back(fmt::format("pack {}: content does not match its name", pid.Short()));
          auto header = ParsePackHeader(repo.key().enc, *data, data->size());
          if (!header.ok()) {
            errs.push_back(fmt::format("pack {}: {}", pid.Short(), header.status().ToString()));
          } else {
            std::set<std::tuple<crypto::Id, uint32_t, uint32_t>> hdr;
            for (const auto& h : *header) hdr.insert({h.id, h.offset, h.length});
            for (const auto& [bid, loc] : e.blobs)
              if (!hdr.count({bid, loc.offset, loc.length}))
                errs.push_back(fmt::format("pack {}: index lists blob {} that its header lacks",
                                           pid.Short(), bid.Short()));
          }
          for (const auto& [bid, loc] : e.blobs) {
            nblobs++;
            if (uint64_t(loc.offset) + loc.length > data->size()) {
              bad_here.push_back(bid);
              continue;
            }
            auto plain = OpenBlob(repo.key().enc, repo.key().id, bid,
                                  ByteSpan(*data).subspan(loc.offset, loc.length));
            if (!plain.ok() || plain->size() != loc.raw_length) {
              errs.push_back(fmt::format("pack {}: blob {}: {}", pid.Short(), bid.Short(),
                                         plain.ok() ? "wrong length" : plain.status().ToString()));
              bad_here.push_back(bid);
            }
          }
        }
        std::lock_guard lock(mu);
        res.packs_read++;
        res.blobs_read += nblobs;
        res.bytes_read += nbytes;
        for (auto& s : errs) res.errors.push_back(std::move(s));
        for (auto& b : bad_here) bad.insert(b);
      });
    }
    pool.Wait();
  }

  // 4. Snapshots and their trees; map damage to the files it affects.
  std::vector<DamagedSnapshot> damaged;
  LB_ASSIGN_OR_RETURN(auto snaps, ListSnapshots(repo, &damaged));
  res.snapshots = snaps.size() + damaged.size();
  for (const auto& d : damaged)
    res.errors.push_back(fmt::format("snapshot {}: {}", d.id.substr(0, 8), d.error.ToString()));
  LB_ASSIGN_OR_RETURN(Index * idx, repo.index());
  WalkSnapshots(repo, *idx, snaps, bad, res, true);

  // 5. Locks: stale ones are worth knowing about.
  auto locks = ListLocks(st);
  if (locks.ok())
    for (const auto& l : *locks)
      if (l.stale)
        res.warnings.push_back(fmt::format("stale lock {} ({}); 'lifeboat unlock' removes it",
                                           l.id.substr(0, 8), l.stale_reason));
  std::sort(res.affected.begin(), res.affected.end());
  res.affected.erase(std::unique(res.affected.begin(), res.affected.end()), res.affected.end());
  return res;
}

Result<RepairIndexResult> RepairIndex(Repository& repo) {
  RepairIndexResult res;
  storage::Storage& st = repo.storage();
  std::vector<storage::ObjectInfo> packs;
  LB_RETURN_IF_ERROR(st.List("data/", [&](const storage::ObjectInfo& o) {
    packs.push_back(o);
    return Status::Ok();
  }));
  std::vector<crypto::Id> old_index;
  LB_RETURN_IF_ERROR(st.List("index/", [&](const storage::ObjectInfo& o) {
    crypto::Id id;
    if (IdFromName(o.name, id)) old_index.push_back(id);
    return Status::Ok();
  }));
  std::vector<IndexPack> batch;
  size_t batch_blobs = 0;
  auto flush = [&]() -> Status {
    if (batch.empty()) return Status::Ok();
    Bytes run = EncodeRun(batch);
    auto [id, sealed] = SealIndexFile(repo.key(), run);
    LB_RETURN_IF_ERROR(st.Put(IndexName(id), sealed).WithContext("write index"));
    res.index_files_written++;
    batch.clear();
    batch_blobs = 0;
    return Status::Ok();
  };
  std::set<crypto::Id> bad_packs;
  for (const auto& o : packs) {
    crypto::Id pid;
    if (!IdFromName(o.name, pid)) continue;
    // Read only the tail: the trailer says how long the header is.
    uint64_t tail_len = std::min<uint64_t>(o.size, 64 * 1024);
    auto tail = st.GetRange(o.name, o.size - tail_len, tail_len);
    Result<std::vector<PackEntry>> header = tail.ok() ? ParsePackHeader(repo.key().enc, *tail, o.size)
                                                      : Result<std::vector<PackEntry>>(tail.status());
    if (!header.ok() && tail.ok()) {
      auto len = PackHeaderLength(*tail, o.size);
      if (len.ok() && *len + 4 > tail_len) {
        auto full = st.GetRange(o.name, o.size - (*len + 4), *len + 4);
        if (full.ok()) header = ParsePackHeader(repo.key().enc, *full, o.size);
      }
    }
    if (!header.ok()) {
      bad_packs.insert(pid);
      res.bad_packs++;
      res.errors.push_back(fmt::format("pack {}: {} (left out of the index)", pid.Short(),
                                       header.status().ToString()));
      continue;
    }
    IndexPack ip{pid, header->empty() ? BlobType::kData : (*header)[0].type, std::move(*header)};
    res.packs++;
    res.blobs += ip.blobs.size();
    batch_blobs += ip.blobs.size();
    batch.push_back(std::move(ip));
    if (batch_blobs >= 200000) LB_RETURN_IF_ERROR(flush());
  }
  // A pack whose header cannot be read may still hold intact blobs: keep what the old index
  // said about it, so repairing never loses more than the damage itself.
  if (!bad_packs.empty()) {
    LB_ASSIGN_OR_RETURN(Index * old, repo.index());
    std::map<crypto::Id, IndexPack> carried;
    LB_RETURN_IF_ERROR(old->ForEach([&](const crypto::Id& blob, const BlobLocation& loc) {
      if (!bad_packs.count(loc.pack)) return Status::Ok();
      auto& ip = carried[loc.pack];
      ip.id = loc.pack;
      ip.type = loc.type;
      ip.blobs.push_back({blob, loc.type, loc.offset, loc.length, loc.raw_length});
      return Status::Ok();
    }));
    for (auto& [pid, ip] : carried) {
      res.errors.push_back(fmt::format("pack {}: kept {} entries from the old index", pid.Short(),
                                       ip.blobs.size()));
      batch.push_back(std::move(ip));
    }
  }
  LB_RETURN_IF_ERROR(flush());
  // New index files are durable; only now may the old ones go.
  for (const auto& id : old_index) {
    Status s = st.Remove(IndexName(id));
    if (s.ok()) res.index_files_removed++;
  }
  return res;
}

}  // namespace lb::repo
