// Blob types and where a blob lives.
#pragma once

#include <cstdint>

#include "crypto/crypto.h"

namespace lb::repo {

// Data blobs (file content) and tree blobs (directory listings, other metadata) never share
// a pack, so metadata can be read without touching data packs.
enum class BlobType : uint8_t { kData = 1, kTree = 2 };

inline const char* BlobTypeName(BlobType t) { return t == BlobType::kData ? "data" : "tree"; }

struct BlobLocation {
  crypto::Id pack;
  BlobType type = BlobType::kData;
  uint32_t offset = 0;      // byte offset of the sealed blob inside the pack
  uint32_t length = 0;      // sealed length in the pack
  uint32_t raw_length = 0;  // plaintext length
};

}  // namespace lb::repo
