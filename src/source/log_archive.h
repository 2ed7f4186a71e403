// Log archiving: after a snapshot of old log files is committed, the originals may be
// removed, but only once every byte of each file has been read back from the repository
// and compared with the file on disk.
#pragma once

#include <string>
#include <vector>

#include "repo/repository.h"
#include "repo/snapshot.h"

namespace lb::source {

struct RemoveArchivedResult {
  uint64_t removed = 0;
  uint64_t bytes_removed = 0;
  std::vector<std::string> kept;  // changed since the backup, or not verifiable: left alone
};

// For each absolute `path` stored in `snap`: checks the file still has the size and mtime
// the snapshot recorded, reads every blob of it back from the repository (decrypted and
// verified against its id) and compares it with the file's bytes; only then unlinks it.
Result<RemoveArchivedResult> RemoveArchivedFiles(repo::Repository& repo,
                                                 const repo::Snapshot& snap,
                                                 const std::vector<std::string>& paths);

}  // namespace lb::source
