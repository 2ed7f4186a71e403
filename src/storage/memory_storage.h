// An in-memory Storage for tests and for the "mem:NAME" url: fast, no filesystem, same
// contract (and the same conformance suite) as the real drivers.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "storage/storage.h"

namespace lb::storage {

// Objects live in a map; Put is atomic and exclusive puts are race-free. Nothing is durable
// beyond the process. Thread safety: all methods may be called concurrently, also on
// different handles of the same shared store.
class MemoryStorage final : public Storage {
 public:
  // A new, empty store that only this object sees. Location() is "mem:".
  MemoryStorage();

  // A handle on the process-wide store called `name`, made empty on first use. Every handle
  // of one name sees the same objects, and the objects stay after the last handle is
  // destroyed (like files in a directory), until the process exits. Thread-safe.
  // Location() is "mem:NAME".
  static std::unique_ptr<MemoryStorage> OpenShared(std::string_view name);

  Status Put(std::string_view name, ByteSpan data, PutOptions opts = {}) override;
  Result<Bytes> Get(std::string_view name) override;
  Result<Bytes> GetRange(std::string_view name, uint64_t offset, uint64_t length) override;
  Result<ObjectInfo> Stat(std::string_view name) override;
  // Calls `fn` on a snapshot taken under the lock, without holding it, so `fn` may call
  // back into this store (e.g. Remove what it is shown).
  Status List(std::string_view prefix, const std::function<Status(const ObjectInfo&)>& fn) override;
  Status Remove(std::string_view name) override;

  std::string Location() const override { return location_; }
  Capabilities caps() const override { return {.atomic_exclusive_put = true, .local = false}; }

 private:
  struct Objects;
  MemoryStorage(std::shared_ptr<Objects> objects, std::string location);

  // Shared because a named store is co-owned by the process-wide table and by every open
  // handle of that name, none of which outlives the others in a known order.
  std::shared_ptr<Objects> objects_;
  std::string location_;
};

}  // namespace lb::storage
