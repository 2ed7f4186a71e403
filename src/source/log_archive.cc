#include "source/log_archive.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>

#include "repo/tree.h"
#include "util/log.h"

namespace lb::source {

namespace {

// The node of `path` in the snapshot, loading each directory's tree once.
class TreeLookup {
 public:
  TreeLookup(repo::Repository& repo, const crypto::Id& root) : repo_(repo) { dirs_["/"] = root; }

  Result<std::optional<repo::Node>> Find(const std::string& path) {
    size_t slash = path.rfind('/');
    std::string dir = slash == 0 ? "/" : path.substr(0, slash);
    std::string name = path.substr(slash + 1);
    LB_ASSIGN_OR_RETURN(const std::vector<repo::Node>* nodes, Listing(dir));
    if (!nodes) return std::optional<repo::Node>();
    for (const auto& n : *nodes)
      if (n.name == name) return std::optional<repo::Node>(n);
    return std::optional<repo::Node>();
  }

 private:
  Result<const std::vector<repo::Node>*> Listing(const std::string& dir) {
    auto cached = listings_.find(dir);
    if (cached != listings_.end()) return &cached->second;
    crypto::Id id;
    if (dir == "/") {
      id = dirs_["/"];
    } else {
      size_t slash = dir.rfind('/');
      std::string parent = slash == 0 ? "/" : dir.substr(0, slash);
      LB_ASSIGN_OR_RETURN(const std::vector<repo::Node>* up, Listing(parent));
      if (!up) return static_cast<const std::vector<repo::Node>*>(nullptr);
      bool found = false;
      for (const auto& n : *up)
        if (n.name == dir.substr(slash + 1) && n.type == repo::NodeType::kDir) {
          id = n.subtree;
          found = true;
        }
      if (!found) return static_cast<const std::vector<repo::Node>*>(nullptr);
    }
    LB_ASSIGN_OR_RETURN(Bytes blob, repo_.LoadBlob(id));
    LB_ASSIGN_OR_RETURN(auto nodes, repo::DecodeTree(blob));
    return &(listings_[dir] = std::move(nodes));
  }

  repo::Repository& repo_;
  std::map<std::string, crypto::Id> dirs_;
  std::map<std::string, std::vector<repo::Node>> listings_;
};

// Reads the file and compares it blob by blob with what the repository returns.
Status VerifyAgainstRepository(repo::Repository& repo, const std::string& path,
                               const repo::Node& node) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return ErrnoStatus(errno, "open");
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  uint64_t off = 0;
  Bytes local;
  for (const auto& id : node.content) {
    LB_ASSIGN_OR_RETURN(Bytes stored, repo.LoadBlob(id));  // decrypted and id-checked
    local.resize(stored.size());
    ssize_t n = pread(fd, local.data(), local.size(), off_t(off));
    if (n != ssize_t(local.size()) || local != stored)
      return Err(Code::kCorruption, "bytes at offset {} differ from the archived copy", off);
    off += stored.size();
  }
  if (off != node.size) return Err(Code::kCorruption, "archived copy has {} bytes, file {}", off, node.size);
  return Status::Ok();
}

}  // namespace

Result<RemoveArchivedResult> RemoveArchivedFiles(repo::Repository& repo,
                                                 const repo::Snapshot& snap,
                                                 const std::vector<std::string>& paths) {
  RemoveArchivedResult res;
  TreeLookup lookup(repo, snap.tree);
  for (const auto& path : paths) {
    auto keep = [&](const std::string& why) {
      LogWarning("keeping '{}': {}", PrintableName(path), why);
      res.kept.push_back(path);
    };
    LB_ASSIGN_OR_RETURN(auto node, lookup.Find(path));
    if (!node || node->type != repo::NodeType::kFile) {
      keep("not in the snapshot");
      continue;
    }
    struct stat st {};
    if (lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
      keep("gone or no longer a file");
      continue;
    }
    int64_t mtime = int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    if (uint64_t(st.st_size) != node->size || mtime != node->mtime_ns) {
      keep("changed since it was archived");
      continue;
    }
    Status v = VerifyAgainstRepository(repo, path, *node);
    if (!v.ok()) {
      keep("verification failed: " + v.ToString());
      continue;
    }
    if (::unlink(path.c_str()) != 0) {
      keep(ErrnoStatus(errno, "unlink").ToString());
      continue;
    }
    res.removed++;
    res.bytes_removed += node->size;
  }
  return res;
}

}  // namespace lb::source
