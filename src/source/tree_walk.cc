#include "source/tree_walk.h"

namespace lb::source {

using repo::Node;
using repo::NodeType;

namespace {

Result<std::vector<Node>> LoadTree(repo::Repository& repo, const crypto::Id& id) {
  LB_ASSIGN_OR_RETURN(Bytes b, repo.LoadBlob(id));
  return repo::DecodeTree(b);
}

Status Walk(repo::Repository& repo, const crypto::Id& tree, const std::string& path,
            const std::string& prefix,
            const std::function<Status(const std::string&, const Node&)>& fn) {
  LB_ASSIGN_OR_RETURN(auto nodes, LoadTree(repo, tree));
  for (const auto& n : nodes) {
    std::string p = (path == "/" ? "" : path) + "/" + n.name;
    bool inside = prefix == "/" || p == prefix ||
                  (p.size() > prefix.size() && p.compare(0, prefix.size(), prefix) == 0 &&
                   p[prefix.size()] == '/');
    bool above = prefix.size() > p.size() && prefix.compare(0, p.size(), p) == 0 &&
                 prefix[p.size()] == '/';
    if (!inside && !above) continue;
    if (inside) LB_RETURN_IF_ERROR(fn(p, n));
    if (n.type == NodeType::kDir) LB_RETURN_IF_ERROR(Walk(repo, n.subtree, p, prefix, fn));
  }
  return Status::Ok();
}

void ReportAll(repo::Repository& repo, Change c, const Node& n, const std::string& p,
               const std::function<void(Change, const std::string&, const Node*)>& fn) {
  fn(c, p, &n);
  if (n.type != NodeType::kDir) return;
  auto nodes = LoadTree(repo, n.subtree);
  if (!nodes.ok()) return;
  for (const auto& child : *nodes) ReportAll(repo, c, child, p + "/" + child.name, fn);
}

Status Diff(repo::Repository& repo, const crypto::Id& a, const crypto::Id& b,
            const std::string& path,
            const std::function<void(Change, const std::string&, const Node*)>& fn) {
  if (a == b) return Status::Ok();
  LB_ASSIGN_OR_RETURN(auto na, LoadTree(repo, a));
  LB_ASSIGN_OR_RETURN(auto nb, LoadTree(repo, b));
  size_t i = 0, j = 0;
  std::string base = path == "/" ? "" : path;
  while (i < na.size() || j < nb.size()) {
    if (j == nb.size() || (i < na.size() && na[i].name < nb[j].name)) {
      ReportAll(repo, Change::kRemoved, na[i], base + "/" + na[i].name, fn);
      ++i;
    } else if (i == na.size() || nb[j].name < na[i].name) {
      ReportAll(repo, Change::kAdded, nb[j], base + "/" + nb[j].name, fn);
      ++j;
    } else {
      const Node& x = na[i];
      const Node& y = nb[j];
      std::string p = base + "/" + x.name;
      if (x.type != y.type) {
        ReportAll(repo, Change::kRemoved, x, p, fn);
        ReportAll(repo, Change::kAdded, y, p, fn);
      } else if (x.type == NodeType::kDir) {
        if (x.mode != y.mode || x.uid != y.uid || x.gid != y.gid || x.mtime_ns != y.mtime_ns)
          fn(Change::kMetadata, p, &y);
        LB_RETURN_IF_ERROR(Diff(repo, x.subtree, y.subtree, p, fn));
      } else if (x.content != y.content || x.link_target != y.link_target || x.size != y.size ||
                 x.rdev != y.rdev) {
        fn(Change::kModified, p, &y);
      } else if (x.mode != y.mode || x.uid != y.uid || x.gid != y.gid ||
                 x.mtime_ns != y.mtime_ns) {
        fn(Change::kMetadata, p, &y);
      }
      ++i;
      ++j;
    }
  }
  return Status::Ok();
}

}  // namespace

Status WalkTree(repo::Repository& repo, const crypto::Id& tree, const std::string& prefix,
                const std::function<Status(const std::string&, const Node&)>& fn) {
  return Walk(repo, tree, "/", prefix.empty() ? "/" : prefix, fn);
}

Status DiffTrees(repo::Repository& repo, const crypto::Id& a, const crypto::Id& b,
                 const std::function<void(Change, const std::string&, const Node*)>& fn) {
  return Diff(repo, a, b, "/", fn);
}

}  // namespace lb::source
