#include "storage/posix_storage.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <utility>

#include "storage/object_name.h"

namespace lb::storage {
namespace {

// Objects hold encrypted backups; group read lets a separate verify/restore account in the
// owner's group read them, nobody else. The umask can only narrow these.
constexpr mode_t kFileMode = 0640;
constexpr mode_t kDirMode = 0750;

// Closes the descriptor when it goes out of scope. Errors of close() on read-only
// descriptors carry no information, so they are ignored; writers call Close() explicitly.
class UniqueFd {
 public:
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  // Closes now and returns close()'s result; NFS reports delayed write errors here.
  int Close() {
    const int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }
  int Release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

struct DirCloser {
  void operator()(DIR* d) const { ::closedir(d); }
};
using UniqueDir = std::unique_ptr<DIR, DirCloser>;

// A file that is not a regular file (or a path through one) is not an object: report it as
// missing rather than as an I/O error, so callers treat "data" (a directory) like any absent
// name.
Status ReadErrno(int err, std::string_view what) {
  if (err == ENOTDIR || err == EISDIR) err = ENOENT;
  return ErrnoStatus(err, what);
}

std::string_view Parent(std::string_view path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Makes the directory entries in `dir` durable. Some filesystems (and some network mounts)
// refuse fsync on a directory with EINVAL; there is nothing stronger to do there, so that
// counts as done, as in PostgreSQL's fsync_fname.
Status FsyncDirectory(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return ErrnoStatus(errno, fmt::format("open directory '{}'", dir));
  if (::fsync(fd.get()) != 0 && errno != EINVAL) {
    return ErrnoStatus(errno, fmt::format("fsync directory '{}'", dir));
  }
  return Status::Ok();
}

// Makes directory `dir` if missing and fsyncs its parent, so the new entry survives a power
// loss. With `existing_too`, the parent is fsynced also when `dir` already existed: inside a
// repository it may have just been made by another writer that has not fsynced it yet, and
// a put that returns must not depend on someone else's fsync. Above the repository (mkdir -p
// of the root) existing directories are left alone: they may not even be readable.
Status MakeDirectoryDurably(const std::string& dir, bool existing_too, std::string_view what) {
  if (::mkdir(dir.c_str(), kDirMode) != 0) {
    if (errno != EEXIST) {
      return ErrnoStatus(errno, fmt::format("{}: create directory '{}'", what, dir));
    }
    if (!existing_too) return Status::Ok();
  }
  return FsyncDirectory(std::string(Parent(dir))).WithContext(what);
}

std::string TempSuffix() {
  uint64_t r = 0;
  if (::getrandom(&r, sizeof r, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof r)) {
    // Uniqueness is finally enforced by O_EXCL; this only has to make collisions rare.
    static std::atomic<uint64_t> counter{0};
    r = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
        (static_cast<uint64_t>(::getpid()) << 32) ^ counter.fetch_add(1);
  }
  return fmt::format("{:016x}", r);
}

Status WriteAll(int fd, ByteSpan data, std::string_view what) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, what);
    }
    data = data.subspan(static_cast<size_t>(n));
  }
  return Status::Ok();
}

// Reads up to `length` bytes at `offset` into `out`, looping on short reads; returns how
// many bytes were read (fewer only at end of file).
Result<size_t> PreadFull(int fd, uint8_t* out, size_t length, uint64_t offset,
                         std::string_view what) {
  size_t done = 0;
  while (done < length) {
    const ssize_t n = ::pread(fd, out + done, length - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ReadErrno(errno, what);
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return done;
}

ObjectInfo InfoOf(std::string name, const struct stat& st) {
  return {.name = std::move(name),
          .size = static_cast<uint64_t>(st.st_size),
          .mtime_unix = static_cast<int64_t>(st.st_mtim.tv_sec)};
}

// A temporary file next to the target; unlinked on destruction unless Commit()ed, so every
// failure path of Put leaves no debris.
class TempFile {
 public:
  TempFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile() {
    if (fd_.get() >= 0) fd_.Close();
    if (!committed_) ::unlink(path_.c_str());
  }
  const std::string& path() const { return path_; }
  UniqueFd& fd() { return fd_; }
  // The file now has its final name (rename) or must stay (nothing to clean up).
  void Commit() { committed_ = true; }

 private:
  std::string path_;
  UniqueFd fd_;
  bool committed_ = false;
};

}  // namespace

Result<std::unique_ptr<PosixStorage>> PosixStorage::Open(std::string root, bool create) {
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  if (root.empty()) return Err(Code::kInvalidArgument, "repository path is empty");
  if (root.find('\0') != std::string::npos) {
    return Err(Code::kInvalidArgument, "repository path contains a NUL byte");
  }

  if (create) {
    const std::string what = fmt::format("create repository '{}'", root);
    // mkdir -p: every component from the top, so each new directory's parent is fsynced.
    for (size_t slash = root.find('/', 1); true; slash = root.find('/', slash + 1)) {
      const std::string dir = root.substr(0, slash);
      if (!dir.empty() && dir.back() != '/') {
        LB_RETURN_IF_ERROR(MakeDirectoryDurably(dir, /*existing_too=*/false, what));
      }
      if (slash == std::string::npos) break;
    }
  }

  struct stat st {};
  if (::stat(root.c_str(), &st) != 0) {
    if (errno == ENOENT) {
      return Err(Code::kNotFound, "repository '{}' does not exist", root);
    }
    return ErrnoStatus(errno, fmt::format("open repository '{}'", root));
  }
  if (!S_ISDIR(st.st_mode)) {
    return Err(Code::kFailedPrecondition, "repository '{}' is not a directory", root);
  }
  return std::unique_ptr<PosixStorage>(new PosixStorage(std::move(root)));
}

std::string PosixStorage::PathOf(std::string_view name) const {
  return fmt::format("{}/{}", root_, name);
}

Status PosixStorage::MakeParents(std::string_view name) const {
  const std::string what = fmt::format("write '{}'", name);
  for (size_t slash = name.find('/'); slash != std::string_view::npos;
       slash = name.find('/', slash + 1)) {
    LB_RETURN_IF_ERROR(
        MakeDirectoryDurably(PathOf(name.substr(0, slash)), /*existing_too=*/true, what));
  }
  return Status::Ok();
}

Status PosixStorage::Put(std::string_view name, ByteSpan data, PutOptions opts) {
  LB_RETURN_IF_ERROR(ValidateObjectName(name));
  const std::string what = fmt::format("write '{}'", name);
  const std::string path = PathOf(name);
  const std::string dir(Parent(path));

  // The temporary file lives in the target's directory so that rename/link stay within one
  // filesystem and one directory fsync covers both names. Directories are made only when
  // the first attempt finds them missing, keeping the common put to one open().
  std::unique_ptr<TempFile> tmp;
  bool made_parents = false;
  for (int attempt = 0; !tmp; ++attempt) {
    std::string tmp_path = fmt::format("{}/{}{}", dir, kTempPrefix, TempSuffix());
    const int fd = ::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, kFileMode);
    if (fd >= 0) {
      tmp = std::make_unique<TempFile>(std::move(tmp_path), fd);
    } else if (errno == ENOENT && !made_parents) {
      LB_RETURN_IF_ERROR(MakeParents(name));
      made_parents = true;
    } else if (errno == EEXIST && attempt < 8) {
      continue;  // another writer drew the same random suffix
    } else {
      return ErrnoStatus(errno, fmt::format("{}: create temporary file", what));
    }
  }

  LB_RETURN_IF_ERROR(WriteAll(tmp->fd().get(), data, what));
  // The data must be on disk before any name points at it, or a crash could leave the
  // object's name on an empty or partial file.
  if (::fsync(tmp->fd().get()) != 0) return ErrnoStatus(errno, fmt::format("{}: fsync", what));
  if (tmp->fd().Close() != 0) return ErrnoStatus(errno, fmt::format("{}: close", what));

  if (opts.exclusive) {
    // link(2) fails with EEXIST if the name exists, atomically, unlike a stat-then-rename.
    // The temporary name is then dropped by ~TempFile either way.
    if (::link(tmp->path().c_str(), path.c_str()) != 0) return ErrnoStatus(errno, what);
  } else {
    if (::rename(tmp->path().c_str(), path.c_str()) != 0) {
      return ErrnoStatus(errno, fmt::format("{}: rename", what));
    }
    tmp->Commit();
  }
  tmp.reset();

  // fsync the directory after rename/link or the new name can vanish on power loss.
  return FsyncDirectory(dir).WithContext(what);
}

Result<Bytes> PosixStorage::Get(std::string_view name) {
  LB_RETURN_IF_ERROR(ValidateObjectName(name));
  const std::string what = fmt::format("read '{}'", name);
  UniqueFd fd(::open(PathOf(name).c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return ReadErrno(errno, what);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, what);
  if (!S_ISREG(st.st_mode)) return ReadErrno(EISDIR, what);

  Bytes out(static_cast<size_t>(st.st_size));
  LB_ASSIGN_OR_RETURN(const size_t n, PreadFull(fd.get(), out.data(), out.size(), 0, what));
  // Objects are immutable, so a size change means someone else rewrote or truncated it;
  // return what is there and let the caller's checksum judge it.
  out.resize(n);
  return out;
}

Result<Bytes> PosixStorage::GetRange(std::string_view name, uint64_t offset, uint64_t length) {
  LB_RETURN_IF_ERROR(ValidateObjectName(name));
  const std::string what = fmt::format("read '{}' at {}+{}", name, offset, length);
  UniqueFd fd(::open(PathOf(name).c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return ReadErrno(errno, what);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, what);
  if (!S_ISREG(st.st_mode)) return ReadErrno(EISDIR, what);

  // Checked before allocating: a damaged index may ask for an absurd length.
  const auto size = static_cast<uint64_t>(st.st_size);
  if (offset > size || length > size - offset) {
    return Err(Code::kCorruption, "{}: short object ({} bytes)", what, size);
  }
  Bytes out(static_cast<size_t>(length));
  LB_ASSIGN_OR_RETURN(const size_t n, PreadFull(fd.get(), out.data(), out.size(), offset, what));
  if (n != length) return Err(Code::kCorruption, "{}: short object", what);
  return out;
}

Result<ObjectInfo> PosixStorage::Stat(std::string_view name) {
  LB_RETURN_IF_ERROR(ValidateObjectName(name));
  const std::string what = fmt::format("stat '{}'", name);
  struct stat st {};
  if (::stat(PathOf(name).c_str(), &st) != 0) return ReadErrno(errno, what);
  if (!S_ISREG(st.st_mode)) return ReadErrno(EISDIR, what);
  return InfoOf(std::string(name), st);
}

Status PosixStorage::List(std::string_view prefix,
                          const std::function<Status(const ObjectInfo&)>& fn) {
  LB_RETURN_IF_ERROR(ValidateListPrefix(prefix));
  // Only the directory holding the prefix's last, possibly partial, component is walked:
  // "data/a" walks ROOT/data and keeps entries starting with "a".
  const size_t slash = prefix.rfind('/');
  const std::string rel_dir(slash == std::string_view::npos ? "" : prefix.substr(0, slash + 1));
  return ListDirectory(rel_dir, prefix, fn);
}

// `rel_dir` is "" or ends in '/'; every entry's name is rel_dir + entry.
Status PosixStorage::ListDirectory(const std::string& rel_dir, std::string_view prefix,
                                   const std::function<Status(const ObjectInfo&)>& fn) const {
  const std::string dir_path = rel_dir.empty() ? root_ : PathOf(rel_dir);
  const std::string what = fmt::format("list '{}'", rel_dir);
  UniqueFd fd(::open(dir_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) {
    // No directory means no objects under the prefix.
    if (errno == ENOENT || errno == ENOTDIR) return Status::Ok();
    return ErrnoStatus(errno, what);
  }
  UniqueDir dir(::fdopendir(fd.get()));
  if (!dir) return ErrnoStatus(errno, what);
  fd.Release();  // now owned by `dir`

  while (true) {
    errno = 0;
    const dirent* entry = ::readdir(dir.get());
    if (entry == nullptr) {
      if (errno != 0) return ErrnoStatus(errno, what);
      break;
    }
    const std::string_view entry_name = entry->d_name;
    if (entry_name == "." || entry_name == ".." || entry_name.starts_with(kTempPrefix)) {
      continue;
    }
    std::string full = rel_dir + std::string(entry_name);
    if (!full.starts_with(prefix)) continue;

    // stat, not lstat: a symlinked directory (e.g. data/ on another disk) is part of the
    // repository just as Get would see it.
    struct stat st {};
    if (::fstatat(::dirfd(dir.get()), entry->d_name, &st, 0) != 0) {
      if (errno == ENOENT) continue;  // removed while we were listing
      return ErrnoStatus(errno, fmt::format("list '{}'", full));
    }
    if (S_ISDIR(st.st_mode)) {
      LB_RETURN_IF_ERROR(ListDirectory(full + "/", prefix, fn));
    } else if (S_ISREG(st.st_mode)) {
      LB_RETURN_IF_ERROR(fn(InfoOf(std::move(full), st)));
    }
  }
  return Status::Ok();
}

Status PosixStorage::Remove(std::string_view name) {
  LB_RETURN_IF_ERROR(ValidateObjectName(name));
  const std::string what = fmt::format("remove '{}'", name);
  const std::string path = PathOf(name);
  if (::unlink(path.c_str()) != 0) return ReadErrno(errno, what);
  // Without this a removed lock or pruned pack could reappear after a power loss although
  // the caller was told it was gone.
  return FsyncDirectory(std::string(Parent(path))).WithContext(what);
}

}  // namespace lb::storage
