// Physical base backups of a running PostgreSQL cluster: non-exclusive backup start/stop,
// the data directory and tablespaces copied in parallel into one snapshot (relation files
// in page-aligned blocks, page checksums verified), complete only once the WAL from start to
// stop is in the archive.
#pragma once

#include <string>
#include <vector>

#include "repo/repository.h"
#include "repo/snapshot.h"
#include "source/files_backup.h"

namespace lb::pg {

inline constexpr char kBaseKind[] = "pg-base";
inline constexpr char kTablespaceDir[] = ".lifeboat-tablespaces";

struct BaseBackupOptions {
  std::string conninfo;          // empty: the PG* environment
  std::string pgdata;            // empty: the server's data_directory
  std::string source = "main";   // name of this cluster inside the repository
  bool full = false;             // read every file even if unchanged since the parent
  std::vector<std::string> tags;
  uint32_t block_size = 65536;   // chunk size of relation files (a multiple of 8192)
  int wal_timeout_seconds = 300; // how long to wait for the stop segment to be archived
  size_t threads = 0;
  source::BackupProgress* progress = nullptr;
};

struct BaseBackupResult {
  repo::Snapshot snapshot;
  source::FileBackupResult files;
  std::vector<std::string> bad_pages;  // "base/5/1259 block 3: checksum ..."
  double seconds = 0;
};

Result<BaseBackupResult> BackupCluster(repo::Repository& repo, const BaseBackupOptions& opts);

// The pg-base snapshots of `source`, oldest first.
Result<std::vector<repo::Snapshot>> ListBaseBackups(repo::Repository& repo,
                                                    const std::string& source);

}  // namespace lb::pg
