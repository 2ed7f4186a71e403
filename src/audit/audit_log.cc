#include "audit/audit_log.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <sstream>

#include "repo/names.h"
#include "util/bytes.h"

namespace lb::audit {

using nlohmann::json;

namespace {

// Strings from the command line and from error messages may hold bytes that are not UTF-8
// (file names); JSON cannot carry those, so each invalid byte becomes the text "\xNN".
std::string ValidUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len = 0;      // of the sequence c starts; 0: c cannot start one
    uint32_t min = 0;    // the smallest code point that needs `len` bytes (no overlong forms)
    if (c < 0x80) {
      len = 1;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2;
      min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      min = 0x10000;
    }
    bool ok = len > 0 && i + len <= s.size();
    uint32_t cp = len == 1 ? c : c & (0x7F >> len);
    for (size_t k = 1; ok && k < len; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      ok = (d & 0xC0) == 0x80;
      cp = (cp << 6) | (d & 0x3F);
    }
    ok = ok && (len == 1 || (cp >= min && cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF)));
    if (ok) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out += fmt::format("\\x{:02x}", c);
      ++i;
    }
  }
  return out;
}

std::string Capped(std::string_view s, size_t max) {
  if (s.size() <= max) return ValidUtf8(s);
  return ValidUtf8(s.substr(0, max)) + fmt::format("... ({} more bytes)", s.size() - max);
}

Status RetryFlock(int fd, int op, const std::string& path) {
  while (::flock(fd, op) != 0) {
    if (errno != EINTR) return ErrnoStatus(errno, fmt::format("lock audit log '{}'", path));
  }
  return Status::Ok();
}

// Holds an flock for its lifetime.
class FileLock {
 public:
  static Result<FileLock> Take(int fd, int op, const std::string& path) {
    LB_RETURN_IF_ERROR(RetryFlock(fd, op, path));
    return FileLock(fd);
  }
  FileLock(FileLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  FileLock& operator=(FileLock&&) = delete;
  ~FileLock() {
    if (fd_ >= 0) ::flock(fd_, LOCK_UN);
  }

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_;
};

Status PreadAll(int fd, std::string& buf, uint64_t offset, const std::string& path) {
  size_t done = 0;
  while (done < buf.size()) {
    ssize_t n = ::pread(fd, buf.data() + done, buf.size() - done, off_t(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, fmt::format("read audit log '{}'", path));
    if (n == 0) {
      buf.resize(done);  // shrunk meanwhile; what was read is what there is
      break;
    }
    done += size_t(n);
  }
  return Status::Ok();
}

Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, fmt::format("write audit log '{}'", path));
    data.remove_prefix(size_t(n));
  }
  return Status::Ok();
}

Result<uint64_t> FileSize(int fd, const std::string& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return ErrnoStatus(errno, fmt::format("stat audit log '{}'", path));
  return uint64_t(st.st_size);
}

// mkdir -p with mode 0700 for what it creates; fsyncs each parent it adds to.
Status MakeDirs(const std::string& dir) {
  if (dir.empty()) return Status::Ok();
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0) return Status::Ok();
  const size_t slash = dir.find_last_of('/');
  const std::string parent = slash == std::string::npos ? "" : dir.substr(0, slash);
  if (!parent.empty()) LB_RETURN_IF_ERROR(MakeDirs(parent));
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    return ErrnoStatus(errno, fmt::format("create directory '{}'", dir));
  int pfd = ::open(parent.empty() ? "." : parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (pfd >= 0) {
    ::fsync(pfd);
    ::close(pfd);
  }
  return Status::Ok();
}

std::string DirOf(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

bool IsHex(std::string_view s, size_t len) {
  return s.size() == len && s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

std::string RandomLogId() {
  uint8_t id[16];
  crypto::RandomBytes(id);
  return HexEncode(id);
}

// The end of the file: its last complete line and whatever follows the last newline.
struct Tail {
  bool has_last = false;
  std::string last;        // the last complete line, without its newline
  uint64_t complete_end = 0;  // offset just after the last newline
  std::string torn;        // bytes after the last newline
};

Result<Tail> ReadTail(int fd, const std::string& path) {
  LB_ASSIGN_OR_RETURN(uint64_t size, FileSize(fd, path));
  Tail t;
  for (uint64_t window = 2 * kMaxRecordBytes;; window *= 2) {
    const uint64_t start = size > window ? size - window : 0;
    std::string buf(size - start, '\0');
    LB_RETURN_IF_ERROR(PreadAll(fd, buf, start, path));
    const size_t nl = buf.rfind('\n');
    if (nl == std::string::npos) {
      if (start > 0) continue;
      t.torn = std::move(buf);
      return t;
    }
    const size_t before = nl == 0 ? std::string::npos : buf.rfind('\n', nl - 1);
    if (before == std::string::npos && start > 0) continue;
    const size_t line_start = before == std::string::npos ? 0 : before + 1;
    t.has_last = true;
    t.last = buf.substr(line_start, nl - line_start);
    t.complete_end = start + nl + 1;
    t.torn = buf.substr(nl + 1);
    return t;
  }
}

// Reads complete lines of [0, size) of a file in large blocks.
class LineReader {
 public:
  LineReader(int fd, uint64_t size, const std::string& path)
      : fd_(fd), size_(size), path_(path) {}
  // False at the end. `terminated` is false for a last line without its newline.
  Result<bool> Next(std::string& line, bool& terminated) {
    for (;;) {
      const size_t nl = buf_.find('\n', pos_);
      if (nl != std::string::npos) {
        line.assign(buf_, pos_, nl - pos_);
        pos_ = nl + 1;
        terminated = true;
        return true;
      }
      if (offset_ >= size_) {
        if (pos_ >= buf_.size()) return false;
        line.assign(buf_, pos_);
        pos_ = buf_.size();
        terminated = false;
        return true;
      }
      buf_.erase(0, pos_);
      pos_ = 0;
      std::string chunk(std::min<uint64_t>(1 << 20, size_ - offset_), '\0');
      LB_RETURN_IF_ERROR(PreadAll(fd_, chunk, offset_, path_));
      if (chunk.empty()) {
        size_ = offset_;  // the file shrank under us
        continue;
      }
      offset_ += chunk.size();
      buf_ += chunk;
    }
  }

 private:
  int fd_;
  uint64_t size_;
  const std::string& path_;
  uint64_t offset_ = 0;
  std::string buf_;
  size_t pos_ = 0;
};

json BuildRecord(const Event& e, const std::string& log_id, uint64_t seq,
                 const std::string& prev, const std::optional<ChainKey>& key,
                 const std::string& repair) {
  json argv = json::array();
  size_t argv_bytes = 0;
  for (size_t i = 0; i < e.argv.size(); ++i) {
    std::string a = Capped(e.argv[i], 4096);
    // Half the record for the command line leaves room for everything else.
    if (argv_bytes + a.size() > kMaxRecordBytes / 2) {
      argv.push_back(fmt::format("... ({} more arguments)", e.argv.size() - i));
      break;
    }
    argv_bytes += a.size() + 4;
    argv.push_back(std::move(a));
  }
  json repos = json::array();
  for (size_t i = 0; i < e.repositories.size() && i < 16; ++i)
    repos.push_back(Capped(e.repositories[i], 1024));
  json r = {{"v", kRecordVersion},
            {"log", log_id},
            {"seq", seq},
            {"time", repo::FormatRfc3339(e.time_ns)},
            {"user", Capped(e.user, 256)},
            {"uid", e.uid},
            {"host", Capped(e.host, 256)},
            {"pid", e.pid},
            {"operation", Capped(e.operation, 256)},
            {"argv", std::move(argv)},
            {"repositories", std::move(repos)},
            {"exit_code", e.exit_code},
            {"result", Capped(e.result, 4096)},
            {"duration_ms", e.duration_ms},
            {"alg", std::string(key ? kAlgHmac : kAlgSha256)},
            {"prev", prev}};
  if (key) r["key_id"] = key->id;
  if (!repair.empty()) r["repair"] = Capped(repair, 8192);
  r["hash"] = RecordHash(r, key ? &*key : nullptr);
  return r;
}

}  // namespace

Result<ChainFields> ParseRecord(std::string_view line) {
  ChainFields p;
  p.record = json::parse(line, nullptr, false);
  if (p.record.is_discarded()) return Err(Code::kCorruption, "not JSON");
  if (!p.record.is_object()) return Err(Code::kCorruption, "not a JSON object");
  auto str = [&](const char* name, std::string& out) -> Status {
    auto it = p.record.find(name);
    if (it == p.record.end() || !it->is_string()) return Err(Code::kCorruption, "no '{}'", name);
    out = it->get<std::string>();
    return Status::Ok();
  };
  auto v = p.record.find("v");
  if (v == p.record.end() || !v->is_number_unsigned() || v->get<uint64_t>() != kRecordVersion)
    return Err(Code::kCorruption, "no 'v' of {}", kRecordVersion);
  auto seq = p.record.find("seq");
  if (seq == p.record.end() || !seq->is_number_unsigned() || seq->get<uint64_t>() == 0)
    return Err(Code::kCorruption, "no 'seq'");
  p.seq = seq->get<uint64_t>();
  LB_RETURN_IF_ERROR(str("log", p.log));
  LB_RETURN_IF_ERROR(str("prev", p.prev));
  LB_RETURN_IF_ERROR(str("hash", p.hash));
  LB_RETURN_IF_ERROR(str("alg", p.alg));
  if (!IsHex(p.log, 32)) return Err(Code::kCorruption, "'log' is not 32 hex digits");
  if (!IsHex(p.hash, 64)) return Err(Code::kCorruption, "'hash' is not 64 hex digits");
  if (p.alg == kAlgHmac) {
    LB_RETURN_IF_ERROR(str("key_id", p.key_id));
  } else if (p.alg != kAlgSha256) {
    return Err(Code::kCorruption, "unknown 'alg' '{}'", p.alg);
  }
  return p;
}

Result<ChainKey> ChainKey::FromContents(std::string_view contents) {
  if (contents.ends_with('\n')) contents.remove_suffix(1);
  if (contents.ends_with('\r')) contents.remove_suffix(1);
  ChainKey k;
  Bytes raw;
  if (contents.size() == 64 && HexDecode(contents, raw)) {
    std::copy(raw.begin(), raw.end(), k.key.bytes.begin());
  } else if (contents.size() >= 16) {
    k.key.bytes = crypto::Sha256(AsBytes(contents)).bytes;
  } else {
    return Status(Code::kInvalidArgument,
                  "an audit key must be 64 hex digits or at least 16 bytes of text")
        .WithHint("make one with: openssl rand -hex 32 > FILE");
  }
  k.id = crypto::ContentId(k.key, AsBytes("lifeboat-audit-key-id")).Hex().substr(0, 16);
  return k;
}

Result<ChainKey> LoadChainKey(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return ErrnoStatus(errno, fmt::format("read audit key file '{}'", path));
  std::stringstream ss;
  ss << in.rdbuf();
  auto k = ChainKey::FromContents(ss.str());
  if (!k.ok()) return k.status().WithContext(fmt::format("audit key file '{}'", path));
  return k;
}

std::string DefaultLogPath() {
  if (const char* x = std::getenv("XDG_STATE_HOME"); x && *x == '/')
    return std::string(x) + "/lifeboat/audit.log";
  if (const char* h = std::getenv("HOME"); h && *h)
    return std::string(h) + "/.local/state/lifeboat/audit.log";
  if (struct passwd* pw = getpwuid(geteuid()); pw && pw->pw_dir && *pw->pw_dir)
    return std::string(pw->pw_dir) + "/.local/state/lifeboat/audit.log";
  return "";
}

void SetProcessFields(Event& e) {
  if (struct passwd* pw = getpwuid(geteuid())) e.user = pw->pw_name;
  else e.user = std::to_string(geteuid());
  e.uid = int64_t(geteuid());
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  e.host = host;
  e.pid = int64_t(getpid());
}

std::string RecordHash(const json& record, const ChainKey* key) {
  json c = record;
  c.erase("hash");
  const std::string canonical = c.dump(-1, ' ', false, json::error_handler_t::replace);
  if (key) return crypto::ContentId(key->key, AsBytes(canonical)).Hex();
  return crypto::Sha256(AsBytes(canonical)).Hex();
}

std::string GenesisHash(std::string_view log_id) {
  return crypto::Sha256(AsBytes("lifeboat-audit-genesis\n" + std::string(log_id))).Hex();
}

Result<std::unique_ptr<AuditLog>> AuditLog::Open(const std::string& path,
                                                 std::optional<ChainKey> key) {
  if (path.empty()) return Err(Code::kInvalidArgument, "audit log path is empty");
  int fd = ::open(path.c_str(), O_RDWR | O_APPEND | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    LB_RETURN_IF_ERROR(MakeDirs(DirOf(path)));
    fd = ::open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0) {
      // The new name must survive a crash along with the first record.
      int dfd = ::open(DirOf(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
      }
    }
  }
  if (fd < 0) return ErrnoStatus(errno, fmt::format("open audit log '{}'", path));
  return std::unique_ptr<AuditLog>(new AuditLog(path, fd, std::move(key)));
}

AuditLog::~AuditLog() { ::close(fd_); }

Result<AppendedRecord> AuditLog::Append(const Event& e) {
  std::lock_guard<std::mutex> guard(mu_);
  LB_ASSIGN_OR_RETURN(FileLock lock, FileLock::Take(fd_, LOCK_EX, path_));
  return AppendLocked(e);
}

Result<AppendedRecord> AuditLog::AppendLocked(const Event& e) {
  LB_ASSIGN_OR_RETURN(Tail tail, ReadTail(fd_, path_));
  std::string repair;
  std::optional<ChainFields> last;
  if (tail.has_last) {
    auto p = ParseRecord(tail.last);
    if (p.ok()) last = std::move(*p);
  }
  if (!tail.torn.empty()) {
    // A final line without its newline. Writes are whole lines, so this is a write that a
    // crash cut off, or (rarely) a whole record that lost only its newline: keep the latter,
    // since it may be the only trace of an operation.
    auto p = ParseRecord(tail.torn);
    const bool chains =
        p.ok() && (last ? p->log == last->log && p->seq == last->seq + 1 && p->prev == last->hash
                        : !tail.has_last && p->seq == 1 && p->prev == GenesisHash(p->log));
    const bool hash_ok =
        p.ok() && (p->alg == kAlgSha256 ? RecordHash(p->record, nullptr) == p->hash
                                        : !key_ || key_->id != p->key_id ||
                                              RecordHash(p->record, &*key_) == p->hash);
    if (chains && hash_ok) {
      LB_RETURN_IF_ERROR(WriteAll(fd_, "\n", path_));
      repair = fmt::format("completed record {}: it had no newline", p->seq);
      last = std::move(*p);
    } else {
      if (::ftruncate(fd_, off_t(tail.complete_end)) != 0)
        return ErrnoStatus(errno, fmt::format("truncate audit log '{}'", path_));
      repair = fmt::format("removed an incomplete final record of {} bytes at offset {} "
                           "(sha256 {}): {}",
                           tail.torn.size(), tail.complete_end,
                           crypto::Sha256(AsBytes(tail.torn)).Hex(), Capped(tail.torn, 2048));
    }
  }
  std::string log_id, prev;
  uint64_t seq = 1;
  if (last) {
    log_id = last->log;
    seq = last->seq + 1;
    prev = last->hash;
  } else if (tail.has_last) {
    // The last line is not a record: an edit, or damage. The new record still goes in (an
    // operation must not go unrecorded because of damage); it continues after the highest
    // seq in the file and names the damaged line by its plain SHA-256. verify reports the line.
    LB_ASSIGN_OR_RETURN(uint64_t size, FileSize(fd_, path_));
    LineReader rd(fd_, size, path_);
    std::string line;
    bool terminated = false;
    uint64_t lines = 0, max_seq = 0;
    for (;;) {
      LB_ASSIGN_OR_RETURN(bool more, rd.Next(line, terminated));
      if (!more) break;
      ++lines;
      auto p = ParseRecord(line);
      if (!p.ok()) continue;
      if (log_id.empty()) log_id = p->log;
      max_seq = std::max(max_seq, p->seq);
    }
    if (log_id.empty()) log_id = RandomLogId();
    seq = max_seq + 1;
    prev = crypto::Sha256(AsBytes(tail.last)).Hex();
    repair += fmt::format("{}the last line ({}) is not a valid record; this record follows it",
                          repair.empty() ? "" : "; ", lines);
  } else {
    log_id = RandomLogId();
    prev = GenesisHash(log_id);
  }
  const json r = BuildRecord(e, log_id, seq, prev, key_, repair);
  AppendedRecord out;
  out.log_id = log_id;
  out.seq = seq;
  out.hash = r["hash"].get<std::string>();
  out.line = r.dump(-1, ' ', false, json::error_handler_t::replace);
  out.repair = repair;
  LB_ASSIGN_OR_RETURN(uint64_t before, FileSize(fd_, path_));
  Status s = WriteAll(fd_, out.line + "\n", path_);
  // EINVAL: a file that cannot be synced (a character device); there is nothing to make durable.
  if (s.ok() && ::fdatasync(fd_) != 0 && errno != EINVAL)
    s = ErrnoStatus(errno, fmt::format("sync audit log '{}'", path_));
  if (!s.ok()) {
    // Leave no half record behind when we can; the next append would remove it anyway.
    (void)::ftruncate(fd_, off_t(before));
    return s;
  }
  return out;
}

Result<VerifyResult> VerifyLog(const std::string& path, const ChainKey* key) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Err(Code::kNotFound, "audit log '{}' does not exist", path);
    return ErrnoStatus(errno, fmt::format("open audit log '{}'", path));
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  uint64_t size = 0;
  {
    // Appends hold an exclusive lock from reading the end to writing a whole line: the size
    // seen under a shared lock ends with a complete record, unless a crash cut one off.
    LB_ASSIGN_OR_RETURN(FileLock lock, FileLock::Take(fd, LOCK_SH, path));
    LB_ASSIGN_OR_RETURN(size, FileSize(fd, path));
  }

  VerifyResult r;
  bool have_last = false;
  uint64_t last_seq = 0;
  std::string last_hash;
  // A gap found at `gap_line`: record `gap_seq` where `gap_expected` was due. Whether that
  // record was removed or moved is known only once the rest of the file has been read.
  uint64_t gap_line = 0, gap_seq = 0, gap_expected = 0;
  auto problem = [&](ProblemKind kind, uint64_t line, uint64_t seq, std::string message) {
    if (!r.problem && gap_line == 0) r.problem = Problem{kind, line, seq, std::move(message)};
  };
  auto checking = [&] { return !r.problem && gap_line == 0; };

  auto check = [&](const ChainFields& p, uint64_t lineno) {
    if (!have_last) {
      r.log_id = p.log;
    } else if (p.log != r.log_id) {
      return problem(ProblemKind::kForeignLog, lineno, p.seq,
                     fmt::format("line {} holds record {} of another log ({}; this log is {}) "
                                 "— it was inserted",
                                 lineno, p.seq, p.log.substr(0, 8), r.log_id.substr(0, 8)));
    }
    if (p.alg == kAlgHmac) {
      r.keyed = true;
      if (!key) {
        r.key_needed = true;
      } else if (p.key_id != key->id) {
        return problem(ProblemKind::kWrongKey, lineno, p.seq,
                       fmt::format("record {} (line {}) was keyed with key {}, not with the "
                                   "given key {}",
                                   p.seq, lineno, p.key_id, key->id));
      } else if (RecordHash(p.record, key) != p.hash) {
        return problem(ProblemKind::kEdited, lineno, p.seq,
                       fmt::format("record {} (line {}): hash mismatch — the record was edited",
                                   p.seq, lineno));
      }
    } else {
      if (key)
        return problem(ProblemKind::kUnkeyed, lineno, p.seq,
                       fmt::format("record {} (line {}) is not keyed although a key was given: "
                                   "it was written, or rewritten, without the key",
                                   p.seq, lineno));
      if (RecordHash(p.record, nullptr) != p.hash)
        return problem(ProblemKind::kEdited, lineno, p.seq,
                       fmt::format("record {} (line {}): hash mismatch — the record was edited",
                                   p.seq, lineno));
    }
    const uint64_t expected = have_last ? last_seq + 1 : 1;
    if (p.seq > expected) {
      gap_line = lineno;
      gap_seq = p.seq;
      gap_expected = expected;
      return;
    }
    if (p.seq < expected)
      return problem(ProblemKind::kReordered, lineno, p.seq,
                     fmt::format("records out of order at line {} (seq {} after {})", lineno,
                                 p.seq, last_seq));
    const std::string& want = have_last ? last_hash : GenesisHash(p.log);
    if (p.prev != want) {
      if (!have_last)
        return problem(ProblemKind::kBrokenLink, lineno, p.seq,
                       "prev of record 1 is not the log's genesis value — the start of the log "
                       "was replaced");
      return problem(ProblemKind::kBrokenLink, lineno, p.seq,
                     fmt::format("prev of record {} does not match record {} — record {} was "
                                 "replaced or rewritten",
                                 p.seq, last_seq, last_seq));
    }
    have_last = true;
    last_seq = p.seq;
    last_hash = p.hash;
  };

  LineReader rd(fd, size, path);
  std::string line;
  bool terminated = false;
  uint64_t lineno = 0;
  for (;;) {
    LB_ASSIGN_OR_RETURN(bool more, rd.Next(line, terminated));
    if (!more) break;
    ++lineno;
    auto p = ParseRecord(line);
    if (!terminated && !p.ok()) {
      r.incomplete = Problem{ProblemKind::kIncomplete, lineno, 0,
                             fmt::format("incomplete final record at line {} ({} bytes without a "
                                         "newline): a write was cut off, e.g. by a crash; the "
                                         "next append removes it",
                                         lineno, line.size())};
      break;
    }
    if (terminated) ++r.lines;
    else r.note = fmt::format("the final record (line {}) has no newline", lineno);
    if (!p.ok()) {
      problem(ProblemKind::kNotARecord, lineno, 0,
              fmt::format("line {} is not a valid record ({}) — it was edited or inserted",
                          lineno, p.status().message()));
      continue;
    }
    ++r.records;
    r.hashes.emplace(p->seq, p->hash);
    r.last_seq = std::max(r.last_seq, p->seq);
    if (checking()) check(*p, lineno);
  }
  if (gap_line != 0) {
    // The missing record further down the file means records were moved, not removed.
    const bool later = r.hashes.count(gap_expected) > 0;
    std::string message;
    ProblemKind kind = ProblemKind::kRemoved;
    if (later) {
      kind = ProblemKind::kReordered;
      message = fmt::format("records out of order at line {} (seq {} before {})", gap_line,
                            gap_seq, gap_expected);
    } else {
      std::string missing = gap_seq - gap_expected == 1
                                ? fmt::format("record {} was removed", gap_expected)
                                : fmt::format("records {}-{} were removed", gap_expected,
                                              gap_seq - 1);
      message = gap_expected == 1
                    ? fmt::format("the log starts at record {}: {}", gap_seq, missing)
                    : fmt::format("record {} follows record {}: {}", gap_seq, gap_expected - 1,
                                  missing);
    }
    r.problem = Problem{kind, gap_line, gap_seq, std::move(message)};
  }
  if (!r.problem) r.last_hash = last_hash;
  return r;
}

Result<std::vector<LogLine>> ReadLog(const std::string& path, size_t last) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Err(Code::kNotFound, "audit log '{}' does not exist", path);
    return ErrnoStatus(errno, fmt::format("open audit log '{}'", path));
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  LB_ASSIGN_OR_RETURN(uint64_t size, FileSize(fd, path));
  LineReader rd(fd, size, path);
  std::deque<LogLine> lines;
  std::string text;
  bool terminated = false;
  uint64_t lineno = 0;
  for (;;) {
    LB_ASSIGN_OR_RETURN(bool more, rd.Next(text, terminated));
    if (!more) break;
    LogLine l;
    l.line = ++lineno;
    l.text = text;
    json j = json::parse(text, nullptr, false);
    if (!j.is_discarded() && j.is_object()) l.record = std::move(j);
    lines.push_back(std::move(l));
    if (last > 0 && lines.size() > last) lines.pop_front();
  }
  return std::vector<LogLine>(std::make_move_iterator(lines.begin()),
                              std::make_move_iterator(lines.end()));
}

}  // namespace lb::audit
