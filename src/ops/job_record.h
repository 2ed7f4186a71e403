// The one place a finished job run is recorded in the job history. (The audit trail gets
// each step from the step's own lifeboat process: see job_record.cc.)
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

// Records the end of a run in `history`.
// Errors: those of the history database; the run itself is over either way.
Status RecordJobRun(History& history, const JobRunRecord& record);

}  // namespace lb::ops
