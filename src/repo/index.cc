#include "repo/index.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <cstring>
#include <queue>
#include <set>

#include "repo/names.h"
#include "util/compress.h"
#include "util/log.h"

namespace lb::repo {

namespace fs = std::filesystem;

namespace {
constexpr uint32_t kRunMagic = 0x5849424c;  // "LBIX"
constexpr size_t kRunHeader = 16;
constexpr size_t kPackRecord = 36;
constexpr size_t kEntryRecord = 48;
constexpr char kIndexAad[] = "lifeboat-index";
// More delta runs than this and lookups pay too many binary searches: merge them.
constexpr size_t kMaxDeltaRuns = 16;
}  // namespace

Bytes EncodeRun(const std::vector<IndexPack>& packs) {
  struct Row {
    const crypto::Id* id;
    uint32_t pack_no;
    const PackEntry* e;
  };
  std::vector<Row> rows;
  for (uint32_t p = 0; p < packs.size(); ++p)
    for (const auto& e : packs[p].blobs) rows.push_back({&e.id, p, &e});
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return *a.id < *b.id; });
  Bytes out;
  out.reserve(kRunHeader + packs.size() * kPackRecord + rows.size() * kEntryRecord);
  PutU32(out, kRunMagic);
  out.push_back(1);
  out.push_back(0);
  PutU16(out, 0);
  PutU32(out, uint32_t(packs.size()));
  PutU32(out, uint32_t(rows.size()));
  for (const auto& p : packs) {
    out.insert(out.end(), p.id.bytes.begin(), p.id.bytes.end());
    out.push_back(uint8_t(p.type));
    out.insert(out.end(), 3, 0);
  }
  for (const auto& r : rows) {
    out.insert(out.end(), r.id->bytes.begin(), r.id->bytes.end());
    PutU32(out, r.pack_no);
    PutU32(out, r.e->offset);
    PutU32(out, r.e->length);
    PutU32(out, r.e->raw_length);
  }
  return out;
}

Result<IndexRun> IndexRun::FromBytes(ByteSpan b) {
  if (b.size() < kRunHeader || GetU32(b.data()) != kRunMagic || b[4] != 1)
    return Err(Code::kCorruption, "index run: bad magic or version");
  IndexRun r;
  r.pack_count_ = GetU32(b.data() + 8);
  r.entry_count_ = GetU32(b.data() + 12);
  uint64_t want = kRunHeader + uint64_t(r.pack_count_) * kPackRecord +
                  uint64_t(r.entry_count_) * kEntryRecord;
  if (want != b.size())
    return Err(Code::kCorruption, "index run: {} bytes, layout needs {}", b.size(), want);
  r.packs_ = b.data() + kRunHeader;
  r.entries_ = r.packs_ + size_t(r.pack_count_) * kPackRecord;
  for (uint32_t i = 0; i < r.entry_count_; ++i) {
    if (GetU32(r.EntryPtr(i) + 32) >= r.pack_count_)
      return Err(Code::kCorruption, "index run: entry {} names pack {} of {}", i,
                 GetU32(r.EntryPtr(i) + 32), r.pack_count_);
  }
  return r;
}

crypto::Id IndexRun::PackId(uint32_t no) const {
  crypto::Id id;
  std::memcpy(id.bytes.data(), packs_ + size_t(no) * kPackRecord, 32);
  return id;
}

BlobType IndexRun::PackType(uint32_t no) const {
  return BlobType(packs_[size_t(no) * kPackRecord + 32]);
}

void IndexRun::Entry(uint32_t i, crypto::Id& blob, BlobLocation& loc) const {
  const uint8_t* p = EntryPtr(i);
  std::memcpy(blob.bytes.data(), p, 32);
  uint32_t pack_no = GetU32(p + 32);
  loc.pack = PackId(pack_no);
  loc.type = PackType(pack_no);
  loc.offset = GetU32(p + 36);
  loc.length = GetU32(p + 40);
  loc.raw_length = GetU32(p + 44);
}

std::optional<BlobLocation> IndexRun::Find(const crypto::Id& id) const {
  uint32_t lo = 0, hi = entry_count_;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (std::memcmp(EntryPtr(mid), id.bytes.data(), 32) < 0) lo = mid + 1;
    else hi = mid;
  }
  if (lo == entry_count_ || std::memcmp(EntryPtr(lo), id.bytes.data(), 32) != 0)
    return std::nullopt;
  crypto::Id blob;
  BlobLocation loc;
  Entry(lo, blob, loc);
  return loc;
}

std::pair<crypto::Id, Bytes> SealIndexFile(const MasterKey& key, ByteSpan run) {
  Bytes z;
  ZstdCompressAppend(run, 3, z);
  Bytes sealed = crypto::Seal(key.enc, z, AsBytes(kIndexAad));
  return {crypto::Sha256(sealed), std::move(sealed)};
}

Result<Bytes> OpenIndexFile(const MasterKey& key, const crypto::Id& id, ByteSpan stored) {
  if (crypto::Sha256(stored) != id)
    return Err(Code::kCorruption, "index file '{}': content does not match its name", id.Short());
  auto z = crypto::Open(key.enc, stored, AsBytes(kIndexAad));
  if (!z.ok()) return z.status().WithContext(fmt::format("index file '{}'", id.Short()));
  auto run = ZstdDecompress(*z);
  if (!run.ok()) return run.status().WithContext(fmt::format("index file '{}'", id.Short()));
  auto v = IndexRun::FromBytes(*run);
  if (!v.ok()) return v.status().WithContext(fmt::format("index file '{}'", id.Short()));
  return std::move(*run);
}

std::string DefaultCacheRoot() {
  if (const char* d = std::getenv("LIFEBOAT_CACHE_DIR"); d && *d) return d;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/lifeboat";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/lifeboat";
  return "/tmp/lifeboat-cache-" + std::to_string(getuid());
}

// A run mapped from a cache file (or held in memory when mapping is not possible).
struct Index::Mapped {
  void* addr = nullptr;
  size_t len = 0;
  Bytes owned;
  IndexRun run;
  std::vector<crypto::Id> ids;  // for the merged base: the index files it holds
  ~Mapped() {
    if (addr) munmap(addr, len);
  }
};

namespace {

Status WriteFileAtomic(const fs::path& path, ByteSpan data) {
  fs::path tmp = path;
  tmp += ".tmp" + std::to_string(getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus(errno, "cache write '" + tmp.string() + "'");
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      Status s = ErrnoStatus(errno, "cache write '" + tmp.string() + "'");
      ::close(fd);
      ::unlink(tmp.c_str());
      return s;
    }
    off += size_t(n);
  }
  // The cache can be rebuilt from the repository, so no fsync: a torn file after power loss
  // fails validation and is fetched again.
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    Status s = ErrnoStatus(errno, "cache rename '" + path.string() + "'");
    ::unlink(tmp.c_str());
    return s;
  }
  return Status::Ok();
}

Result<std::unique_ptr<Index::Mapped>> MapFile(const fs::path& path, size_t skip) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "open cache '" + path.string() + "'");
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    ::close(fd);
    return ErrnoStatus(errno, "stat cache '" + path.string() + "'");
  }
  auto m = std::make_unique<Index::Mapped>();
  m->len = size_t(st.st_size);
  if (m->len < skip) {
    ::close(fd);
    return Err(Code::kCorruption, "cache '{}' too short", path.string());
  }
  if (m->len > 0) {
    m->addr = mmap(nullptr, m->len, PROT_READ, MAP_SHARED, fd, 0);
    if (m->addr == MAP_FAILED) {
      m->addr = nullptr;
      ::close(fd);
      return ErrnoStatus(errno, "mmap cache '" + path.string() + "'");
    }
  }
  ::close(fd);
  auto* base = static_cast<const uint8_t*>(m->addr);
  auto run = IndexRun::FromBytes({base + skip, m->len - skip});
  if (!run.ok()) return run.status();
  m->run = *run;
  return m;
}

// K-way merge of sorted runs into one run file: memory O(number of runs), not O(entries).
// Layout of the merged file: u32 n, n index ids, then the run.
Status MergeRuns(const std::vector<const IndexRun*>& runs, const std::vector<crypto::Id>& ids,
                 const fs::path& out_path) {
  fs::path tmp = out_path;
  tmp += ".tmp" + std::to_string(getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus(errno, "cache write '" + tmp.string() + "'");
  ::close(fd);
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  if (!out) return Err(Code::kIo, "cannot write cache '{}'", tmp.string());
  Bytes head;
  PutU32(head, uint32_t(ids.size()));
  for (const auto& id : ids) head.insert(head.end(), id.bytes.begin(), id.bytes.end());
  uint64_t packs = 0, entries = 0;
  std::vector<uint32_t> pack_base;
  for (const auto* r : runs) {
    pack_base.push_back(uint32_t(packs));
    packs += r->pack_count();
    entries += r->entry_count();
  }
  if (packs > UINT32_MAX || entries > UINT32_MAX)
    return Err(Code::kInternal, "index too large for one run");
  PutU32(head, kRunMagic);
  head.push_back(1);
  head.push_back(0);
  PutU16(head, 0);
  PutU32(head, uint32_t(packs));
  PutU32(head, uint32_t(entries));
  out.write(reinterpret_cast<const char*>(head.data()), std::streamsize(head.size()));
  for (const auto* r : runs)
    for (uint32_t i = 0; i < r->pack_count(); ++i) {
      uint8_t rec[kPackRecord] = {};
      crypto::Id id = r->PackId(i);
      std::memcpy(rec, id.bytes.data(), 32);
      rec[32] = uint8_t(r->PackType(i));
      out.write(reinterpret_cast<const char*>(rec), kPackRecord);
    }
  using Cursor = std::pair<size_t, uint32_t>;  // run, position
  auto greater = [&](const Cursor& a, const Cursor& b) {
    return std::memcmp(runs[a.first]->EntryPtr(a.second), runs[b.first]->EntryPtr(b.second),
                       32) > 0;
  };
  std::priority_queue<Cursor, std::vector<Cursor>, decltype(greater)> heap(greater);
  for (size_t i = 0; i < runs.size(); ++i)
    if (runs[i]->entry_count()) heap.push({i, 0});
  while (!heap.empty()) {
    auto [r, pos] = heap.top();
    heap.pop();
    uint8_t rec[kEntryRecord];
    std::memcpy(rec, runs[r]->EntryPtr(pos), kEntryRecord);
    StoreU32(rec + 32, GetU32(rec + 32) + pack_base[r]);
    out.write(reinterpret_cast<const char*>(rec), kEntryRecord);
    if (pos + 1 < runs[r]->entry_count()) heap.push({r, pos + 1});
  }
  out.close();
  if (!out) return Err(Code::kIo, "cannot write cache '{}'", tmp.string());
  if (::rename(tmp.c_str(), out_path.c_str()) != 0)
    return ErrnoStatus(errno, "cache rename '" + out_path.string() + "'");
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<Index>> Index::Load(storage::Storage& st, const MasterKey& key,
                                           const std::string& cache_dir) {
  std::unique_ptr<Index> idx(new Index());
  std::set<crypto::Id> current;
  fs::path dir = fs::path(cache_dir) / "index";
  std::error_code ec;
  fs::create_directories(dir / "runs", ec);
  if (ec) return Err(Code::kIo, "cannot create cache '{}': {}", dir.string(), ec.message());
  ::chmod(cache_dir.c_str(), 0700);

  // A prune replaces index files: it writes the new ones, then removes the old. A file we
  // listed but can no longer read means exactly that, so list again (the new files are
  // there by then) instead of loading an index that misses live blobs.
  for (int attempt = 0;; ++attempt) {
    current.clear();
    idx->bad_files_.clear();
    LB_RETURN_IF_ERROR(st.List("index/", [&](const storage::ObjectInfo& o) {
      crypto::Id id;
      if (IdFromName(o.name, id)) current.insert(id);
      return Status::Ok();
    }));
    bool vanished = false;
    for (const auto& id : current) {
      fs::path p = dir / "runs" / id.Hex();
      if (fs::exists(p, ec)) {
        // A cached run that no longer validates (torn by a crash, edited) is fetched again.
        auto m = MapFile(p, 0);
        if (m.ok()) continue;
        LogWarning("index cache '{}': {}; fetching it again", p.string(), m.status().ToString());
        fs::remove(p, ec);
      }
      auto stored = st.Get(IndexName(id));
      if (!stored.ok()) {
        if (stored.status().code() == Code::kNotFound) vanished = true;
        else if (stored.status().code() != Code::kCorruption)
          return stored.status().WithContext(fmt::format("read index '{}'", id.Short()));
        idx->bad_files_.emplace_back(id, stored.status());
        continue;
      }
      auto run = OpenIndexFile(key, id, *stored);
      if (!run.ok()) {
        // A damaged index file only hides the blobs it lists: backups store them again and
        // 'check' / 'repair index' deal with it. Refusing to open would lose more.
        idx->bad_files_.emplace_back(id, run.status());
        continue;
      }
      LB_RETURN_IF_ERROR(WriteFileAtomic(p, *run));
    }
    // A listing can also miss files outright: taken before a prune wrote its new files and
    // read after it removed the old ones, it shows neither. So the set must be the same when
    // listed again after loading, or the load starts over.
    std::set<crypto::Id> again;
    LB_RETURN_IF_ERROR(st.List("index/", [&](const storage::ObjectInfo& o) {
      crypto::Id id;
      if (IdFromName(o.name, id)) again.insert(id);
      return Status::Ok();
    }));
    bool stable = !vanished && again == current;
    if (stable || attempt >= 5) break;
    LogDebug("index files changed while loading (a prune replaced them); loading again");
  }

  // Drop runs of index files that are gone (pruned).
  for (const auto& entry : fs::directory_iterator(dir / "runs", ec)) {
    // Names that are not ids are another process's files being written: leave them. Runs of
    // index files missing from our listing may belong to a newer listing of another process:
    // only old ones go (they are just a cache; a leftover costs disk, not correctness).
    crypto::Id id;
    if (crypto::Id::Parse(entry.path().filename().string(), id) && !current.count(id)) {
      auto age = fs::file_time_type::clock::now() - fs::last_write_time(entry.path(), ec);
      if (!ec && age > std::chrono::hours(1)) fs::remove(entry.path(), ec);
    }
  }
  for (const auto& [id, status] : idx->bad_files_) current.erase(id);
  idx->files_.assign(current.begin(), current.end());

  // The merged base is usable when every index file it holds still exists.
  std::unique_ptr<Mapped> base;
  fs::path merged = dir / "merged";
  if (fs::exists(merged, ec)) {
    std::ifstream in(merged, std::ios::binary);
    uint8_t nb[4] = {};
    in.read(reinterpret_cast<char*>(nb), 4);
    uint32_t n = GetU32(nb);
    uint64_t fsize = fs::file_size(merged, ec);
    bool ok = bool(in) && !ec && uint64_t(n) * 32 + 4 <= fsize;
    std::vector<crypto::Id> ids(ok ? n : 0);
    for (uint32_t i = 0; ok && i < n; ++i) {
      in.read(reinterpret_cast<char*>(ids[i].bytes.data()), 32);
      ok = bool(in) && current.count(ids[i]);
    }
    if (ok) {
      auto m = MapFile(merged, 4 + size_t(n) * 32);
      if (m.ok()) {
        base = std::move(*m);
        base->ids = std::move(ids);
      }
    }
    if (!base) fs::remove(merged, ec);
  }
  std::set<crypto::Id> in_base;
  if (base) in_base.insert(base->ids.begin(), base->ids.end());
  std::vector<std::unique_ptr<Mapped>> deltas;
  for (const auto& id : current) {
    if (in_base.count(id)) continue;
    auto m = MapFile(dir / "runs" / id.Hex(), 0);
    if (!m.ok()) {
      // Removed or torn since we looked (another process, a crash): fetch it again once.
      auto stored = st.Get(IndexName(id));
      if (!stored.ok()) return stored.status().WithContext(fmt::format("read index '{}'", id.Short()));
      LB_ASSIGN_OR_RETURN(Bytes run, OpenIndexFile(key, id, *stored));
      LB_RETURN_IF_ERROR(WriteFileAtomic(dir / "runs" / id.Hex(), run));
      m = MapFile(dir / "runs" / id.Hex(), 0);
      if (!m.ok()) return m.status();
    }
    (*m)->ids = {id};
    deltas.push_back(std::move(*m));
  }
  if (deltas.size() > kMaxDeltaRuns) {
    std::vector<const IndexRun*> runs;
    std::vector<crypto::Id> ids;
    if (base) {
      runs.push_back(&base->run);
      ids = base->ids;
    }
    for (const auto& d : deltas) {
      runs.push_back(&d->run);
      ids.push_back(d->ids[0]);
    }
    LB_RETURN_IF_ERROR(MergeRuns(runs, ids, merged));
    deltas.clear();
    LB_ASSIGN_OR_RETURN(base, MapFile(merged, 4 + ids.size() * 32));
    base->ids = std::move(ids);
  }
  // Condemned packs (prune's first phase) stay readable until prune deletes them.
  std::vector<std::string> condemned;
  LB_RETURN_IF_ERROR(st.List("condemned/", [&](const storage::ObjectInfo& o) {
    condemned.push_back(o.name);
    return Status::Ok();
  }));
  for (const auto& name : condemned) {
    crypto::Id cid;
    if (!IdFromName(name.substr(name.rfind('-') + 1), cid)) continue;
    auto stored = st.Get(name);
    if (!stored.ok()) continue;  // deleted meanwhile by a finishing prune
    auto run = OpenIndexFile(key, cid, *stored);
    if (run.ok()) idx->condemned_.push_back(std::move(*run));
  }
  if (base) idx->maps_.push_back(std::move(base));
  for (auto& d : deltas) idx->maps_.push_back(std::move(d));
  return idx;
}

Index::~Index() = default;

std::optional<BlobLocation> Index::Find(const crypto::Id& id) const {
  for (const auto& m : maps_)
    if (auto loc = m->run.Find(id)) return loc;
  std::lock_guard lock(mu_);
  auto it = pending_.find(id);
  if (it != pending_.end()) return it->second;
  return std::nullopt;
}

std::optional<BlobLocation> Index::FindAny(const crypto::Id& id) const {
  if (auto loc = Find(id)) return loc;
  for (const auto& c : condemned_) {
    auto run = IndexRun::FromBytes(c);
    if (run.ok())
      if (auto loc = run->Find(id)) return loc;
  }
  return std::nullopt;
}

void Index::AddPack(const IndexPack& pack) {
  std::lock_guard lock(mu_);
  for (const auto& e : pack.blobs)
    pending_[e.id] = BlobLocation{pack.id, pack.type, e.offset, e.length, e.raw_length};
}

Status Index::ForEach(
    const std::function<Status(const crypto::Id&, const BlobLocation&)>& fn) const {
  for (const auto& m : maps_) {
    for (uint32_t i = 0; i < m->run.entry_count(); ++i) {
      crypto::Id blob;
      BlobLocation loc;
      m->run.Entry(i, blob, loc);
      LB_RETURN_IF_ERROR(fn(blob, loc));
    }
  }
  return Status::Ok();
}

Status Index::ForEachSorted(
    const std::function<Status(const crypto::Id&, const BlobLocation&)>& fn) const {
  using Cursor = std::pair<size_t, uint32_t>;  // run, position
  auto greater = [&](const Cursor& a, const Cursor& b) {
    return std::memcmp(maps_[a.first]->run.EntryPtr(a.second),
                       maps_[b.first]->run.EntryPtr(b.second), 32) > 0;
  };
  std::priority_queue<Cursor, std::vector<Cursor>, decltype(greater)> heap(greater);
  for (size_t i = 0; i < maps_.size(); ++i)
    if (maps_[i]->run.entry_count()) heap.push({i, 0});
  while (!heap.empty()) {
    auto [r, pos] = heap.top();
    heap.pop();
    crypto::Id blob;
    BlobLocation loc;
    maps_[r]->run.Entry(pos, blob, loc);
    LB_RETURN_IF_ERROR(fn(blob, loc));
    if (pos + 1 < maps_[r]->run.entry_count()) heap.push({r, pos + 1});
  }
  return Status::Ok();
}

}  // namespace lb::repo
