// One run of a plan job: its steps (ops/job_steps.h) run one after the other as child
// processes of this program, stopping at the first that fails; what the run did, for the
// history and the audit trail.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "ops/job_steps.h"
#include "plan/plan.h"

namespace lb::ops {

enum class RunResult { kRunning, kOk, kFailed, kTimeout, kStopped, kInterrupted };
std::string_view RunResultName(RunResult r);  // "running", "ok", "failed", ...
RunResult RunResultFromName(std::string_view name);

struct JobRunOutcome {
  RunResult result = RunResult::kFailed;
  int exit_code = -1;         // of the step that failed (0 when all passed)
  uint64_t bytes = 0;         // bytes the backup step read (snapshot summary)
  std::string snapshot = {};  // id of the snapshot the backup step made
  std::string error = {};     // first line of the failing step's error
  std::string log = {};       // what the steps wrote to stderr (the last 64 KiB), with the
                              // command of each step; never secrets (those are in files)
  double seconds = 0;
};

struct JobRunOptions {
  std::string program = {};                 // the lifeboat binary (SelfExe())
  int64_t timeout_seconds = 0;              // for the whole run; 0: none
  const std::atomic<bool>* stop = nullptr;  // set: the running step is stopped
};

// Runs every step of `job`. Never fails: a job that cannot even be described (a missing
// conninfo file) is a failed outcome with that error.
JobRunOutcome RunJob(const plan::Plan& plan, const plan::JobPlan& job, const JobRunOptions& opts);

}  // namespace lb::ops
