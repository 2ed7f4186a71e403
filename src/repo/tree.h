// Tree blobs: one directory listing each, with the metadata of every entry and the blob ids
// of file contents. Names are raw bytes (any byte but '/' and NUL). Byte format:
// docs/repository-format.md, "Trees".
#pragma once

#include <string>
#include <vector>

#include "crypto/crypto.h"
#include "util/status.h"

namespace lb::repo {

enum class NodeType : uint8_t {
  kFile = 1,
  kDir = 2,
  kSymlink = 3,
  kFifo = 4,
  kCharDev = 5,
  kBlockDev = 6,
  kSocket = 7,
};

struct Node {
  NodeType type = NodeType::kFile;
  std::string name;          // raw bytes
  uint32_t mode = 0;         // permission bits (st_mode & 07777)
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t nlink = 1;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;      // for change detection only; not restorable
  uint64_t inode = 0;
  uint64_t dev = 0;
  uint64_t size = 0;
  uint64_t rdev = 0;
  std::string link_target;   // symlinks
  crypto::Id subtree;        // directories
  std::vector<crypto::Id> content;  // files, in order
};

// Encodes nodes sorted by name (the caller's order is replaced).
Bytes EncodeTree(std::vector<Node>& nodes);
Result<std::vector<Node>> DecodeTree(ByteSpan b);

const char* NodeTypeName(NodeType t);

}  // namespace lb::repo
