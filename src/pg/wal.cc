#include "pg/wal.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <mutex>
#include <thread>
#include <nlohmann/json.hpp>

#include "util/log.h"

namespace lb::pg {

using nlohmann::json;

bool ParseSegmentName(std::string_view name, SegmentName& out) {
  if (name.size() != 24) return false;
  uint32_t v[3];
  for (int k = 0; k < 3; ++k) {
    uint32_t x = 0;
    for (int i = 0; i < 8; ++i) {
      char c = name[k * 8 + i];
      int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
      if (d < 0) return false;
      x = x << 4 | uint32_t(d);
    }
    v[k] = x;
  }
  out = {v[0], v[1], v[2]};
  return true;
}

std::string FormatSegmentName(const SegmentName& s) {
  return fmt::format("{:08X}{:08X}{:08X}", s.tli, s.log, s.seg);
}

uint64_t SegmentsPerLog(uint64_t seg_size) { return 0x100000000ull / seg_size; }

SegmentName NextSegment(const SegmentName& s, uint64_t seg_size) {
  SegmentName n = s;
  if (++n.seg >= SegmentsPerLog(seg_size)) {
    n.seg = 0;
    ++n.log;
  }
  return n;
}

SegmentName SegmentOfLsn(uint32_t tli, uint64_t lsn, uint64_t seg_size) {
  uint64_t segno = lsn / seg_size;
  return {tli, uint32_t(segno / SegmentsPerLog(seg_size)),
          uint32_t(segno % SegmentsPerLog(seg_size))};
}

uint64_t SegmentStartLsn(const SegmentName& s, uint64_t seg_size) {
  return (uint64_t(s.log) * SegmentsPerLog(seg_size) + s.seg) * seg_size;
}

bool ParseLsn(std::string_view text, uint64_t& lsn) {
  size_t slash = text.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 >= text.size()) return false;
  uint64_t hi = 0, lo = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (i == slash) continue;
    char c = char(toupper(text[i]));
    int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
    if (d < 0) return false;
    uint64_t& part = i < slash ? hi : lo;
    part = part << 4 | uint64_t(d);
    if (part > 0xffffffffull) return false;
  }
  lsn = hi << 32 | lo;
  return true;
}

std::string FormatLsn(uint64_t lsn) { return fmt::format("{:X}/{:X}", lsn >> 32, lsn & 0xffffffff); }

std::string WalObjectName(const std::string& source, const std::string& file) {
  SegmentName s;
  if (ParseSegmentName(file, s)) return "wal/" + source + "/" + file.substr(0, 16) + "/" + file;
  return "wal/" + source + "/meta/" + file;
}

namespace {
std::string ClusterObject(const std::string& source) { return "pg/" + source + "/cluster"; }

// A read-only mapping of a whole file: WAL segments are read once and straight from the
// page cache, without a copy into a zero-filled buffer.
class MappedFile {
 public:
  static Result<std::unique_ptr<MappedFile>> Open(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus(errno, fmt::format("open '{}'", path));
    struct stat st {};
    if (fstat(fd, &st) != 0) {
      Status s = ErrnoStatus(errno, fmt::format("stat '{}'", path));
      ::close(fd);
      return s;
    }
    auto m = std::unique_ptr<MappedFile>(new MappedFile());
    m->len_ = size_t(st.st_size);
    if (m->len_ > 0) {
      void* p = mmap(nullptr, m->len_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        Status s = ErrnoStatus(errno, fmt::format("mmap '{}'", path));
        ::close(fd);
        return s;
      }
      madvise(p, m->len_, MADV_SEQUENTIAL | MADV_WILLNEED);
      m->addr_ = static_cast<uint8_t*>(p);
    }
    ::close(fd);
    return m;
  }
  ~MappedFile() {
    if (addr_) munmap(addr_, len_);
  }
  ByteSpan bytes() const { return {addr_, len_}; }

 private:
  MappedFile() = default;
  uint8_t* addr_ = nullptr;
  size_t len_ = 0;
};

std::string BaseName(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}
}  // namespace

Result<SegmentHeader> ReadSegmentHeader(ByteSpan b) {
  if (b.size() < 40) return Err(Code::kCorruption, "WAL segment too short for its header");
  uint16_t magic = GetU16(b.data());
  uint16_t info = GetU16(b.data() + 2);
  if (magic < 0xD000 || magic > 0xDFFF)
    return Err(Code::kCorruption, "not a WAL segment (page magic {:#x})", magic);
  if (!(info & 0x0002)) return Err(Code::kCorruption, "WAL segment lacks its long page header");
  SegmentHeader h;
  h.tli = GetU32(b.data() + 4);
  h.pageaddr = GetU64(b.data() + 8);
  h.system_id = GetU64(b.data() + 24);
  h.segment_size = GetU32(b.data() + 32);
  return h;
}

Result<std::optional<ClusterInfo>> LoadClusterInfo(repo::Repository& repo,
                                                   const std::string& source) {
  auto b = repo.GetNamed(ClusterObject(source));
  if (!b.ok()) {
    if (b.status().code() == Code::kNotFound) return std::optional<ClusterInfo>();
    return b.status();
  }
  try {
    json j = json::parse(AsString(*b));
    ClusterInfo ci;
    ci.system_id = std::stoull(j.at("system_identifier").get<std::string>());
    ci.segment_size = j.at("wal_segment_size").get<uint32_t>();
    ci.version = j.value("version", 0);
    return std::optional<ClusterInfo>(ci);
  } catch (const std::exception& e) {
    return Err(Code::kCorruption, "cluster info of '{}': {}", source, e.what());
  }
}

Status RegisterCluster(repo::Repository& repo, const std::string& source, ClusterInfo info) {
  auto encode = [](const ClusterInfo& ci) {
    return json{{"system_identifier", std::to_string(ci.system_id)},
                {"wal_segment_size", ci.segment_size},
                {"version", ci.version}}
        .dump();
  };
  LB_ASSIGN_OR_RETURN(auto existing, LoadClusterInfo(repo, source));
  if (!existing) {
    std::string text = encode(info);
    Status s = repo.PutNamed(ClusterObject(source), AsBytes(text), 0, true);
    if (s.code() != Code::kAlreadyExists) return s;
    LB_ASSIGN_OR_RETURN(existing, LoadClusterInfo(repo, source));  // lost a race: compare
    if (!existing) return Err(Code::kInternal, "cluster info vanished");
  }
  if (existing->system_id != info.system_id)
    return Status(Code::kFailedPrecondition,
                  fmt::format("this is cluster {} but source '{}' of the repository belongs to "
                              "cluster {}", info.system_id, source, existing->system_id))
        .WithHint("use another --source name for another cluster");
  if (existing->version == 0 && info.version != 0) {
    ClusterInfo merged = *existing;
    merged.version = info.version;
    std::string text = encode(merged);
    return repo.PutNamed(ClusterObject(source), AsBytes(text), 0, false);
  }
  return Status::Ok();
}

Result<PushResult> PushWal(repo::Repository& repo, const std::string& source,
                           const std::string& path, int level) {
  std::string name = BaseName(path);
  SegmentName seg;
  bool is_segment = ParseSegmentName(name, seg);
  bool known = is_segment || name.find(".history") != std::string::npos ||
               name.find(".backup") != std::string::npos ||
               name.find(".partial") != std::string::npos;
  if (!known) return Err(Code::kInvalidArgument, "'{}' is not a WAL file name", name);
  LB_ASSIGN_OR_RETURN(auto mapped, MappedFile::Open(path));
  ByteSpan data = mapped->bytes();
  if (is_segment || name.find(".partial") != std::string::npos) {
    LB_ASSIGN_OR_RETURN(SegmentHeader h, ReadSegmentHeader(data));
    if (is_segment && h.segment_size != data.size())
      return Err(Code::kCorruption, "'{}' holds {} bytes but its header says {}", name,
                 data.size(), h.segment_size);
    LB_RETURN_IF_ERROR(RegisterCluster(repo, source, {h.system_id, h.segment_size, 0})
                           .WithContext(fmt::format("refusing to archive '{}'", name)));
  }
  PushResult res;
  res.bytes = data.size();
  std::string object = WalObjectName(source, name);
  Status s = repo.PutNamed(object, data, level, true);
  if (s.code() == Code::kAlreadyExists) {
    // Archived before: PostgreSQL retries after a crash between our durable write and its
    // bookkeeping. Same bytes: success. Different bytes: two clusters (split brain) or a
    // damaged file; refuse, never overwrite.
    LB_ASSIGN_OR_RETURN(Bytes old, repo.GetNamed(object));
    if (old.size() == data.size() && std::equal(old.begin(), old.end(), data.begin())) {
      res.already_there = true;
      return res;
    }
    return Status(Code::kAlreadyExists,
                  fmt::format("'{}' is already archived with different content", name))
        .WithHint("another cluster may be archiving into the same source; check --source");
  }
  LB_RETURN_IF_ERROR(s);
  return res;
}

Status GetWal(repo::Repository& repo, const std::string& source, const std::string& name,
              const std::string& dest) {
  auto data = repo.GetNamed(WalObjectName(source, name));
  if (!data.ok()) return data.status();
  std::string tmp = dest + ".lifeboat-tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus(errno, fmt::format("create '{}'", tmp));
  size_t off = 0;
  while (off < data->size()) {
    ssize_t n = ::write(fd, data->data() + off, data->size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Status st = ErrnoStatus(errno, fmt::format("write '{}'", tmp));
      ::close(fd);
      ::unlink(tmp.c_str());
      return st;
    }
    off += size_t(n);
  }
  if (::fsync(fd) != 0) {
    Status st = ErrnoStatus(errno, fmt::format("fsync '{}'", tmp));
    ::close(fd);
    ::unlink(tmp.c_str());
    return st;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), dest.c_str()) != 0) {
    Status st = ErrnoStatus(errno, fmt::format("rename to '{}'", dest));
    ::unlink(tmp.c_str());
    return st;
  }
  return Status::Ok();
}

Result<int> PrefetchWal(repo::Repository& repo, const std::string& source,
                        const std::string& after, const std::string& spool_dir, int count,
                        uint64_t seg_size) {
  SegmentName s;
  if (!ParseSegmentName(after, s)) return 0;
  std::vector<std::string> names;
  for (int i = 0; i < count; ++i) {
    s = NextSegment(s, seg_size);
    names.push_back(FormatSegmentName(s));
  }
  std::atomic<int> fetched{0};
  std::atomic<bool> stop{false};
  std::mutex mu;
  Status first_error;
  // Two fetches in flight: enough to hide per-object latency, modest on the database host.
  std::vector<std::thread> workers;
  std::atomic<size_t> next{0};
  for (int w = 0; w < 2; ++w) {
    workers.emplace_back([&] {
      while (!stop) {
        size_t i = next++;
        if (i >= names.size()) return;
        std::string dest = spool_dir + "/" + names[i];
        struct stat st {};
        if (::stat(dest.c_str(), &st) == 0) continue;
        Status g = GetWal(repo, source, names[i], dest);
        if (g.ok()) {
          fetched++;
        } else {
          stop = true;  // the end of the archive (or an error: wal-get itself will report it)
          if (g.code() != Code::kNotFound) {
            std::lock_guard lock(mu);
            if (first_error.ok()) first_error = g;
          }
        }
      }
    });
  }
  for (auto& t : workers) t.join();
  if (!first_error.ok()) return first_error;
  return fetched.load();
}

Result<std::vector<ArchivedWal>> ListWal(repo::Repository& repo, const std::string& source) {
  std::vector<ArchivedWal> out;
  std::string prefix = "wal/" + source + "/";
  LB_RETURN_IF_ERROR(repo.storage().List(prefix, [&](const storage::ObjectInfo& o) {
    out.push_back({BaseName(o.name), o.size, o.mtime_unix});
    return Status::Ok();
  }));
  std::sort(out.begin(), out.end(),
            [](const ArchivedWal& a, const ArchivedWal& b) { return a.name < b.name; });
  return out;
}

}  // namespace lb::pg
