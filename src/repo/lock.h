// Repository locks: shared for appenders and readers (backup, restore, check, prune), exclusive
// for operations that
// delete (prune, repair, key remove). A lock is a small object under locks/, refreshed while
// held; docs/repository-format.md, "Locks", gives the staleness rules.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "storage/storage.h"
#include <chrono>

namespace lb::repo {

struct LockInfo {
  std::string id;
  std::string host;
  std::string user;
  int64_t pid = 0;
  int64_t time_unix = 0;  // last refresh
  int64_t started_unix_ns = 0;  // when the holder took it (kept across refreshes)
  bool exclusive = false;
  std::string purpose;
  bool stale = false;
  std::string stale_reason;
};

// A lock older than this without refresh is stale (the holder refreshes every 5 minutes).
inline constexpr int64_t kLockStaleSeconds = 30 * 60;
inline constexpr int64_t kLockRefreshSeconds = 5 * 60;

class RepoLock {
 public:
  // Takes a lock. kFailedPrecondition ("repository is locked ...") when a live lock conflicts:
  // any other lock for exclusive, an exclusive one for shared. Stale locks never block; they
  // are reported as warnings.
  // `unique_purpose`: also conflicts with any other live lock of the same purpose (one prune
  // at a time, while backups keep appending).
  static Result<std::unique_ptr<RepoLock>> Acquire(storage::Storage& st, bool exclusive,
                                                   std::string purpose,
                                                   bool unique_purpose = false);
  ~RepoLock();  // removes the lock object
  const std::string& id() const { return id_; }

 private:
  RepoLock(storage::Storage& st, bool exclusive, std::string purpose)
      : st_(st), exclusive_(exclusive), purpose_(std::move(purpose)) {}
  Status Write();
  void RefreshLoop();

  storage::Storage& st_;
  bool exclusive_;
  std::string purpose_;
  int64_t started_ns_ = 0;
  std::string id_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread refresher_;
};

Result<std::vector<LockInfo>> ListLocks(storage::Storage& st);
// Removes stale locks (or every lock when `all`); returns how many were removed.
Result<int> RemoveLocks(storage::Storage& st, bool all);

}  // namespace lb::repo
