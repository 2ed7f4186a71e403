// The posix driver: a repository is a directory tree on a local (or mounted) filesystem,
// object "a/b/c" is the file ROOT/a/b/c.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "storage/storage.h"

namespace lb::storage {

// Put is atomic and durable: the bytes go to a ".tmp-*" file in the target directory, are
// fsynced, and only then get the object's name (rename, or link for exclusive puts), after
// which the directory is fsynced. Temporary files are never listed; a crash may leave one
// behind, which is harmless and may be deleted once no put that started before it is running.
// Thread safety: stateless apart from the immutable root; all methods may run concurrently,
// also with other processes using the same root.
class PosixStorage final : public Storage {
 public:
  // Opens the repository directory `root` (absolute or relative to the working directory).
  // With `create`, makes `root` and any missing parents first (mkdir -p), durably.
  // Errors: kNotFound "repository 'ROOT' does not exist" when it is missing and !create;
  // kFailedPrecondition when `root` is not a directory; ErrnoStatus codes for the rest.
  static Result<std::unique_ptr<PosixStorage>> Open(std::string root, bool create);

  Status Put(std::string_view name, ByteSpan data, PutOptions opts = {}) override;
  Result<Bytes> Get(std::string_view name) override;
  // Reads only the requested bytes (pread), so it is cheap on objects of any size.
  Result<Bytes> GetRange(std::string_view name, uint64_t offset, uint64_t length) override;
  Result<ObjectInfo> Stat(std::string_view name) override;
  Status List(std::string_view prefix, const std::function<Status(const ObjectInfo&)>& fn) override;
  // Also fsyncs the directory, so a removal the caller saw succeed survives a power loss.
  Status Remove(std::string_view name) override;

  // The root path as given to Open, without trailing slashes.
  std::string Location() const override { return root_; }
  Capabilities caps() const override { return {.atomic_exclusive_put = true, .local = true}; }

 private:
  explicit PosixStorage(std::string root) : root_(std::move(root)) {}

  std::string PathOf(std::string_view name) const;
  // Makes every missing directory on the way to object `name`, fsyncing each parent.
  Status MakeParents(std::string_view name) const;
  Status ListDirectory(const std::string& rel_dir, std::string_view prefix,
                       const std::function<Status(const ObjectInfo&)>& fn) const;

  const std::string root_;
};

}  // namespace lb::storage
