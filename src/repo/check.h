// Repository verification: structure (config, keys, index files, packs, snapshots, trees),
// then optionally every blob's decryption and id. Damage is reported with the snapshots and
// paths it affects.
#pragma once

#include <string>
#include <vector>

#include "repo/repository.h"

namespace lb::repo {

struct CheckOptions {
  bool read_data = false;
  double read_fraction = 1.0;  // with read_data: fraction of packs to read (0 < f <= 1)
  size_t threads = 0;
};

struct CheckResult {
  std::vector<std::string> errors;    // damage: each line names the object
  std::vector<std::string> warnings;  // harmless debris (unindexed packs, stale locks)
  std::vector<std::string> affected;  // "snapshot 1a2b3c4d: /path/to/file"
  uint64_t index_files = 0, packs = 0, snapshots = 0, trees = 0, packs_read = 0,
           blobs_read = 0, bytes_read = 0;
  bool ok() const { return errors.empty(); }
};

Result<CheckResult> Check(Repository& repo, const CheckOptions& opts);

// Rebuilds the index from the packs alone: reads every pack header, writes new index files,
// then removes the old ones. Needs the exclusive lock (the caller holds it).
struct RepairIndexResult {
  uint64_t packs = 0, blobs = 0, bad_packs = 0, index_files_written = 0, index_files_removed = 0;
  std::vector<std::string> errors;
};
Result<RepairIndexResult> RepairIndex(Repository& repo);

}  // namespace lb::repo
