// Reading snapshot trees: listing (ls) and comparing two snapshots (diff).
#pragma once

#include <functional>
#include <string>

#include "repo/repository.h"
#include "repo/tree.h"

namespace lb::source {

// Calls fn(path, node) for every entry under `tree` in path order; `prefix` limits the walk
// to one path (absolute, in snapshot terms) and what lies below it.
Status WalkTree(repo::Repository& repo, const crypto::Id& tree, const std::string& prefix,
                const std::function<Status(const std::string&, const repo::Node&)>& fn);

enum class Change { kAdded, kRemoved, kModified, kMetadata };
// Reports differences between two trees; identical subtrees are skipped by id.
Status DiffTrees(repo::Repository& repo, const crypto::Id& a, const crypto::Id& b,
                 const std::function<void(Change, const std::string&, const repo::Node*)>& fn);

}  // namespace lb::source
