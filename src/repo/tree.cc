#include "repo/tree.h"

#include <algorithm>

namespace lb::repo {

namespace {
constexpr uint32_t kTreeMagic = 0x5254424c;  // "LBTR"
constexpr size_t kFixed = 1 + 1 + 2 + 4 * 4 + 8 * 6 + 2;  // before name/link/payload
}  // namespace

const char* NodeTypeName(NodeType t) {
  switch (t) {
    case NodeType::kFile: return "file";
    case NodeType::kDir: return "dir";
    case NodeType::kSymlink: return "symlink";
    case NodeType::kFifo: return "fifo";
    case NodeType::kCharDev: return "chardev";
    case NodeType::kBlockDev: return "blockdev";
    case NodeType::kSocket: return "socket";
  }
  return "unknown";
}

Bytes EncodeTree(std::vector<Node>& nodes) {
  std::sort(nodes.begin(), nodes.end(), [](const Node& a, const Node& b) { return a.name < b.name; });
  Bytes out;
  PutU32(out, kTreeMagic);
  out.push_back(1);
  out.insert(out.end(), 3, 0);
  PutU32(out, uint32_t(nodes.size()));
  for (const auto& n : nodes) {
    out.push_back(uint8_t(n.type));
    out.push_back(0);  // flags
    PutU16(out, uint16_t(n.name.size()));
    PutU32(out, n.mode);
    PutU32(out, n.uid);
    PutU32(out, n.gid);
    PutU32(out, n.nlink);
    PutU64(out, uint64_t(n.mtime_ns));
    PutU64(out, uint64_t(n.ctime_ns));
    PutU64(out, n.inode);
    PutU64(out, n.dev);
    PutU64(out, n.size);
    PutU64(out, n.rdev);
    PutU16(out, uint16_t(n.link_target.size()));
    out.insert(out.end(), n.name.begin(), n.name.end());
    out.insert(out.end(), n.link_target.begin(), n.link_target.end());
    if (n.type == NodeType::kDir) {
      out.insert(out.end(), n.subtree.bytes.begin(), n.subtree.bytes.end());
    } else if (n.type == NodeType::kFile) {
      PutU32(out, uint32_t(n.content.size()));
      for (const auto& id : n.content) out.insert(out.end(), id.bytes.begin(), id.bytes.end());
    }
  }
  return out;
}

Result<std::vector<Node>> DecodeTree(ByteSpan b) {
  auto bad = [](const char* what) { return Err(Code::kCorruption, "tree: {}", what); };
  if (b.size() < 12 || GetU32(b.data()) != kTreeMagic || b[4] != 1) return bad("bad magic or version");
  uint32_t count = GetU32(b.data() + 8);
  size_t pos = 12;
  std::vector<Node> out;
  out.reserve(std::min<uint32_t>(count, 1u << 16));
  for (uint32_t i = 0; i < count; ++i) {
    if (b.size() - pos < kFixed) return bad("truncated entry");
    const uint8_t* p = b.data() + pos;
    Node n;
    n.type = NodeType(p[0]);
    if (p[0] < 1 || p[0] > 7) return bad("unknown entry type");
    uint16_t name_len = GetU16(p + 2);
    n.mode = GetU32(p + 4);
    n.uid = GetU32(p + 8);
    n.gid = GetU32(p + 12);
    n.nlink = GetU32(p + 16);
    n.mtime_ns = int64_t(GetU64(p + 20));
    n.ctime_ns = int64_t(GetU64(p + 28));
    n.inode = GetU64(p + 36);
    n.dev = GetU64(p + 44);
    n.size = GetU64(p + 52);
    n.rdev = GetU64(p + 60);
    uint16_t link_len = GetU16(p + 68);
    pos += kFixed;
    if (b.size() - pos < size_t(name_len) + link_len) return bad("truncated name");
    n.name.assign(reinterpret_cast<const char*>(b.data() + pos), name_len);
    pos += name_len;
    n.link_target.assign(reinterpret_cast<const char*>(b.data() + pos), link_len);
    pos += link_len;
    if (n.name.empty() || n.name == "." || n.name == ".." ||
        n.name.find('/') != std::string::npos || n.name.find('\0') != std::string::npos)
      return bad("invalid entry name");
    if (n.type == NodeType::kDir) {
      if (b.size() - pos < 32) return bad("truncated subtree id");
      std::memcpy(n.subtree.bytes.data(), b.data() + pos, 32);
      pos += 32;
    } else if (n.type == NodeType::kFile) {
      if (b.size() - pos < 4) return bad("truncated content count");
      uint32_t nc = GetU32(b.data() + pos);
      pos += 4;
      if ((b.size() - pos) / 32 < nc) return bad("truncated content list");
      n.content.resize(nc);
      for (uint32_t c = 0; c < nc; ++c, pos += 32)
        std::memcpy(n.content[c].bytes.data(), b.data() + pos, 32);
    }
    out.push_back(std::move(n));
  }
  if (pos != b.size()) return bad("trailing bytes");
  return out;
}

}  // namespace lb::repo
