// Pack files: many sealed blobs followed by a sealed header that describes them, so a pack
// describes itself and the index can be rebuilt from packs alone. Byte format:
// docs/repository-format.md, "Packs".
#pragma once

#include <vector>

#include "repo/blob.h"
#include "util/status.h"

namespace lb::repo {

struct PackEntry {
  crypto::Id id;
  BlobType type;
  uint32_t offset;
  uint32_t length;
  uint32_t raw_length;
};

// Seals one blob: Seal(enc, [u8 compression][payload], aad = blob id). Compression is zstd at
// `level` when that makes it smaller, else none. Appends to `out`.
void SealBlob(const crypto::Key& enc, const crypto::Id& id, ByteSpan plaintext, int level,
              Bytes& out);
// Opens a sealed blob and checks its plaintext against `id` with `id_key`. kCorruption names
// what failed.
Result<Bytes> OpenBlob(const crypto::Key& enc, const crypto::Key& id_key, const crypto::Id& id,
                       ByteSpan sealed);

// Moves a sealed blob from one encryption key to another without compressing it again: opens
// `sealed` under `from_enc` (AAD = id), checks the plaintext against `id` with `id_key` as
// OpenBlob does, then seals the same [compression][payload] under `to_enc`, appending to
// `out`. Returns the plaintext length. kCorruption as OpenBlob. For repositories that share
// their id key (copies made with `init --copy-params-from`).
Result<uint32_t> ResealBlob(const crypto::Key& from_enc, const crypto::Key& id_key,
                            const crypto::Key& to_enc, const crypto::Id& id, ByteSpan sealed,
                            Bytes& out);

// Builds one pack in memory. Not thread-safe (callers own one per pack).
class PackBuilder {
 public:
  // `reserve`: expected final size, so the buffer is allocated once instead of doubling
  // (capacity is virtual memory; only bytes written count toward RSS).
  explicit PackBuilder(BlobType type, size_t reserve = 0) : type_(type) { buf_.reserve(reserve); }
  BlobType type() const { return type_; }
  // Appends a sealed blob.
  void Add(const crypto::Id& id, ByteSpan sealed, uint32_t raw_length);
  size_t size() const { return buf_.size(); }
  size_t count() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  // Appends the sealed header and trailer; returns the pack bytes and entries.
  Bytes Finish(const crypto::Key& enc, std::vector<PackEntry>& entries);

 private:
  BlobType type_;
  Bytes buf_;
  std::vector<PackEntry> entries_;
};

// Reads the header of a whole pack or of its tail: `tail` must hold at least the last
// `header_length + 4` bytes (the trailer says how many). `pack_size` is the full size.
// Returns the entries; kCorruption when the trailer, header seal or offsets are bad.
Result<std::vector<PackEntry>> ParsePackHeader(const crypto::Key& enc, ByteSpan tail,
                                               uint64_t pack_size);
// Size of the sealed header from the last 4 bytes of a pack.
Result<uint32_t> PackHeaderLength(ByteSpan last4, uint64_t pack_size);

}  // namespace lb::repo
