// Restores a file-tree snapshot: contents verified blob by blob against their keyed ids,
// in parallel, then metadata (modes, owners when root, times, links) bottom-up.
#pragma once

#include <atomic>
#include <optional>
#include <string>
#include <vector>

#include "repo/repository.h"
#include "repo/snapshot.h"

namespace lb::source {

struct RestoreProgress {
  std::atomic<uint64_t> files_done{0};
  std::atomic<uint64_t> bytes_done{0};
  std::atomic<uint64_t> files_total{0};
  std::atomic<uint64_t> bytes_total{0};
};

struct FileRestoreOptions {
  std::string target;                 // snapshot paths are re-rooted under it
  std::vector<std::string> includes;  // absolute snapshot paths; empty: everything
  size_t threads = 0;                 // 0: every core
  RestoreProgress* progress = nullptr;
  std::optional<crypto::Id> root;     // restore this tree instead of the snapshot's root
  std::vector<std::string> excludes;  // snapshot paths left out (with what lies below)
  // The target already holds an older copy: files whose blobs all match are kept, others
  // get only their differing chunks rewritten, and entries the snapshot lacks are removed.
  bool delta = false;
};

struct FileRestoreResult {
  uint64_t files = 0, dirs = 0, others = 0, bytes = 0;
  // Paths (in the snapshot) whose data could not be read or verified; they are written with
  // the unreadable ranges left as zeros, and the command exits non-zero.
  std::vector<std::string> damaged;
  std::vector<std::string> errors;  // local failures (permission, disk full ...)
  double seconds = 0;
  uint64_t files_kept = 0, chunks_rewritten = 0, removed = 0;  // delta
};

Result<FileRestoreResult> RestoreFiles(repo::Repository& repo, const repo::Snapshot& snap,
                                       const FileRestoreOptions& opts);

}  // namespace lb::source
