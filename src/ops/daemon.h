// `lifeboat daemon`: runs a plan. Jobs run on their schedules as child processes
// (ops/job_runner.h) under the rules of ops/scheduler.h, every run is recorded
// (ops/job_record.h), the repositories' recovery points are observed periodically, and
// /status, /metrics, /history and the dashboard are served over HTTP.
// SIGTERM/SIGINT: stop scheduling, wait up to stop_grace for running jobs, stop them,
// exit 0. SIGHUP: reload the plan when it is valid, else keep the old one and log why.
#pragma once

#include <cstdint>
#include <string>

namespace lb::ops {

struct DaemonOptions {
  std::string plan_path;
  std::string listen;             // overrides daemon.listen; default 127.0.0.1:9187
  std::string history;            // overrides daemon.history
  int64_t observe_interval = 60;  // seconds between reads of the repositories
  std::string program;            // the lifeboat binary; empty: SelfExe()
};

// Runs until SIGTERM or SIGINT. Returns the exit code: 0 after a clean stop, 2 for a plan
// with errors or a refused configuration (public address without token_file), 5 when the
// plan file does not exist, 10/11 when the history or the listen address cannot be opened.
// Logs to stderr.
int RunDaemon(const DaemonOptions& opts);

}  // namespace lb::ops
