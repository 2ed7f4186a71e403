#include "source/files_backup.h"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "chunk/fastcdc.h"
#include "repo/tree.h"
#include "util/log.h"
#include "util/thread_pool.h"

namespace lb::source {

using repo::Node;
using repo::NodeType;

namespace {

int64_t Ns(const struct timespec& ts) { return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec; }

Node NodeFromStat(const std::string& name, const struct stat& st) {
  Node n;
  n.name = name;
  switch (st.st_mode & S_IFMT) {
    case S_IFREG: n.type = NodeType::kFile; break;
    case S_IFDIR: n.type = NodeType::kDir; break;
    case S_IFLNK: n.type = NodeType::kSymlink; break;
    case S_IFIFO: n.type = NodeType::kFifo; break;
    case S_IFCHR: n.type = NodeType::kCharDev; break;
    case S_IFBLK: n.type = NodeType::kBlockDev; break;
    default: n.type = NodeType::kSocket; break;
  }
  n.mode = st.st_mode & 07777;
  n.uid = st.st_uid;
  n.gid = st.st_gid;
  n.nlink = uint32_t(st.st_nlink);
  n.mtime_ns = Ns(st.st_mtim);
  n.ctime_ns = Ns(st.st_ctim);
  n.inode = st.st_ino;
  n.dev = st.st_dev;
  n.size = n.type == NodeType::kFile ? uint64_t(st.st_size) : 0;
  n.rdev = (n.type == NodeType::kCharDev || n.type == NodeType::kBlockDev) ? st.st_rdev : 0;
  return n;
}

// The parent snapshot's listing of a directory, for change detection.
struct OldDir {
  std::unordered_map<std::string, Node> by_name;
};

// The input paths as a tree of names: intermediate directories hold only the names that lead
// to a target; a target is backed up whole.
struct PathTrie {
  std::map<std::string, PathTrie> children;
  bool is_target = false;
};

// A directory whose tree blob is written once every child is done. `pending` counts
// unfinished children plus one for the walker still listing it.
struct DirJob {
  std::unique_ptr<OldDir> old;  // file jobs point into it; freed with the job
  DirJob* parent = nullptr;
  size_t slot = 0;
  std::string path;
  std::vector<Node> nodes;
  std::vector<uint8_t> dropped;  // entries that failed and are left out (not vector<bool>: written concurrently)
  std::atomic<int> pending{1};
  bool skip_contents = false;  // kEmpty: the directory is kept, its entries are not
};

class FileBackup {
 public:
  FileBackup(repo::Repository& repo, const FileBackupOptions& opts)
      : repo_(repo),
        opts_(opts),
        chunker_(repo.config().chunker),
        writer_(repo),
        seal_pool_(opts.threads ? opts.threads : ThreadPool::DefaultThreads(),
                   opts.threads ? opts.threads : ThreadPool::DefaultThreads()),
        pool_(opts.threads ? opts.threads : ThreadPool::DefaultThreads(), 0) {}

  Result<FileBackupResult> Run(std::vector<std::string> paths, const repo::Snapshot* parent);
  // Walks one root (the file system root with a trie of targets, or a rooted directory) and
  // waits for its tree.
  Result<crypto::Id> WalkRoot(const std::string& path, const Node* old_root, const PathTrie* trie);
  repo::BlobWriter& writer() { return writer_; }
  Status Fatal() {
    std::lock_guard lock(mu_);
    return fatal_;
  }
  FileBackupResult Counters();
  std::vector<std::string> TakeErrors() {
    std::lock_guard lock(mu_);
    return errors_;
  }

 private:
  std::unique_ptr<OldDir> LoadOld(const Node* old_dir_node);
  void WalkDir(DirJob* job, const Node* old_node, const PathTrie* trie);
  void AddEntry(DirJob* job, size_t slot, const std::string& path, const PathTrie* trie,
                bool empty_dir = false);
  void ProcessFile(DirJob* job, size_t slot, std::string path, const Node* old);
  Status ReadFile(const std::string& path, Node& node, uint64_t& bytes_read);
  void ChildDone(DirJob* job);
  void Finalize(DirJob* job);
  void Fail(const Status& s) {
    std::lock_guard lock(mu_);
    if (fatal_.ok()) fatal_ = s;
  }
  void Report(std::string msg) {
    LogWarning("{}", msg);
    std::lock_guard lock(mu_);
    errors_.push_back(std::move(msg));
  }
  std::string Rel(const std::string& path) const {
    if (root_prefix_ == "/") return path.substr(1);
    return path.size() > root_prefix_.size() ? path.substr(root_prefix_.size() + 1) : "";
  }
  bool Excluded(const std::string& path, const std::string& name) const {
    for (const auto& pat : opts_.excludes)
      if (fnmatch(pat.c_str(), path.c_str(), 0) == 0 || fnmatch(pat.c_str(), name.c_str(), 0) == 0)
        return true;
    return false;
  }

  repo::Repository& repo_;
  const FileBackupOptions& opts_;
  chunk::Chunker chunker_;
  repo::BlobWriter writer_;
  std::mutex mu_;
  Status fatal_;                     // guarded by mu_
  std::vector<std::string> errors_;  // guarded by mu_
  std::vector<std::string> stored_;  // guarded by mu_
  std::mutex done_mu_;
  std::condition_variable done_cv_;
  std::string root_prefix_ = "/";    // set by WalkRoot before walking
  crypto::Id root_tree_;             // guarded by done_mu_
  bool root_done_ = false;           // guarded by done_mu_
  std::atomic<uint64_t> files_{0}, dirs_{0}, others_{0}, unchanged_{0}, bytes_total_{0},
      bytes_read_{0};
  // Files at least this big with fixed-size chunks (relation files) have their chunks sealed
  // on seal_pool_ (see ReadFile).
  static constexpr uint64_t kOffloadBytes = 32u << 20;
  ThreadPool seal_pool_;  // destroyed after pool_: file tasks may still submit to it
  ThreadPool pool_;  // last: destroyed (joined) first
};

std::unique_ptr<OldDir> FileBackup::LoadOld(const Node* old_dir_node) {
  if (!old_dir_node || old_dir_node->type != NodeType::kDir) return nullptr;
  auto blob = repo_.LoadBlob(old_dir_node->subtree);
  if (!blob.ok()) {
    // A damaged parent only costs re-reading; never fail the new backup for it.
    LogWarning("parent tree {}: {} (files are read again)", old_dir_node->subtree.Short(),
               blob.status().ToString());
    return nullptr;
  }
  auto nodes = repo::DecodeTree(*blob);
  if (!nodes.ok()) return nullptr;
  auto old = std::make_unique<OldDir>();
  for (auto& n : *nodes) old->by_name.emplace(n.name, std::move(n));
  return old;
}

void FileBackup::ChildDone(DirJob* job) {
  if (job->pending.fetch_sub(1) == 1) Finalize(job);
}

void FileBackup::Finalize(DirJob* job) {
  // Runs in whichever thread finished the last child; the walker has listed the directory.
  std::vector<Node> nodes;
  nodes.reserve(job->nodes.size());
  for (size_t i = 0; i < job->nodes.size(); ++i)
    if (!job->dropped[i]) nodes.push_back(std::move(job->nodes[i]));
  Bytes tree = repo::EncodeTree(nodes);
  crypto::Id id = repo_.BlobId(tree);
  auto saved = writer_.Save(repo::BlobType::kTree, id, tree);
  if (!saved.ok()) Fail(saved.status().WithContext(fmt::format("store tree of '{}'", PrintableName(job->path))));
  DirJob* parent = job->parent;
  if (!parent) {
    std::lock_guard lock(done_mu_);
    root_tree_ = id;
    root_done_ = true;
    done_cv_.notify_all();
    delete job;
    return;
  }
  parent->nodes[job->slot].subtree = id;
  delete job;
  ChildDone(parent);
}

Status FileBackup::ReadFile(const std::string& path, Node& node, uint64_t& bytes_read) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME);
  if (fd < 0 && errno == EPERM) fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, fmt::format("open '{}'", PrintableName(path)));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat before {};
  if (fstat(fd, &before) != 0) return ErrnoStatus(errno, "stat");
  if (!S_ISREG(before.st_mode) || before.st_ino != node.inode)
    return Err(Code::kCancelled, "'{}' was replaced while being backed up", PrintableName(path));
  posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);

  // Uninitialized on purpose: zeroing 16 MiB per worker would cost RSS and time for the
  // many files that are far smaller.
  size_t cap = size_t(chunker_.max_size()) * 2;
  thread_local std::unique_ptr<uint8_t[]> buf_mem;
  thread_local size_t buf_cap = 0;
  if (buf_cap < cap) {
    buf_mem.reset(new uint8_t[cap]);
    buf_cap = cap;
  }
  std::span<uint8_t> buf(buf_mem.get(), cap);
  size_t start = 0, end = 0;
  bool eof = false;
  std::vector<crypto::Id> content;
  uint64_t total = 0;
  std::string rel = (opts_.fixed_chunk || opts_.inspect) ? Rel(path) : std::string();
  uint32_t fixed = opts_.fixed_chunk ? opts_.fixed_chunk(rel) : 0;
  if (fixed > chunker_.max_size()) fixed = chunker_.max_size();
  uint64_t offset = 0;
  // Only fixed-size (page-aligned) chunks: they are small, so the copies in flight cost
  // little memory; content-defined chunks of big files stay on this thread.
  bool offload = fixed != 0 && uint64_t(before.st_size) >= kOffloadBytes;
  while (true) {
    while (!eof && end < buf.size()) {
      ssize_t n = ::read(fd, buf.data() + end, buf.size() - end);
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus(errno, fmt::format("read '{}'", PrintableName(path)));
      }
      if (n == 0) eof = true;
      end += size_t(n);
      total += uint64_t(n);
      if (end - start >= chunker_.max_size()) break;
    }
    if (start == end) break;
    size_t avail = end - start;
    if (!eof && avail < chunker_.max_size()) {
      std::memmove(buf.data(), buf.data() + start, avail);
      start = 0;
      end = avail;
      continue;
    }
    size_t len = fixed ? std::min<size_t>(fixed, avail) : chunker_.Cut({buf.data() + start, avail});
    ByteSpan chunk(buf.data() + start, len);
    if (opts_.inspect) opts_.inspect(rel, offset, chunk);
    offset += len;
    crypto::Id id = repo_.BlobId(chunk);
    auto fresh = writer_.Reserve(id);
    if (!fresh.ok()) return fresh.status();
    if (*fresh) {
      if (offload) {
        // A big file would keep one core busy alone: compression and sealing of its chunks
        // go to the sealing pool while this thread reads and chunks on.
        auto copy = std::make_shared<Bytes>(chunk.begin(), chunk.end());
        seal_pool_.Submit([this, id, copy] {
          Status st = writer_.StoreReserved(repo::BlobType::kData, id, *copy);
          if (!st.ok()) writer_.Fail(st);
        });
      } else {
        LB_RETURN_IF_ERROR(writer_.StoreReserved(repo::BlobType::kData, id, chunk));
      }
    }
    content.push_back(id);
    start += len;
    if (opts_.progress) opts_.progress->bytes_done += len;
    if (start == end) {
      start = end = 0;
      if (eof) break;
    } else if (!eof && end - start < chunker_.max_size()) {
      std::memmove(buf.data(), buf.data() + start, end - start);
      end -= start;
      start = 0;
    }
  }
  struct stat after {};
  if (fstat(fd, &after) != 0) return ErrnoStatus(errno, "stat");
  if (!opts_.allow_changes &&
      (after.st_size != before.st_size || Ns(after.st_mtim) != Ns(before.st_mtim) ||
       Ns(after.st_ctim) != Ns(before.st_ctim) || total != uint64_t(before.st_size)))
    return Err(Code::kCancelled, "'{}' changed while being read", PrintableName(path));
  bytes_read += total;
  Node fresh = NodeFromStat(node.name, before);
  fresh.size = total;  // what was stored, also when the file grew or shrank meanwhile
  fresh.content = std::move(content);
  node = std::move(fresh);
  return Status::Ok();
}

void FileBackup::ProcessFile(DirJob* job, size_t slot, std::string path, const Node* old) {
  Node& node = job->nodes[slot];
  // Unchanged by every stat field a writer must touch: reuse the parent's content list, as
  // long as the index still has every blob of it.
  if (old && !opts_.force_read && old->type == NodeType::kFile && old->size == node.size &&
      old->mtime_ns == node.mtime_ns && old->ctime_ns == node.ctime_ns &&
      old->inode == node.inode && old->mtime_ns < opts_.trust_unchanged_before_ns &&
      old->ctime_ns < opts_.trust_unchanged_before_ns) {
    bool all_known = true;
    for (const auto& id : old->content)
      if (!writer_.Known(id)) {
        all_known = false;
        break;
      }
    if (all_known) {
      node.content = old->content;
      unchanged_++;
      bytes_total_ += node.size;
      files_++;
      if (opts_.progress) {
        opts_.progress->files_done++;
        opts_.progress->bytes_done += node.size;
      }
      ChildDone(job);
      return;
    }
  }
  Status s;
  uint64_t read = 0;
  for (int attempt = 0; attempt < 2; ++attempt) {
    read = 0;
    s = ReadFile(path, node, read);
    if (s.code() != Code::kCancelled) break;  // only "changed while read" is worth a retry
  }
  bytes_read_ += read;
  if (s.ok()) {
    files_++;
    bytes_total_ += node.size;
    if (opts_.filter) {
      std::lock_guard lock(mu_);
      stored_.push_back(path);
    }
  } else if (s.code() == Code::kNotFound) {
    if (!opts_.allow_changes)
      Report(fmt::format("'{}' vanished before it was read", PrintableName(path)));
    job->dropped[slot] = true;
  } else if (s.code() == Code::kPermissionDenied || s.code() == Code::kIo ||
             s.code() == Code::kCancelled) {
    Report(s.ToString());
    job->dropped[slot] = true;
  } else {
    Fail(s);
    job->dropped[slot] = true;
  }
  if (opts_.progress) opts_.progress->files_done++;
  ChildDone(job);
}

void FileBackup::AddEntry(DirJob* job, size_t slot, const std::string& path,
                          const PathTrie* trie, bool empty_dir) {
  Node& node = job->nodes[slot];
  const Node* old_node = nullptr;
  if (job->old) {
    auto it = job->old->by_name.find(node.name);
    if (it != job->old->by_name.end()) old_node = &it->second;
  }
  switch (node.type) {
    case NodeType::kDir: {
      if (!trie || trie->is_target) dirs_++;
      auto* child = new DirJob();
      child->parent = job;
      child->slot = slot;
      child->path = path;
      child->skip_contents = empty_dir;
      WalkDir(child, old_node, trie && !trie->is_target ? trie : nullptr);
      return;  // WalkDir drops the walker's reference, which finalizes it when done
    }
    case NodeType::kFile:
      pool_.Submit([this, job, slot, path, old_node] { ProcessFile(job, slot, path, old_node); });
      return;
    case NodeType::kSymlink: {
      std::string target(PATH_MAX + 1, '\0');
      ssize_t n = readlink(path.c_str(), target.data(), target.size());
      if (n < 0) {
        Report(ErrnoStatus(errno, fmt::format("readlink '{}'", PrintableName(path))).ToString());
        job->dropped[slot] = true;
      } else {
        target.resize(size_t(n));
        node.link_target = target;
        others_++;
      }
      ChildDone(job);
      return;
    }
    default:
      others_++;
      ChildDone(job);
      return;
  }
}

void FileBackup::WalkDir(DirJob* job, const Node* old_node, const PathTrie* trie) {
  {
    std::lock_guard lock(mu_);
    if (!fatal_.ok()) {
      ChildDone(job);
      return;
    }
  }
  job->old = LoadOld(old_node);
  std::vector<std::string> names;
  if (trie) {
    // An intermediate directory above the targets: only the names leading to them.
    for (const auto& [name, sub] : trie->children) names.push_back(name);
  } else if (job->skip_contents) {
    // kept empty
  } else {
    DIR* d = opendir(job->path.c_str());
    if (!d) {
      Report(ErrnoStatus(errno, fmt::format("list '{}'", PrintableName(job->path))).ToString());
    } else {
      while (struct dirent* e = readdir(d)) {
        std::string n = e->d_name;
        if (n == "." || n == "..") continue;
        names.push_back(std::move(n));
      }
      closedir(d);
    }
    std::sort(names.begin(), names.end());
  }
  std::string base = job->path == "/" ? "" : job->path;
  std::vector<std::string> paths;
  std::vector<const PathTrie*> tries;
  std::vector<uint8_t> empties;
  for (auto& n : names) {
    std::string p = base + "/" + n;
    const PathTrie* sub = trie ? &trie->children.at(n) : nullptr;
    if (!trie && Excluded(p, n)) continue;
    struct stat st {};
    if (lstat(p.c_str(), &st) != 0) {
      if (errno != ENOENT || trie)
        Report(ErrnoStatus(errno, fmt::format("stat '{}'", PrintableName(p))).ToString());
      continue;
    }
    if (sub && !sub->is_target && !S_ISDIR(st.st_mode)) {
      Report(fmt::format("'{}' is not a directory", PrintableName(p)));
      continue;
    }
    if (!trie && opts_.filter && !S_ISDIR(st.st_mode) && !opts_.filter(p, st)) continue;
    bool empty_dir = false;
    if (!trie && opts_.select) {
      auto sel = opts_.select(Rel(p), S_ISDIR(st.st_mode));
      if (sel == FileBackupOptions::Select::kSkip) continue;
      empty_dir = sel == FileBackupOptions::Select::kEmpty && S_ISDIR(st.st_mode);
    }
    job->nodes.push_back(NodeFromStat(n, st));
    paths.push_back(std::move(p));
    tries.push_back(sub);
    empties.push_back(empty_dir);
  }
  job->dropped.assign(job->nodes.size(), 0);
  job->pending += int(job->nodes.size());
  for (size_t i = 0; i < job->nodes.size(); ++i)
    AddEntry(job, i, paths[i], tries[i], empties[i] != 0);
  ChildDone(job);  // the walker's own reference
}

Result<crypto::Id> FileBackup::WalkRoot(const std::string& path, const Node* old_root,
                                        const PathTrie* trie) {
  root_prefix_ = path;
  {
    std::lock_guard lock(done_mu_);
    root_done_ = false;
  }
  auto* root = new DirJob();
  root->path = path;
  WalkDir(root, old_root, trie);
  crypto::Id id;
  {
    std::unique_lock lock(done_mu_);
    done_cv_.wait(lock, [&] { return root_done_; });
    id = root_tree_;
  }
  pool_.Wait();
  seal_pool_.Wait();
  LB_RETURN_IF_ERROR(Fatal());
  return id;
}

FileBackupResult FileBackup::Counters() {
  FileBackupResult res;
  res.files = files_;
  res.dirs = dirs_;
  res.others = others_;
  res.files_unchanged = unchanged_;
  res.bytes_total = bytes_total_;
  res.bytes_read = bytes_read_;
  res.writer = writer_.stats();
  std::lock_guard lock(mu_);
  res.errors = errors_;
  res.stored_paths = stored_;
  return res;
}

Result<FileBackupResult> FileBackup::Run(std::vector<std::string> paths,
                                         const repo::Snapshot* parent) {
  auto t0 = std::chrono::steady_clock::now();
  PathTrie trie;
  for (const auto& p : paths) {
    PathTrie* t = &trie;
    size_t i = 1;
    while (i < p.size()) {
      size_t j = p.find('/', i);
      if (j == std::string::npos) j = p.size();
      t = &t->children[p.substr(i, j - i)];
      i = j + 1;
    }
    t->is_target = true;
  }
  Node old_root;
  const Node* old_root_ptr = nullptr;
  if (parent) {
    old_root.type = NodeType::kDir;
    old_root.subtree = parent->tree;
    old_root_ptr = &old_root;
  }
  if (opts_.rooted) {
    if (paths.size() != 1)
      return Err(Code::kInvalidArgument, "a rooted backup takes exactly one directory");
    LB_ASSIGN_OR_RETURN(root_tree_, WalkRoot(paths[0], old_root_ptr, nullptr));
  } else {
    LB_ASSIGN_OR_RETURN(root_tree_,
                        WalkRoot("/", old_root_ptr, trie.is_target ? nullptr : &trie));
  }
  LB_RETURN_IF_ERROR(writer_.Flush());

  FileBackupResult res = Counters();
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  repo::Snapshot& s = res.snapshot;
  repo::SetOrigin(s, opts_.host);
  s.tags = opts_.tags;
  s.kind = opts_.kind;
  s.source = opts_.source;
  s.paths = paths;
  s.tree = root_tree_;
  if (parent) s.parent = parent->id;
  s.extra = opts_.extra;
  s.summary = {{"files", res.files},
               {"dirs", res.dirs},
               {"others", res.others},
               {"files_unchanged", res.files_unchanged},
               {"bytes_total", res.bytes_total},
               {"bytes_read", res.bytes_read},
               {"blobs_new", res.writer.blobs_new},
               {"bytes_new", res.writer.bytes_new_raw},
               {"bytes_stored", res.writer.bytes_new_stored},
               {"seconds", res.seconds},
               {"errors", res.errors.size()}};
  // The snapshot is written last: every pack and index it depends on is durable by now.
  LB_RETURN_IF_ERROR(repo::SaveSnapshot(repo_, s).status());
  return res;
}

// Counts files and bytes ahead of the backup so the progress bar can show an ETA.
void Scan(const std::string& path, const FileBackupOptions& opts, BackupProgress& p) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) return;
  if (S_ISREG(st.st_mode)) {
    p.files_total++;
    p.bytes_total += uint64_t(st.st_size);
    return;
  }
  if (!S_ISDIR(st.st_mode)) return;
  DIR* d = opendir(path.c_str());
  if (!d) return;
  std::vector<std::string> names;
  while (struct dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(std::move(n));
  }
  closedir(d);
  std::string base = path == "/" ? "" : path;
  for (const auto& n : names) {
    std::string p2 = base + "/" + n;
    bool excluded = false;
    for (const auto& pat : opts.excludes)
      if (fnmatch(pat.c_str(), p2.c_str(), 0) == 0 || fnmatch(pat.c_str(), n.c_str(), 0) == 0)
        excluded = true;
    if (!excluded) Scan(p2, opts, p);
  }
}

std::string Normalize(const std::string& in) {
  std::string abs = in;
  if (abs.empty() || abs[0] != '/') {
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) return in;
    abs = std::string(cwd) + "/" + in;
  }
  std::vector<std::string> parts;
  size_t i = 0;
  while (i <= abs.size()) {
    size_t j = abs.find('/', i);
    if (j == std::string::npos) j = abs.size();
    std::string c = abs.substr(i, j - i);
    if (c == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!c.empty() && c != ".") {
      parts.push_back(c);
    }
    i = j + 1;
  }
  std::string out;
  for (const auto& p : parts) out += "/" + p;
  return out.empty() ? "/" : out;
}

}  // namespace

class TreeBackup::Impl {
 public:
  Impl(repo::Repository& repo, const FileBackupOptions& opts) : fb(repo, opts), repo(repo) {}
  FileBackup fb;
  repo::Repository& repo;
};

TreeBackup::TreeBackup(repo::Repository& repo, const FileBackupOptions& opts)
    : impl_(std::make_unique<Impl>(repo, opts)) {}
TreeBackup::~TreeBackup() = default;

Result<crypto::Id> TreeBackup::BackupDir(const std::string& dir,
                                         std::optional<crypto::Id> old_tree) {
  Node old;
  if (old_tree) {
    old.type = NodeType::kDir;
    old.subtree = *old_tree;
  }
  return impl_->fb.WalkRoot(dir, old_tree ? &old : nullptr, nullptr);
}

Result<crypto::Id> TreeBackup::SaveTree(std::vector<repo::Node> nodes) {
  Bytes tree = repo::EncodeTree(nodes);
  crypto::Id id = impl_->repo.BlobId(tree);
  LB_RETURN_IF_ERROR(impl_->fb.writer().Save(repo::BlobType::kTree, id, tree).status());
  return id;
}

Result<repo::Node> TreeBackup::SaveFileContent(const std::string& name, ByteSpan content) {
  Node n;
  n.name = name;
  n.type = NodeType::kFile;
  n.mode = 0600;
  n.uid = geteuid();
  n.gid = getegid();
  n.size = content.size();
  n.mtime_ns = int64_t(time(nullptr)) * 1000000000;
  chunk::Chunker chunker(impl_->repo.config().chunker);
  size_t pos = 0;
  while (pos < content.size()) {
    size_t len = chunker.Cut(content.subspan(pos, std::min<size_t>(content.size() - pos,
                                                                   chunker.max_size())));
    ByteSpan piece = content.subspan(pos, len);
    crypto::Id id = impl_->repo.BlobId(piece);
    LB_RETURN_IF_ERROR(impl_->fb.writer().Save(repo::BlobType::kData, id, piece).status());
    n.content.push_back(id);
    pos += len;
  }
  return n;
}

Status TreeBackup::Finish() { return impl_->fb.writer().Flush(); }
FileBackupResult TreeBackup::Stats() { return impl_->fb.Counters(); }
std::vector<std::string> TreeBackup::Errors() { return impl_->fb.TakeErrors(); }

Result<FileBackupResult> BackupFiles(repo::Repository& repo, const FileBackupOptions& opts) {
  if (opts.paths.empty()) return Err(Code::kInvalidArgument, "no path to back up");
  std::vector<std::string> paths;
  for (const auto& p : opts.paths) {
    std::string n = Normalize(p);
    struct stat st {};
    if (lstat(n.c_str(), &st) != 0)
      return ErrnoStatus(errno, fmt::format("backup path '{}'", PrintableName(n)));
    paths.push_back(n);
  }
  std::sort(paths.begin(), paths.end());
  paths.erase(std::unique(paths.begin(), paths.end()), paths.end());
  // A path inside another listed path is already covered.
  std::vector<std::string> top;
  for (const auto& p : paths)
    if (top.empty() || !(p.rfind(top.back() == "/" ? "/" : top.back() + "/", 0) == 0))
      top.push_back(p);

  std::optional<repo::Snapshot> parent;
  if (opts.parent) {
    LB_ASSIGN_OR_RETURN(parent, repo::FindSnapshot(repo, *opts.parent));
  } else {
    std::vector<repo::DamagedSnapshot> damaged;
    auto all = repo::ListSnapshots(repo, &damaged);
    if (!all.ok()) return all.status();
    std::string host = opts.host;
    if (host.empty()) {
      char h[256] = {};
      gethostname(h, sizeof h - 1);
      host = h;
    }
    for (auto it = all->rbegin(); it != all->rend(); ++it)
      if (it->kind == opts.kind && it->host == host && it->paths == top) {
        parent = *it;
        break;
      }
  }
  LB_RETURN_IF_ERROR(repo.index().status());
  std::thread scanner;
  if (opts.progress) {
    scanner = std::thread([&] {
      for (const auto& p : top) Scan(p, opts, *opts.progress);
      opts.progress->scan_done = true;
    });
  }
  FileBackup fb(repo, opts);
  auto res = fb.Run(top, parent ? &*parent : nullptr);
  if (scanner.joinable()) scanner.join();
  return res;
}

}  // namespace lb::source
