// The one place a finished job run is recorded: the job history now, the audit trail
// later (the audit log is built on its own branch; its append goes here, so every run the
// daemon makes is audited without touching the scheduler).
#pragma once

#include <string>

#include "ops/history.h"
#include "ops/job_runner.h"

namespace lb::ops {

struct JobRunRecord {
  int64_t history_id = 0;  // the row History::Begin made
  std::string job = {};
  std::string kind = {};  // plan job kind ("full", "files", ...)
  plan::UnixSeconds scheduled = 0;
  int attempt = 1;
  double started = 0;  // unix seconds
  double ended = 0;
  JobRunOutcome outcome = {};
};

// Records the end of a run in `history` and (hook) appends it to the audit trail.
// Errors: those of the history database; the run itself is over either way.
Status RecordJobRun(History& history, const JobRunRecord& record);

}  // namespace lb::ops
