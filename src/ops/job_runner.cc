#include "ops/job_runner.h"

#include <fmt/format.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "ops/child.h"

namespace lb::ops {

std::string_view RunResultName(RunResult r) {
  switch (r) {
    case RunResult::kRunning:
      return "running";
    case RunResult::kOk:
      return "ok";
    case RunResult::kFailed:
      return "failed";
    case RunResult::kTimeout:
      return "timeout";
    case RunResult::kStopped:
      return "stopped";
    case RunResult::kInterrupted:
      return "interrupted";
  }
  return "failed";
}

RunResult RunResultFromName(std::string_view name) {
  for (RunResult r : {RunResult::kRunning, RunResult::kOk, RunResult::kFailed, RunResult::kTimeout,
                      RunResult::kStopped, RunResult::kInterrupted})
    if (RunResultName(r) == name) return r;
  return RunResult::kFailed;
}

namespace {

// The first "error: ..." line lifeboat printed, else the first line.
std::string ErrorLine(const std::string& err) {
  size_t at = err.find("error: ");
  if (at != std::string::npos && (at == 0 || err[at - 1] == '\n'))
    return FirstLine(err.substr(at + 7));
  return FirstLine(err);
}

}  // namespace

JobRunOutcome RunJob(const plan::Plan& plan, const plan::JobPlan& job, const JobRunOptions& opts) {
  JobRunOutcome out;
  auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  auto steps = JobSteps(plan, job);
  if (!steps.ok()) {
    out.error = steps.status().message();
    out.log = steps.status().ToString() + "\n";
    return out;
  }
  out.result = RunResult::kOk;
  out.exit_code = 0;
  for (const auto& s : *steps) {
    ChildRequest req;
    req.argv = {opts.program};
    req.argv.insert(req.argv.end(), s.args.begin(), s.args.end());
    req.env = s.env;
    req.unset = kJobEnvUnset;
    req.unset_prefixes = kJobEnvPrefixesUnset;
    req.stop = opts.stop;
    if (opts.timeout_seconds > 0) {
      int64_t left = opts.timeout_seconds - int64_t(elapsed());
      req.timeout_seconds = left > 0 ? left : 1;
    }
    out.log += "$ " + s.Display() + "\n";
    auto r = RunChild(req);
    if (!r.ok()) {
      out.result = RunResult::kFailed;
      out.exit_code = -1;
      out.error = r.status().message();
      out.log += r.status().ToString() + "\n";
      break;
    }
    out.log += r->err;
    if (out.log.size() > (64u << 10)) out.log.erase(0, out.log.size() - (64u << 10));
    if (s.role == StepRole::kBackup && r->exit_code == 0) {
      // The snapshot's JSON: id, and the bytes read from the summary.
      auto j = nlohmann::json::parse(r->out, nullptr, false);
      if (j.is_object()) {
        out.snapshot = j.value("id", out.snapshot);
        if (j.contains("summary") && j["summary"].is_object()) {
          const auto& sm = j["summary"];
          for (const char* k : {"bytes_total", "bytes_read", "bytes"})
            if (sm.contains(k) && sm[k].is_number_unsigned()) {
              out.bytes += sm[k].get<uint64_t>();
              break;
            }
        }
      }
    }
    if (r->ok()) continue;
    out.exit_code = r->exit_code;
    if (r->timed_out) {
      out.result = RunResult::kTimeout;
      out.error = fmt::format("timed out after {} s: {}", opts.timeout_seconds, s.Display());
    } else if (r->stopped) {
      out.result = RunResult::kStopped;
      out.error = "stopped by the daemon's shutdown";
    } else {
      out.result = RunResult::kFailed;
      std::string line = ErrorLine(r->err);
      out.error =
          r->signal != 0
              ? fmt::format("'{}' was killed by signal {}", s.Display(), r->signal)
              : (line.empty() ? fmt::format("'{}' exited with status {}", s.Display(), r->exit_code)
                              : line);
    }
    break;
  }
  out.seconds = elapsed();
  return out;
}

}  // namespace lb::ops
