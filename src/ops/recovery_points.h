// The newest points a repository can restore to: per group of snapshots (kind, source,
// tags) the newest snapshot, and per WAL archive the newest segment and when it was
// archived. What `status` measures RPO exposure with; read by `lifeboat recovery-points`,
// which the daemon and `status` run per repository as a child process.
#pragma once

#include <atomic>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "repo/repository.h"

namespace lb::ops {

struct SnapshotPoint {
  std::string id = {};
  std::string kind = {};
  std::string source = {};
  std::vector<std::string> tags = {};
  double time = 0;     // unix seconds
  uint64_t count = 0;  // snapshots in the group
};

struct WalPoint {
  std::string source = {};
  std::string newest = {};  // name of the newest segment (by name)
  double archived_at = 0;   // unix seconds: when the newest-archived object was written
  uint64_t files = 0;
};

struct RecoveryPoints {
  std::string repository = {};  // plan repository name (filled by the caller)
  std::vector<SnapshotPoint> snapshots = {};
  std::vector<WalPoint> wal = {};

  nlohmann::json ToJson() const;
  static RecoveryPoints FromJson(const nlohmann::json& j);
};

// Lists the snapshots and WAL archives of `repo`. Unreadable snapshots are skipped.
// Errors: those of listing the storage.
Result<RecoveryPoints> ReadRecoveryPoints(repo::Repository& repo);

}  // namespace lb::ops

namespace lb::plan {
struct Plan;
}

namespace lb::ops {

// Reads the recovery points of every repository of `plan`, each by a child process
// `PROGRAM --repo URL ... --json recovery-points` with the repository's secret and storage
// settings (as jobs get them), at most `timeout_seconds` each. A repository that cannot be
// read adds a line to `errors` ("repository 'eu-west': ...") and is left out.
struct Observation {
  std::vector<RecoveryPoints> repositories = {};
  std::vector<std::string> errors = {};
  double taken_at = 0;  // unix seconds
};
// `stop`, when set by another thread, ends a read in progress (the daemon's shutdown).
Observation ObserveRepositories(const plan::Plan& plan, const std::string& program,
                                int64_t timeout_seconds, const std::atomic<bool>* stop = nullptr);

}  // namespace lb::ops
