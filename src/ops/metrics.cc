#include "ops/metrics.h"

#include <fmt/format.h>

#include <cmath>
#include <functional>
#include <optional>

namespace lb::ops {

std::string EscapeLabelValue(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

namespace {

class Writer {
 public:
  // One metric family: HELP, TYPE, then its samples.
  void Family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
    name_ = name;
  }
  void Sample(std::string_view label, std::string_view value, double v) {
    if (label.empty())
      out_ += fmt::format("{} {}\n", name_, Number(v));
    else
      out_ += fmt::format("{}{{{}=\"{}\"}} {}\n", name_, label, EscapeLabelValue(value), Number(v));
  }
  std::string Take() { return std::move(out_); }

 private:
  static std::string Number(double v) {
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    if (v == double(int64_t(v)) && v < 9e15 && v > -9e15) return fmt::format("{}", int64_t(v));
    return fmt::format("{:.3f}", v);
  }
  std::string out_;
  std::string name_;
};

}  // namespace

std::string RenderMetrics(const StatusReport& r) {
  Writer w;
  w.Family("lifeboat_job_last_success_timestamp_seconds", "gauge",
           "Unix time the job's last successful run ended.");
  for (const auto& j : r.jobs)
    if (j.stats.last_success) w.Sample("job", j.name, j.stats.last_success->ended);
  w.Family("lifeboat_job_last_run_timestamp_seconds", "gauge",
           "Unix time the job's last finished run ended.");
  for (const auto& j : r.jobs)
    if (j.stats.last) w.Sample("job", j.name, j.stats.last->ended);
  w.Family("lifeboat_job_last_success", "gauge", "1 when the job's last finished run succeeded.");
  for (const auto& j : r.jobs)
    if (j.stats.last) w.Sample("job", j.name, j.stats.last->result == RunResult::kOk ? 1 : 0);
  w.Family("lifeboat_job_last_duration_seconds", "gauge",
           "Duration of the job's last finished run.");
  for (const auto& j : r.jobs)
    if (j.stats.last) w.Sample("job", j.name, j.stats.last->ended - j.stats.last->started);
  w.Family("lifeboat_job_last_bytes", "gauge",
           "Bytes the job's last successful run backed up (0 for jobs that make no snapshot).");
  for (const auto& j : r.jobs)
    if (j.stats.last_success) w.Sample("job", j.name, double(j.stats.last_success->bytes));
  w.Family("lifeboat_job_runs_total", "counter", "Runs of the job (retries included).");
  for (const auto& j : r.jobs) w.Sample("job", j.name, double(j.stats.runs));
  w.Family("lifeboat_job_failures_total", "counter",
           "Runs of the job that did not succeed (failed, timed out, stopped, interrupted).");
  for (const auto& j : r.jobs) w.Sample("job", j.name, double(j.stats.failures));
  w.Family("lifeboat_job_running", "gauge", "1 while the job runs.");
  for (const auto& j : r.jobs) w.Sample("job", j.name, j.live.running ? 1 : 0);
  w.Family("lifeboat_job_next_run_timestamp_seconds", "gauge", "Unix time of the job's next run.");
  for (const auto& j : r.jobs)
    if (j.live.next_run) w.Sample("job", j.name, double(*j.live.next_run));

  w.Family("lifeboat_objective_rpo_seconds", "gauge", "The recovery point objective.");
  for (const auto& o : r.objectives)
    if (o.rpo) w.Sample("objective", o.name, double(*o.rpo));
  w.Family("lifeboat_objective_rpo_exposure_seconds", "gauge",
           "Data the objective's sources would lose now: now minus their newest recovery point "
           "(+Inf with no backup at all).");
  for (const auto& o : r.objectives)
    if (o.rpo) w.Sample("objective", o.name, o.exposure ? *o.exposure : HUGE_VAL);
  w.Family("lifeboat_objective_rpo_violated", "gauge",
           "1 when the exposure exceeds the objective.");
  for (const auto& o : r.objectives)
    if (o.rpo) w.Sample("objective", o.name, o.state == ObjectiveState::kViolated ? 1 : 0);
  w.Family("lifeboat_objective_rto_seconds", "gauge", "The recovery time objective.");
  for (const auto& o : r.objectives)
    if (o.rto) w.Sample("objective", o.name, double(*o.rto));

  w.Family("lifeboat_wal_archive_lag_seconds", "gauge",
           "Seconds since the newest WAL segment of the cluster reached a repository.");
  for (const auto& a : r.wal)
    if (a.lag) w.Sample("source", a.source, *a.lag);
  w.Family("lifeboat_source_recovery_point_timestamp_seconds", "gauge",
           "Unix time of the newest point the source can be restored to.");
  for (const auto& s : r.sources)
    if (s.point) w.Sample("source", s.source, *s.point);
  w.Family("lifeboat_status", "gauge",
           "Monitoring state of the plan: 0 every objective met, 1 warning, 2 violated.");
  w.Sample("", "", StatusExitCode(r));
  w.Family("lifeboat_repository_errors", "gauge",
           "Repositories (or other inputs) that could not be read for this status.");
  w.Sample("", "", double(r.errors.size()));
  return w.Take();
}

}  // namespace lb::ops
