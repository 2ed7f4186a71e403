// Restoring a cluster: choose the newest base backup that can reach the recovery target,
// restore it (and its tablespaces) in parallel, write the recovery settings, and optionally
// run PostgreSQL until the target is reached and promoted, measuring the time it took.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "repo/repository.h"
#include "repo/snapshot.h"

namespace lb::pg {

struct RecoveryTarget {
  enum class Kind { kLatest, kTime, kLsn, kXid, kName, kImmediate };
  Kind kind = Kind::kLatest;
  std::string value;
};

struct PgRestoreOptions {
  std::string pgdata;
  std::string source = "main";
  RecoveryTarget target;
  std::string backup;  // snapshot ref; empty: chosen from the target
  bool delta = false;  // pgdata exists: rewrite only what differs, remove what is extra
  std::map<std::string, std::string> tablespace_map;  // old location -> new location
  std::string target_action = "promote";  // promote | pause | shutdown
  std::string target_timeline = "latest";  // latest | current | a timeline id
  // Turn archiving off in the restored cluster (drills, restore tests: a copy must not push
  // its new timeline into the production archive). Off for a real recovery.
  bool no_archive = false;
  // The restore_command written into postgresql.auto.conf (without %f %p).
  std::string restore_command;
  bool start = false;
  int port = 0;        // with start: the port to run on (0: as configured)
  int start_timeout_seconds = 3600;
  size_t threads = 0;
};

struct PgRestoreResult {
  repo::Snapshot backup;
  uint64_t files = 0, bytes = 0;
  uint64_t files_rewritten = 0, files_kept = 0, files_removed = 0;  // delta
  std::vector<std::string> damaged;
  double restore_seconds = 0;
  // With start:
  bool started = false;
  std::string recovery_point;  // what PostgreSQL reported ("recovery stopping before ...")
  std::string last_transaction_time;
  double total_seconds = 0;  // restore + recovery until promotion: the measured RTO
};

// Picks the base backup for a target: the newest that ended before a time or LSN target;
// the newest for latest/xid/name/immediate. kNotFound with the earliest backup's end when
// none can reach the target.
Result<repo::Snapshot> ChooseBackup(repo::Repository& repo, const PgRestoreOptions& opts);

Result<PgRestoreResult> RestoreCluster(repo::Repository& repo, const PgRestoreOptions& opts);

// Parses "2026-11-24 20:40:01.123456+00", "...Z", "...T..." (no zone: UTC) into ns.
bool ParseTargetTime(const std::string& text, int64_t& unix_ns);

}  // namespace lb::pg
