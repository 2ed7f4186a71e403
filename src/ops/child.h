// Runs one lifeboat operation as a child process for the daemon: argv without a shell, a
// chosen environment, its own process group (so a timeout or a stop reaches pg_dump and
// every other grandchild), standard output captured (the --json result) and the tail of
// standard error kept for the job log. docs/decisions.md says why jobs are processes.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "util/status.h"

namespace lb::ops {

struct ChildRequest {
  std::vector<std::string> argv;  // argv[0] is a path or looked up in PATH
  // Variables set (or replaced) in the child's environment; the rest is inherited, less
  // those named in `unset` and every variable whose name starts with one of `unset_prefixes`.
  std::map<std::string, std::string> env = {};
  std::vector<std::string> unset = {};
  std::vector<std::string> unset_prefixes = {};
  int64_t timeout_seconds = 0;     // 0: none; then SIGTERM to the group, SIGKILL 10 s later
  size_t stdout_limit = 4u << 20;  // bytes of stdout kept (the rest is read and dropped)
  size_t stderr_keep = 64u << 10;  // last bytes of stderr kept
  // Set by another thread to stop the child early (SIGTERM to its group, SIGKILL 10 s
  // later); checked about every 100 ms. May be null.
  const std::atomic<bool>* stop = nullptr;
};

struct ChildOutcome {
  int exit_code = -1;      // the exit status, or -1 when a signal ended the child
  int signal = 0;          // the signal that ended it, else 0
  bool timed_out = false;  // ended because of timeout_seconds
  bool stopped = false;    // ended because `stop` was set
  std::string out;         // standard output (up to stdout_limit)
  std::string err;         // the last stderr_keep bytes of standard error
  double seconds = 0;      // wall time
  bool ok() const { return exit_code == 0 && !timed_out && !stopped; }
};

// Starts the child, waits for it to end and returns what it did. The call blocks; it is
// safe to run several at once from different threads. Errors: kFailedPrecondition when the
// program cannot be started (the outcome of a program that started and failed is not an
// error); kIo when pipes or fork fail.
Result<ChildOutcome> RunChild(const ChildRequest& req);

// This program's own path (/proc/self/exe), for running lifeboat commands as children.
Result<std::string> SelfExe();

// The first line of `text` that is not blank, trimmed ("" when none).
std::string FirstLine(const std::string& text);

}  // namespace lb::ops
