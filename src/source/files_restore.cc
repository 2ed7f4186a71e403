#include "source/files_restore.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>

#include "repo/tree.h"
#include "util/log.h"
#include "util/thread_pool.h"

namespace lb::source {

using repo::Node;
using repo::NodeType;

namespace {

struct timespec Ts(int64_t ns) {
  struct timespec t;
  t.tv_sec = time_t(ns / 1000000000);
  t.tv_nsec = long(ns % 1000000000);
  if (t.tv_nsec < 0) {
    t.tv_nsec += 1000000000;
    t.tv_sec -= 1;
  }
  return t;
}

// An open output file shared by the segment tasks that write it; the last one to finish
// sets its metadata and closes it.
struct OpenFile {
  int fd = -1;
  Node node;
  std::string path;     // local path
  std::string display;  // snapshot path
  std::atomic<int> segments_left{0};
  std::atomic<bool> damaged{false};
  std::atomic<bool> failed{false};
};

// Large files are split into segments of about this many bytes, restored in parallel.
constexpr uint64_t kSegmentBytes = 32u << 20;

class FileRestore {
 public:
  FileRestore(repo::Repository& repo, const FileRestoreOptions& opts)
      : repo_(repo), opts_(opts),
        pool_(opts.threads ? opts.threads : ThreadPool::DefaultThreads(), 0) {}

  Result<FileRestoreResult> Run(const repo::Snapshot& snap);

 private:
  struct DirMeta {
    std::string path;
    Node node;
  };
  Status Walk(const crypto::Id& tree, const std::string& snap_path, const std::string& local);
  bool Wanted(const std::string& snap_path, bool& whole) const;
  void RestoreFile(const Node& node, const std::string& path, const std::string& display);
  void DeltaFile(const Node& node, const std::string& path, const std::string& display);
  void RemoveExtras(const std::vector<Node>& nodes, const std::string& snap_path,
                    const std::string& local);
  void WriteSegment(const std::shared_ptr<OpenFile>& f, size_t first, size_t last, uint64_t off);
  void FinishFile(OpenFile& f);
  Status Special(const Node& node, const std::string& path);
  void ApplyMeta(const Node& node, const std::string& path, int fd);
  void LocalError(std::string msg) {
    LogWarning("{}", msg);
    std::lock_guard lock(mu_);
    res_.errors.push_back(std::move(msg));
  }

  repo::Repository& repo_;
  const FileRestoreOptions& opts_;
  repo::Index* index_ = nullptr;
  bool as_root_ = geteuid() == 0;
  std::mutex mu_;
  FileRestoreResult res_;                                      // guarded by mu_ (lists)
  std::vector<DirMeta> dirs_;                                  // walker thread only
  std::map<std::pair<uint64_t, uint64_t>, std::string> links_;  // walker thread only
  std::vector<std::pair<std::string, std::string>> deferred_links_;  // walker thread only
  std::atomic<uint64_t> files_{0}, bytes_{0}, others_{0};
  ThreadPool pool_;
};

bool FileRestore::Wanted(const std::string& p, bool& whole) const {
  for (const auto& ex : opts_.excludes)
    if (p == ex || (p.size() > ex.size() && p.compare(0, ex.size(), ex) == 0 && p[ex.size()] == '/'))
      return false;
  whole = opts_.includes.empty();
  if (whole) return true;
  for (const auto& inc : opts_.includes) {
    if (p == inc || (p.size() > inc.size() && p.compare(0, inc.size(), inc) == 0 &&
                     (inc == "/" || p[inc.size()] == '/'))) {
      whole = true;
      return true;
    }
  }
  for (const auto& inc : opts_.includes)
    if (inc.size() > p.size() && inc.compare(0, p.size(), p) == 0 && inc[p.size()] == '/')
      return true;  // an ancestor of an included path
  return false;
}

void FileRestore::ApplyMeta(const Node& node, const std::string& path, int fd) {
  if (as_root_) {
    int r = fd >= 0 ? fchown(fd, node.uid, node.gid)
                    : lchown(path.c_str(), node.uid, node.gid);
    if (r != 0) LocalError(ErrnoStatus(errno, "chown '" + PrintableName(path) + "'").ToString());
  }
  if (node.type != NodeType::kSymlink) {
    int r = fd >= 0 ? fchmod(fd, node.mode) : chmod(path.c_str(), node.mode);
    if (r != 0) LocalError(ErrnoStatus(errno, "chmod '" + PrintableName(path) + "'").ToString());
  }
  struct timespec times[2] = {Ts(node.mtime_ns), Ts(node.mtime_ns)};
  int r = fd >= 0 ? futimens(fd, times)
                  : utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW);
  if (r != 0) LocalError(ErrnoStatus(errno, "set times '" + PrintableName(path) + "'").ToString());
}

void FileRestore::FinishFile(OpenFile& f) {
  if (!f.failed && ftruncate(f.fd, off_t(f.node.size)) != 0) {
    LocalError(ErrnoStatus(errno, "truncate '" + PrintableName(f.path) + "'").ToString());
    f.failed = true;
  }
  if (f.damaged) {
    // Keep the time of this restore, not the snapshot's: a file with zeroed ranges must not
    // look like the intact original to a later backup or sync comparing size and mtime.
    Node meta = f.node;
    meta.mtime_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                        std::chrono::system_clock::now().time_since_epoch()).count();
    ApplyMeta(meta, f.path, f.fd);
  } else {
    ApplyMeta(f.node, f.path, f.fd);
  }
  if (::close(f.fd) != 0 && !f.failed)
    LocalError(ErrnoStatus(errno, "close '" + PrintableName(f.path) + "'").ToString());
  if (f.damaged) {
    std::lock_guard lock(mu_);
    res_.damaged.push_back(f.display);
  }
  files_++;
  if (opts_.progress) opts_.progress->files_done++;
}

void FileRestore::WriteSegment(const std::shared_ptr<OpenFile>& f, size_t first, size_t last,
                               uint64_t off) {
  for (size_t i = first; i < last && !f->failed; ++i) {
    const crypto::Id& id = f->node.content[i];
    auto loc = index_->FindAny(id);
    Result<Bytes> data = loc ? repo_.LoadBlobAt(id, *loc)
                             : Result<Bytes>(Err(Code::kNotFound, "blob {} is not in the index",
                                                 id.Short()));
    uint64_t len = loc ? loc->raw_length : 0;
    if (!data.ok()) {
      LogWarning("'{}': {}", PrintableName(f->display), data.status().ToString());
      f->damaged = true;
      if (!loc) {
        // Without the index entry the length is unknown: later offsets cannot be trusted.
        break;
      }
      off += len;
      continue;
    }
    // Skip all-zero 4 KiB blocks so sparse files stay sparse; ftruncate sets the size.
    const Bytes& b = *data;
    size_t pos = 0;
    while (pos < b.size()) {
      size_t blk = std::min<size_t>(4096, b.size() - pos);
      bool zero = true;
      for (size_t k = 0; k < blk; ++k)
        if (b[pos + k]) {
          zero = false;
          break;
        }
      if (zero) {
        pos += blk;
        continue;
      }
      size_t run = blk;
      while (pos + run < b.size()) {
        size_t nb = std::min<size_t>(4096, b.size() - pos - run);
        bool z = true;
        for (size_t k = 0; k < nb; ++k)
          if (b[pos + run + k]) {
            z = false;
            break;
          }
        if (z) break;
        run += nb;
      }
      size_t written = 0;
      while (written < run) {
        ssize_t n = pwrite(f->fd, b.data() + pos + written, run - written,
                           off_t(off + pos + written));
        if (n < 0) {
          if (errno == EINTR) continue;
          LocalError(ErrnoStatus(errno, "write '" + PrintableName(f->path) + "'").ToString());
          f->failed = true;
          break;
        }
        written += size_t(n);
      }
      if (f->failed) break;
      pos += run;
    }
    off += b.size();
    bytes_ += b.size();
    if (opts_.progress) opts_.progress->bytes_done += b.size();
  }
  if (f->segments_left.fetch_sub(1) == 1) FinishFile(*f);
}

void FileRestore::DeltaFile(const Node& node, const std::string& path,
                            const std::string& display) {
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    LocalError(ErrnoStatus(errno, "open '" + PrintableName(path) + "'").ToString());
    return;
  }
  uint64_t off = 0, rewritten = 0;
  bool damaged = false, failed = false;
  Bytes local;
  for (const auto& id : node.content) {
    auto loc = index_->FindAny(id);
    if (!loc) {
      damaged = true;
      break;
    }
    local.resize(loc->raw_length);
    ssize_t n = pread(fd, local.data(), local.size(), off_t(off));
    if (n == ssize_t(local.size()) && repo_.BlobId(local) == id) {
      off += loc->raw_length;
      continue;
    }
    auto data = repo_.LoadBlobAt(id, *loc);
    if (!data.ok()) {
      LogWarning("'{}': {}", PrintableName(display), data.status().ToString());
      damaged = true;
      off += loc->raw_length;
      continue;
    }
    size_t w = 0;
    while (w < data->size()) {
      ssize_t k = pwrite(fd, data->data() + w, data->size() - w, off_t(off + w));
      if (k < 0 && errno == EINTR) continue;
      if (k < 0) {
        LocalError(ErrnoStatus(errno, "write '" + PrintableName(path) + "'").ToString());
        failed = true;
        break;
      }
      w += size_t(k);
    }
    if (failed) break;
    ++rewritten;
    off += data->size();
    bytes_ += data->size();
  }
  if (!failed && ftruncate(fd, off_t(node.size)) != 0)
    LocalError(ErrnoStatus(errno, "truncate '" + PrintableName(path) + "'").ToString());
  ApplyMeta(node, path, fd);
  ::close(fd);
  std::lock_guard lock(mu_);
  if (damaged) res_.damaged.push_back(display);
  if (rewritten == 0 && !damaged) res_.files_kept++;
  res_.chunks_rewritten += rewritten;
  files_++;
}

void FileRestore::RestoreFile(const Node& node, const std::string& path,
                              const std::string& display) {
  if (opts_.delta && node.nlink <= 1) {
    struct stat st {};
    if (lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1) {
      pool_.Submit([this, node, path, display] { DeltaFile(node, path, display); });
      return;
    }
  }
  if (node.nlink > 1) {
    auto key = std::make_pair(node.dev, node.inode);
    auto it = links_.find(key);
    if (it != links_.end()) {
      deferred_links_.emplace_back(it->second, path);
      return;
    }
    links_.emplace(key, path);
  }
  ::unlink(path.c_str());  // replace whatever is there (a link must not write through)
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    LocalError(ErrnoStatus(errno, "create '" + PrintableName(path) + "'").ToString());
    return;
  }
  auto f = std::make_shared<OpenFile>();
  f->fd = fd;
  f->node = node;
  f->path = path;
  f->display = display;
  // Plan segments by the plaintext lengths the index records.
  std::vector<std::tuple<size_t, size_t, uint64_t>> segs;
  size_t first = 0;
  uint64_t seg_start = 0, off = 0;
  for (size_t i = 0; i < node.content.size(); ++i) {
    auto loc = index_->FindAny(node.content[i]);
    if (!loc) {
      // Unknown length: the rest goes in one segment, which reports the damage.
      break;
    }
    off += loc->raw_length;
    if (off - seg_start >= kSegmentBytes) {
      segs.emplace_back(first, i + 1, seg_start);
      first = i + 1;
      seg_start = off;
    }
  }
  if (first < node.content.size() || segs.empty())
    segs.emplace_back(first, node.content.size(), seg_start);
  f->segments_left = int(segs.size());
  for (auto& [a, b, o] : segs)
    pool_.Submit([this, f, a = a, b = b, o = o] { WriteSegment(f, a, b, o); });
}

Status FileRestore::Special(const Node& node, const std::string& path) {
  ::unlink(path.c_str());
  int r = 0;
  switch (node.type) {
    case NodeType::kSymlink: r = symlink(node.link_target.c_str(), path.c_str()); break;
    case NodeType::kFifo: r = mkfifo(path.c_str(), 0600); break;
    case NodeType::kCharDev:
    case NodeType::kBlockDev:
      r = mknod(path.c_str(), (node.type == NodeType::kCharDev ? S_IFCHR : S_IFBLK) | 0600,
                dev_t(node.rdev));
      break;
    default:
      return Status::Ok();  // sockets are recreated by the programs that own them
  }
  if (r != 0) return ErrnoStatus(errno, "create '" + PrintableName(path) + "'");
  ApplyMeta(node, path, -1);
  return Status::Ok();
}

void FileRestore::RemoveExtras(const std::vector<Node>& nodes, const std::string& snap_path,
                               const std::string& local) {
  std::set<std::string> names;
  for (const auto& n : nodes) names.insert(n.name);
  DIR* d = opendir(local.empty() ? "/" : local.c_str());
  if (!d) return;
  std::vector<std::string> extra;
  while (struct dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == ".." || names.count(n)) continue;
    bool whole = false;
    std::string sp = (snap_path == "/" ? "" : snap_path) + "/" + n;
    if (!opts_.includes.empty() && !Wanted(sp, whole)) continue;
    bool excluded = false;
    for (const auto& ex : opts_.excludes) excluded |= sp == ex;
    if (!excluded) extra.push_back(local + "/" + n);
  }
  closedir(d);
  for (const auto& p : extra) {
    std::error_code ec;
    std::filesystem::remove_all(p, ec);
    if (ec) {
      LocalError(fmt::format("remove '{}': {}", PrintableName(p), ec.message()));
    } else {
      std::lock_guard lock(mu_);
      res_.removed++;
    }
  }
}

Status FileRestore::Walk(const crypto::Id& tree, const std::string& snap_path,
                         const std::string& local) {
  auto blob = repo_.LoadBlob(tree);
  if (!blob.ok()) {
    LogWarning("directory '{}': {}", PrintableName(snap_path), blob.status().ToString());
    std::lock_guard lock(mu_);
    res_.damaged.push_back(snap_path + "/");
    return Status::Ok();
  }
  LB_ASSIGN_OR_RETURN(auto nodes, repo::DecodeTree(*blob));
  if (opts_.delta) RemoveExtras(nodes, snap_path, local);
  for (const auto& n : nodes) {
    std::string sp = (snap_path == "/" ? "" : snap_path) + "/" + n.name;
    std::string lp = local + "/" + n.name;
    bool whole = false;
    if (!Wanted(sp, whole)) continue;
    if (n.type == NodeType::kDir) {
      struct stat st {};
      if (lstat(lp.c_str(), &st) == 0 && !S_ISDIR(st.st_mode)) ::unlink(lp.c_str());
      if (mkdir(lp.c_str(), 0700) != 0 && errno != EEXIST) {
        LocalError(ErrnoStatus(errno, "mkdir '" + PrintableName(lp) + "'").ToString());
        continue;
      }
      LB_RETURN_IF_ERROR(Walk(n.subtree, sp, lp));
      dirs_.push_back({lp, n});
      continue;
    }
    if (!whole) continue;
    if (n.type == NodeType::kFile) {
      if (opts_.progress) {
        opts_.progress->files_total++;
        opts_.progress->bytes_total += n.size;
      }
      RestoreFile(n, lp, sp);
    } else {
      Status s = Special(n, lp);
      if (!s.ok()) LocalError(s.ToString());
      others_++;
    }
  }
  return Status::Ok();
}

Result<FileRestoreResult> FileRestore::Run(const repo::Snapshot& snap) {
  auto t0 = std::chrono::steady_clock::now();
  LB_ASSIGN_OR_RETURN(index_, repo_.index());
  std::error_code ec;
  std::filesystem::create_directories(opts_.target, ec);
  if (ec) return Err(Code::kIo, "create target '{}': {}", opts_.target, ec.message());
  std::string target = opts_.target;
  while (target.size() > 1 && target.back() == '/') target.pop_back();
  Status walked = Walk(opts_.root ? *opts_.root : snap.tree, "/", target == "/" ? "" : target);
  pool_.Wait();
  LB_RETURN_IF_ERROR(walked);
  for (const auto& [from, to] : deferred_links_) {
    ::unlink(to.c_str());
    if (link(from.c_str(), to.c_str()) != 0)
      LocalError(ErrnoStatus(errno, "link '" + PrintableName(to) + "'").ToString());
    else
      files_++;
  }
  // Directories last and deepest first: writing into a directory changes its mtime, and a
  // read-only mode would stop the writes.
  for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) ApplyMeta(it->node, it->path, -1);
  FileRestoreResult out;
  {
    std::lock_guard lock(mu_);
    out = res_;
  }
  out.files = files_;
  out.dirs = dirs_.size();
  out.others = others_;
  out.bytes = bytes_;
  // Durable before we report success: a restore that returns while its data sits in the page
  // cache can lose it to a crash (and a database started on it flushes it first anyway).
  // syncfs flushes the target's file system in one call instead of one fsync per file.
  int dfd = ::open(opts_.target.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    if (syncfs(dfd) != 0)
      out.errors.push_back(ErrnoStatus(errno, "sync '" + PrintableName(opts_.target) + "'").ToString());
    ::close(dfd);
  }
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

}  // namespace

Result<FileRestoreResult> RestoreFiles(repo::Repository& repo, const repo::Snapshot& snap,
                                       const FileRestoreOptions& opts) {
  if (opts.target.empty()) return Err(Code::kInvalidArgument, "no restore target given");
  FileRestore r(repo, opts);
  return r.Run(snap);
}

}  // namespace lb::source
