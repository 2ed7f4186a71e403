// The one interface every repository backend implements (posix, s3, and test doubles).
// storage/ knows nothing of repositories: it stores named, immutable byte objects.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "util/bytes.h"
#include "util/status.h"

namespace lb::storage {

// Object names are relative, '/'-separated, never empty, never start with '/' and never
// contain "." or ".." components, e.g. "data/ab/ab12...". Drivers may map them to paths/keys.

struct ObjectInfo {
  std::string name;  // full object name, e.g. "index/0f3c..."
  uint64_t size = 0;
  int64_t mtime_unix = 0;  // last modification, seconds since the epoch (0 if unknown)
};

struct PutOptions {
  // Fail with kAlreadyExists instead of replacing an existing object. Drivers implement it
  // atomically where they can (posix: link(2); s3: If-None-Match: *).
  bool exclusive = false;
  // The SHA-256 of `data` as 64 lower-case hex digits, when the caller has it anyway (packs
  // and index files are named by it), so that a driver which needs it (s3 signs every body
  // with it) does not hash the data again. It must be right: the s3 server refuses a body
  // whose hash differs. Drivers ignore it when they have no use for it, or when it is not
  // 64 hex digits.
  std::string_view sha256_hex = {};
};

struct Capabilities {
  bool atomic_exclusive_put = false;  // `exclusive` is race-free
  bool local = false;                 // objects are files on this host (mmap-able caches skip)
};

// Thread safety: every method may be called concurrently from many threads.
// Errors: kNotFound for a missing object; kAlreadyExists for an exclusive Put that lost;
// kIo / kUnavailable for transport failures, marked retryable() when a retry may succeed;
// kPermissionDenied when the backend refuses access.
class Storage {
 public:
  virtual ~Storage() = default;

  // Stores `data` under `name`. On success the object is durable and visible whole;
  // on failure no partial object is ever visible under `name`.
  virtual Status Put(std::string_view name, ByteSpan data, PutOptions opts = {}) = 0;

  // Reads the whole object.
  virtual Result<Bytes> Get(std::string_view name) = 0;

  // Reads [offset, offset+length). A range past the end is kCorruption ("short object"),
  // since callers only ask for ranges an index told them exist.
  virtual Result<Bytes> GetRange(std::string_view name, uint64_t offset, uint64_t length) = 0;

  virtual Result<ObjectInfo> Stat(std::string_view name) = 0;

  // Calls `fn` for every object whose name starts with `prefix` (e.g. "data/"), in no
  // particular order. Stops and returns the first non-ok status `fn` returns.
  virtual Status List(std::string_view prefix,
                      const std::function<Status(const ObjectInfo&)>& fn) = 0;

  // Removes the object; kNotFound if it was not there.
  virtual Status Remove(std::string_view name) = 0;

  // Human-readable location for messages ("/srv/repo", "s3://bucket/prefix"). No secrets.
  virtual std::string Location() const = 0;

  virtual Capabilities caps() const = 0;
};

struct OpenOptions {
  bool create = false;  // make a posix root directory that does not exist
  // Another repository can serve the same requests (several --repo, tried in order): a server
  // that never answers is given up within seconds rather than after the full retry budget
  // (s3: UseFallbackRetryPolicy). Drivers that cannot be unreachable ignore it.
  bool has_fallback = false;
};

// Opens the storage named by `url`: a plain path or file:///path → posix; "s3://" → the s3
// driver; "mem:" → a process-local memory store (tests). Creates nothing but, with `create`,
// a posix root directory. This is the only place that knows every driver.
Result<std::unique_ptr<Storage>> OpenStorage(std::string_view url, const OpenOptions& options);
inline Result<std::unique_ptr<Storage>> OpenStorage(std::string_view url, bool create = false) {
  return OpenStorage(url, OpenOptions{.create = create});
}

}  // namespace lb::storage
