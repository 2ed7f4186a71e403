// What the WAL archive can recover: per timeline, the segments held and the gaps between
// them; per base backup, whether its own WAL is complete and the window of recovery targets
// it can reach (from its end to the last segment contiguous with it).
#pragma once

#include <string>
#include <vector>

#include "repo/repository.h"
#include "repo/snapshot.h"

namespace lb::pg {

struct TimelineReport {
  uint32_t timeline = 0;
  uint64_t segments = 0;
  std::string first, last;
  std::vector<std::pair<std::string, std::string>> gaps;  // missing [from, to]
};

struct BackupWindow {
  repo::Snapshot backup;
  bool wal_complete = false;      // start..stop segments all archived
  std::string missing;            // first missing segment, when any
  std::string earliest;           // earliest recovery target: the backup's end (RFC 3339)
  std::string latest;             // archive time of the last contiguous segment (upper bound)
  std::string last_segment;       // last segment contiguous from the backup's start
};

struct ArchiveReport {
  std::vector<TimelineReport> timelines;
  std::vector<BackupWindow> backups;
  std::vector<std::string> other_files;  // history, backup-history, partial
  bool ok() const;
};

Result<ArchiveReport> VerifyArchive(repo::Repository& repo, const std::string& source);

struct WalExpireResult {
  uint64_t segments_removed = 0, bytes_removed = 0, segments_kept = 0;
  std::string oldest_backup;     // id of the oldest base backup (its WAL is kept)
  std::string first_kept;        // first segment the archive keeps
};
// Removes WAL segments archived longer ago than `retention_seconds` that lie wholly before
// the start of the oldest base backup of `source` (which must stay restorable, and every
// later segment is needed to replay forward from it). With no base backup nothing is
// removed. History files are always kept.
Result<WalExpireResult> ExpireWal(repo::Repository& repo, const std::string& source,
                                  int64_t retention_seconds, bool dry_run);

}  // namespace lb::pg
