// Copying a cluster's WAL archive to another repository (`lifeboat copy`), so the copy's
// base backups can be restored and rolled forward there: the cluster facts, then every WAL
// file the target lacks and its base backups can use.
#pragma once

#include <string>
#include <vector>

#include "repo/copy.h"
#include "repo/repository.h"
#include "repo/snapshot.h"

namespace lb::pg {

// The sources of `repo` with a WAL archive (a pg/<source>/cluster object), sorted.
Result<std::vector<std::string>> ListWalSources(repo::Repository& repo);

struct WalCopyOptions {
  bool dry_run = false;
  size_t threads = 0;  // parallel copies of WAL files (0: every core)
  repo::CopyProgress* progress = nullptr;
  // Base backups the target is about to receive (a dry run's snapshot copy), counted as if
  // the target had them.
  std::vector<repo::Snapshot> incoming_backups = {};
};

// Copies pg/<source>/cluster (RegisterCluster on the target: written when absent, and
// kFailedPrecondition when the target's source belongs to another cluster), then every
// wal/<source>/... object the target does not list, with repo::CopyNamedObjects. Segments
// that end before the start of the target's oldest base backup of `source` are left out
// (`objects_skipped`): nothing there can use them, and copying them would undo the target's
// own `pg wal-expire`. History, backup-history and partial files are always copied. A
// target without base backups of `source` receives every file.
Result<repo::NamedCopyResult> CopyWalArchive(repo::Repository& from, repo::Repository& to,
                                             const std::string& source,
                                             const WalCopyOptions& opts);

}  // namespace lb::pg
