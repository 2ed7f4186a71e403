// The blob index: which pack holds each blob. Index files in the repository are sealed
// sorted runs; locally they are cached decrypted and searched in place through mmap, so
// memory does not grow with the repository (docs/repository-format.md, "Index").
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "repo/blob.h"
#include "repo/keys.h"
#include "repo/pack.h"
#include "storage/storage.h"

namespace lb::repo {

struct IndexPack {
  crypto::Id id;
  BlobType type = BlobType::kData;
  std::vector<PackEntry> blobs;
};

// Encodes packs as a plaintext run (sorted by blob id).
Bytes EncodeRun(const std::vector<IndexPack>& packs);

// A read-only view of a plaintext run held in memory or mapped from a cache file.
class IndexRun {
 public:
  // Validates the layout; kCorruption when sizes or magic are wrong.
  static Result<IndexRun> FromBytes(ByteSpan bytes);
  std::optional<BlobLocation> Find(const crypto::Id& id) const;
  uint32_t pack_count() const { return pack_count_; }
  uint32_t entry_count() const { return entry_count_; }
  crypto::Id PackId(uint32_t no) const;
  BlobType PackType(uint32_t no) const;
  // Entry i in sorted order.
  void Entry(uint32_t i, crypto::Id& blob, BlobLocation& loc) const;
  const uint8_t* EntryPtr(uint32_t i) const { return entries_ + size_t(i) * 48; }

 private:
  const uint8_t* packs_ = nullptr;
  const uint8_t* entries_ = nullptr;
  uint32_t pack_count_ = 0;
  uint32_t entry_count_ = 0;
};

// The index of a repository: the runs of every index file plus what this process wrote.
// Thread-safe.
class Index {
 public:
  // Reads index/ (decrypting only files not yet in the cache) and maps the cached runs.
  // `cache_dir` is the repository's own cache directory; created if missing.
  static Result<std::unique_ptr<Index>> Load(storage::Storage& st, const MasterKey& key,
                                             const std::string& cache_dir);
  ~Index();

  // Where the live index puts a blob. Writers deduplicate against this only.
  std::optional<BlobLocation> Find(const crypto::Id& id) const;
  bool Has(const crypto::Id& id) const { return Find(id).has_value(); }
  // For reading: the live index, then packs a prune has condemned but not yet deleted (a
  // backup that started before the prune may still reference them; see
  // docs/repository-format.md, "Prune").
  std::optional<BlobLocation> FindAny(const crypto::Id& id) const;

  // Records blobs of a pack this process has made durable.
  void AddPack(const IndexPack& pack);

  // Calls fn for every (blob, location) of the loaded index files (not pending additions).
  // Duplicates (a blob in two packs) are reported each time.
  Status ForEach(const std::function<Status(const crypto::Id&, const BlobLocation&)>& fn) const;
  // The same entries in ascending blob-id order (a merge of the sorted runs, no copy), so a
  // caller can join them with another sorted stream in constant memory.
  Status ForEachSorted(
      const std::function<Status(const crypto::Id&, const BlobLocation&)>& fn) const;

  // Ids of the index files this index was loaded from.
  const std::vector<crypto::Id>& files() const { return files_; }
  // Index files that could not be read or verified, and why; their blobs are unknown.
  const std::vector<std::pair<crypto::Id, Status>>& bad_files() const { return bad_files_; }

  struct Mapped;  // a cached run mapped into memory (index.cc)

 private:
  Index() = default;

  std::vector<crypto::Id> files_;
  std::vector<std::pair<crypto::Id, Status>> bad_files_;
  std::vector<std::unique_ptr<Mapped>> maps_;  // base first, then deltas
  std::vector<Bytes> condemned_;               // runs of condemned/ objects, in memory
  mutable std::mutex mu_;
  std::unordered_map<crypto::Id, BlobLocation, crypto::IdHash> pending_;  // guarded by mu_
};

// Seals a plaintext run for storage as an index file and returns (id, bytes).
std::pair<crypto::Id, Bytes> SealIndexFile(const MasterKey& key, ByteSpan run);
// Opens an index file: checks its id (SHA-256 of the stored bytes), decrypts, decompresses,
// validates the run layout.
Result<Bytes> OpenIndexFile(const MasterKey& key, const crypto::Id& id, ByteSpan stored);

// Where caches live: $LIFEBOAT_CACHE_DIR, else $XDG_CACHE_HOME/lifeboat, else ~/.cache/lifeboat.
std::string DefaultCacheRoot();

}  // namespace lb::repo
