#include "storage/memory_storage.h"

#include <ctime>
#include <map>
#include <mutex>
#include <vector>

#include "storage/object_name.h"

namespace lb::storage {

struct MemoryStorage::Objects {
  struct Object {
    Bytes data;
    int64_t mtime_unix = 0;
  };
  std::mutex mu;
  // Guarded by `mu`. Ordered so List can start at the prefix instead of scanning all.
  std::map<std::string, Object, std::less<>> by_name;
};

namespace {

Status Missing(std::string_view verb, std::string_view name) {
  return Err(Code::kNotFound, "{} '{}': no such object", verb, name);
}

}  // namespace

MemoryStorage::MemoryStorage() : MemoryStorage(std::make_shared<Objects>(), "mem:") {}

MemoryStorage::MemoryStorage(std::shared_ptr<Objects> objects, std::string location)
    : objects_(std::move(objects)), location_(std::move(location)) {}

std::unique_ptr<MemoryStorage> MemoryStorage::OpenShared(std::string_view name) {
  // The named stores of "mem:NAME". Deliberately never destroyed, so OpenShared stays usable
  // during static destruction (from another static's destructor, or a thread still running).
  static auto* mu = new std::mutex;
  // Guarded by `*mu`.
  static auto* stores = new std::map<std::string, std::shared_ptr<Objects>, std::less<>>;

  std::shared_ptr<Objects> objects;
  {
    std::lock_guard lock(*mu);
    auto it = stores->find(name);
    if (it == stores->end()) {
      it = stores->emplace(std::string(name), std::make_shared<Objects>()).first;
    }
    objects = it->second;
  }
  return std::unique_ptr<MemoryStorage>(
      new MemoryStorage(std::move(objects), fmt::format("mem:{}", name)));
}

Status MemoryStorage::Put(std::string_view name, ByteSpan data, PutOptions opts) {
  LB_RETURN_IF_ERROR(ValidateObjectName(name));
  Objects::Object object{.data = Bytes(data.begin(), data.end()),
                         .mtime_unix = static_cast<int64_t>(std::time(nullptr))};
  std::lock_guard lock(objects_->mu);
  auto it = objects_->by_name.find(name);
  if (it == objects_->by_name.end()) {
    objects_->by_name.emplace(std::string(name), std::move(object));
  } else if (opts.exclusive) {
    return Err(Code::kAlreadyExists, "write '{}': object already exists", name);
  } else {
    it->second = std::move(object);
  }
  return Status::Ok();
}

Result<Bytes> MemoryStorage::Get(std::string_view name) {
  LB_RETURN_IF_ERROR(ValidateObjectName(name));
  std::lock_guard lock(objects_->mu);
  auto it = objects_->by_name.find(name);
  if (it == objects_->by_name.end()) return Missing("read", name);
  return it->second.data;
}

Result<Bytes> MemoryStorage::GetRange(std::string_view name, uint64_t offset, uint64_t length) {
  LB_RETURN_IF_ERROR(ValidateObjectName(name));
  std::lock_guard lock(objects_->mu);
  auto it = objects_->by_name.find(name);
  if (it == objects_->by_name.end()) return Missing("read", name);
  const Bytes& data = it->second.data;
  if (offset > data.size() || length > data.size() - offset) {
    return Err(Code::kCorruption, "read '{}' at {}+{}: short object ({} bytes)", name, offset,
               length, data.size());
  }
  const auto begin = data.begin() + static_cast<std::ptrdiff_t>(offset);
  return Bytes(begin, begin + static_cast<std::ptrdiff_t>(length));
}

Result<ObjectInfo> MemoryStorage::Stat(std::string_view name) {
  LB_RETURN_IF_ERROR(ValidateObjectName(name));
  std::lock_guard lock(objects_->mu);
  auto it = objects_->by_name.find(name);
  if (it == objects_->by_name.end()) return Missing("stat", name);
  return ObjectInfo{
      .name = it->first, .size = it->second.data.size(), .mtime_unix = it->second.mtime_unix};
}

Status MemoryStorage::List(std::string_view prefix,
                           const std::function<Status(const ObjectInfo&)>& fn) {
  LB_RETURN_IF_ERROR(ValidateListPrefix(prefix));
  std::vector<ObjectInfo> matches;
  {
    std::lock_guard lock(objects_->mu);
    for (auto it = objects_->by_name.lower_bound(prefix);
         it != objects_->by_name.end() && it->first.starts_with(prefix); ++it) {
      matches.push_back(
          {.name = it->first, .size = it->second.data.size(), .mtime_unix = it->second.mtime_unix});
    }
  }
  for (const ObjectInfo& info : matches) LB_RETURN_IF_ERROR(fn(info));
  return Status::Ok();
}

Status MemoryStorage::Remove(std::string_view name) {
  LB_RETURN_IF_ERROR(ValidateObjectName(name));
  std::lock_guard lock(objects_->mu);
  auto it = objects_->by_name.find(name);
  if (it == objects_->by_name.end()) return Missing("remove", name);
  objects_->by_name.erase(it);
  return Status::Ok();
}

}  // namespace lb::storage
