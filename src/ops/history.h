// The job history: every run of every plan job (when it was due, when it ran, how it
// ended, what it wrote) and the last schedule slot taken per job, in a SQLite database that
// outlives the daemon. `status`, /metrics and the dashboard read it; the daemon writes it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "ops/job_runner.h"
#include "plan/timezone.h"
#include "util/status.h"

struct sqlite3;

namespace lb::ops {

struct RunRecord {
  int64_t id = 0;
  std::string job = {};
  plan::UnixSeconds scheduled = 0;  // the slot (or retry time) the run was for
  double started = 0;               // unix seconds, fractional
  double ended = 0;                 // 0 while running
  RunResult result = RunResult::kRunning;
  int exit_code = -1;
  uint64_t bytes = 0;
  std::string snapshot = {};
  std::string error = {};  // first line
  int attempt = 1;         // 1 for the scheduled run, 2.. for retries
  std::string log = {};    // only filled by Log()
};

// Per job: what the status and the metrics show.
struct JobStats {
  std::optional<RunRecord> last = {};          // newest finished run
  std::optional<RunRecord> last_success = {};  // newest run with result ok
  std::optional<RunRecord> running = {};       // a run without end
  uint64_t runs = 0;
  uint64_t failures = 0;  // runs not ok (failed, timeout, stopped, interrupted)
};

// Thread-safe: one connection behind a mutex. Several processes may open one database
// (the daemon writes, `status` reads): SQLite's WAL journal and a busy timeout.
class History {
 public:
  // Opens or creates the database at `path` (creating its directory). Runs left "running"
  // by a daemon that died are marked "interrupted" when `writer` is true. Errors: kIo,
  // kCorruption (not a history database).
  static Result<std::unique_ptr<History>> Open(const std::string& path, bool writer = true);
  ~History();
  History(const History&) = delete;
  History& operator=(const History&) = delete;

  const std::string& path() const { return path_; }

  // A run begins; returns its id.
  Result<int64_t> Begin(const std::string& job, plan::UnixSeconds scheduled, double started,
                        int attempt);
  // A run ended with `outcome` at `ended`.
  Status Finish(int64_t id, const JobRunOutcome& outcome, double ended);

  // The last slot taken per job (persisted so that after downtime a missed slot runs once).
  Status SetLastSlot(const std::string& job, plan::UnixSeconds slot);
  Result<std::map<std::string, plan::UnixSeconds>> LastSlots();

  // Runs newest first: of `job` (every job when empty), at most `limit`.
  Result<std::vector<RunRecord>> Recent(const std::string& job, size_t limit);
  // The newest runs that did not end ok, newest first.
  Result<std::vector<RunRecord>> RecentFailures(size_t limit);
  Result<JobStats> Stats(const std::string& job);
  // The stderr log of one run.
  Result<std::string> Log(int64_t id);

 private:
  History() = default;
  Status Exec(const std::string& sql);
  Result<std::vector<RunRecord>> Query(const std::string& where, const std::string& tail,
                                       const std::vector<std::string>& params);

  std::string path_ = {};
  std::mutex mu_;
  sqlite3* db_ = nullptr;  // guarded by mu_
};

// Where the history is kept: the plan's daemon.history, else beside the audit log
// (lifeboat-history.db), else $XDG_STATE_HOME/lifeboat/history.db (~/.local/state/...).
std::string DefaultHistoryPath(const plan::Plan& plan);

}  // namespace lb::ops
