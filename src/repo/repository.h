// An open repository: its config, master key, index, and the operations on sealed files
// and blobs that every command builds on. docs/repository-format.md is the byte format.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "chunk/fastcdc.h"
#include "repo/blob.h"
#include "repo/index.h"
#include "repo/keys.h"
#include "repo/pack.h"
#include "storage/storage.h"

namespace lb::repo {

inline constexpr int kFormatVersion = 1;

struct RepoConfig {
  std::string id;  // 64 hex digits, random at init
  int version = kFormatVersion;
  chunk::ChunkerParams chunker;  // seed comes from the master key
  int zstd_level = 3;
  uint32_t pack_size = 8u << 20;
};

class Repository;

struct InitOptions {
  int zstd_level = 3;
  uint32_t pack_size = 8u << 20;
  const crypto::KdfParams* kdf = nullptr;  // default: DefaultKdfParams()
  // `init --copy-params-from`: the new repository takes this repository's id key, chunker
  // seed and chunker sizes (so equal content gets equal blob ids and chunk boundaries, and
  // `copy` moves blobs without translating their ids), with an encryption key of its own.
  const Repository* params_from = nullptr;
};

class Repository {
 public:
  // Creates config and the first key. kAlreadyExists if `st` already holds a repository.
  static Result<std::string> Init(storage::Storage& st, const Secret& secret,
                                  const InitOptions& opts = {});
  static Result<std::string> Init(storage::Storage& st, std::string_view passphrase,
                                  const InitOptions& opts = {}) {
    return Init(st, Secret{std::string(passphrase), false}, opts);
  }
  // Opens with a passphrase. kFailedPrecondition: not a repository or newer format;
  // kWrongKey: no key opens.
  static Result<std::unique_ptr<Repository>> Open(std::unique_ptr<storage::Storage> st,
                                                  const Secret& secret);
  static Result<std::unique_ptr<Repository>> Open(std::unique_ptr<storage::Storage> st,
                                                  std::string_view passphrase) {
    return Open(std::move(st), Secret{std::string(passphrase), false});
  }

  storage::Storage& storage() { return *storage_; }
  const RepoConfig& config() const { return config_; }
  const MasterKey& key() const { return key_; }
  const std::string& key_id() const { return key_id_; }
  std::string cache_dir() const;

  // Loads (or reloads) the index; the first call to index() loads it.
  Status LoadIndex();
  Result<Index*> index();

  // Sealed files outside packs (snapshots, ...): `dir` is "snapshots" etc. The id is the
  // SHA-256 of the stored bytes.
  Result<crypto::Id> SaveFile(std::string_view dir, ByteSpan plaintext);
  Result<Bytes> LoadFile(std::string_view dir, const crypto::Id& id);

  // Sealed objects under a fixed name (WAL segments, cluster facts): compressed at `level`
  // (0: stored), sealed with the name as AAD so an object cannot be passed off under another
  // name. `exclusive`: kAlreadyExists when the name is taken.
  Status PutNamed(const std::string& name, ByteSpan plaintext, int level, bool exclusive);
  // kNotFound when absent; kCorruption when it does not open under this name.
  Result<Bytes> GetNamed(const std::string& name);
  // A named object as stored, opened but not decompressed: [u8 compression][payload]. With
  // PutNamedPayload it moves an object to another repository (another key) without
  // compressing it again. Errors as GetNamed / PutNamed.
  Result<Bytes> GetNamedPayload(const std::string& name);
  Status PutNamedPayload(const std::string& name, ByteSpan payload, bool exclusive);

  crypto::Id BlobId(ByteSpan plaintext) const { return crypto::ContentId(key_.id, plaintext); }
  // Reads a blob through the index and verifies it. kNotFound when the index lacks it.
  Result<Bytes> LoadBlob(const crypto::Id& id);
  Result<Bytes> LoadBlobAt(const crypto::Id& id, const BlobLocation& loc);

 private:
  Repository() = default;
  std::unique_ptr<storage::Storage> storage_;
  RepoConfig config_;
  MasterKey key_;
  std::string key_id_;
  std::mutex index_mu_;            // held for the whole load: one load at a time
  std::unique_ptr<Index> index_;  // guarded by index_mu_
};

struct WriterStats {
  uint64_t blobs_new = 0;
  uint64_t bytes_new_raw = 0;     // plaintext bytes of new blobs
  uint64_t bytes_new_stored = 0;  // sealed bytes of new blobs
  uint64_t packs = 0;
  uint64_t index_files = 0;
};

// Appends blobs to a repository in packs. Thread-safe: many workers call Save at once.
// Durability order: a pack is Put (durable) before any index file names it; Flush writes
// the last packs and then their index. Blobs of a writer that is never flushed are debris.
class BlobWriter {
 public:
  explicit BlobWriter(Repository& repo);
  ~BlobWriter();

  // Stores the blob unless the repository or this writer already has it. Returns true when
  // it was new. Errors from pack or index writes are returned here and by every later call.
  Result<bool> Save(BlobType type, const crypto::Id& id, ByteSpan plaintext);
  // Save in two steps, so the sealing can run on another thread: Reserve says whether the
  // blob is new (and claims it); StoreReserved then seals and packs it. A reserved blob
  // must be stored, or the writer failed (Fail), before Flush.
  Result<bool> Reserve(const crypto::Id& id);
  Status StoreReserved(BlobType type, const crypto::Id& id, ByteSpan plaintext);
  // Records an error from an asynchronous StoreReserved; every later call returns it.
  void Fail(const Status& s);
  // True when the repository or this writer has the blob.
  bool Known(const crypto::Id& id);
  // StoreReserved for a blob that is already sealed under this repository's key (its id as
  // AAD), e.g. by ResealBlob; `raw_length` is its plaintext length.
  Status StoreReservedSealed(BlobType type, const crypto::Id& id, ByteSpan sealed,
                             uint32_t raw_length);
  // Repacking: adds a blob that is already sealed (same key, its id as AAD) to a new pack,
  // even though the live index lists it elsewhere. Skips ids this writer already took.
  Status AddSealed(BlobType type, const crypto::Id& id, ByteSpan sealed, uint32_t raw_length);
  Status Flush();
  WriterStats stats();

  // After this many packs an index file is written, so a killed run leaves most of what it
  // uploaded indexed and the next run reuses it.
  static constexpr size_t kPacksPerIndexFile = 8;

 private:
  // Appends a sealed blob to the open pack of its type; writes the pack when it is full.
  Status AddToPack(BlobType type, const crypto::Id& id, ByteSpan sealed, uint32_t raw_length,
                   bool reserve);
  Status WritePack(std::unique_ptr<PackBuilder> pack);
  Status WriteIndex(std::vector<IndexPack> packs);

  Repository& repo_;
  Index* index_;
  std::mutex mu_;
  std::unordered_set<crypto::Id, crypto::IdHash> reserved_;  // guarded by mu_
  std::unique_ptr<PackBuilder> open_[3];                     // guarded by mu_, by BlobType
  std::vector<IndexPack> unindexed_;                         // guarded by mu_
  Status error_;                                             // guarded by mu_
  WriterStats stats_;                                        // guarded by mu_
};

}  // namespace lb::repo
