// The state of a plan: per objective the RPO exposure now (now minus the newest point its
// data can be restored to) against the objective, per job its last and next run, per WAL
// archive its lag, and the last failures. Computed from the recovery points of the
// repositories and the job history; shown by `lifeboat status`, /status and /metrics.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "ops/history.h"
#include "ops/recovery_points.h"
#include "plan/plan.h"

namespace lb::ops {

// Exposure above this share of the objective is a warning.
inline constexpr double kWarningShare = 0.8;

enum class ObjectiveState { kOk, kWarning, kViolated, kNotMeasured };
std::string_view ObjectiveStateName(ObjectiveState s);  // "OK", "WARNING", "VIOLATED", ...

// The newest point a plan source can be restored to, and what it is.
struct SourcePoint {
  std::string source = {};
  std::optional<double> point = {};  // unix seconds; nullopt: nothing to restore
  std::string what = {};             // "WAL 0000...0A archived in 'eu-west'", "snapshot ..."
  std::optional<double> snapshot_time = {};  // newest snapshot of the source
  std::optional<double> wal_time = {};       // newest WAL segment archived (postgres)
};

struct ObjectiveStatus {
  std::string name = {};
  std::string description = {};
  std::vector<std::string> sources = {};
  std::optional<int64_t> rpo = {};  // seconds
  std::optional<int64_t> rto = {};
  std::optional<double> exposure = {};  // seconds, of the worst source; nullopt: unbounded
  std::string worst_source = {};
  ObjectiveState state = ObjectiveState::kNotMeasured;
};

struct WalStatus {
  std::string source = {};      // plan source
  std::string wal_source = {};  // its name in the repositories
  std::optional<double> archived_at = {};
  std::optional<double> lag = {};  // now - archived_at
  std::string newest = {};
  std::string repository = {};
};

// What the caller knows of a job beyond the history (the daemon's scheduler, or the
// schedule alone for `status`).
struct JobLive {
  std::optional<plan::UnixSeconds> next_run = {};
  bool running = false;
};

struct JobStatus {
  std::string name = {};
  std::string kind = {};
  std::string source = {};
  std::string schedule = {};
  JobStats stats = {};
  JobLive live = {};
};

struct StatusReport {
  double now = 0;
  std::string plan_file = {};
  std::vector<ObjectiveStatus> objectives = {};
  std::vector<SourcePoint> sources = {};
  std::vector<WalStatus> wal = {};
  std::vector<JobStatus> jobs = {};
  std::vector<RunRecord> failures = {};          // newest first
  std::vector<std::string> errors = {};          // repositories that could not be read, ...
  ObjectiveState overall = ObjectiveState::kOk;  // the worst objective state
};

// Whether the snapshot point `s` holds data of plan source `src`: it carries the tag
// "source:NAME", or it is a base backup or dump of the cluster (kind pg-base/pg-dump and
// the cluster's wal_source), or command output recorded under the source's name.
bool SnapshotOfSource(const SnapshotPoint& s, const plan::SourcePlan& src);

// Pure: computes the report at `now` (unix seconds).
StatusReport ComputeStatus(const plan::Plan& plan, const std::vector<RecoveryPoints>& repos,
                           const std::map<std::string, JobStats>& stats,
                           const std::map<std::string, JobLive>& live,
                           std::vector<RunRecord> failures, std::vector<std::string> errors,
                           double now);

nlohmann::json StatusToJson(const StatusReport& r);
std::string StatusToText(const StatusReport& r);

// Monitoring exit codes of `lifeboat status`: 0 every objective met, 1 a warning (exposure
// above 80% of an objective), 2 an objective violated.
int StatusExitCode(const StatusReport& r);

}  // namespace lb::ops
