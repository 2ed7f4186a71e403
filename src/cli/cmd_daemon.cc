// daemon, status, recovery-points: running a plan and watching it (src/ops/).
#include <cstdio>
#include <cstdlib>
#include <ctime>

#include "cli/common.h"
#include "ops/child.h"
#include "cli/audit_hook.h"
#include "ops/daemon.h"
#include "ops/history.h"
#include "ops/recovery_points.h"
#include "ops/status.h"
#include "plan/plan.h"

namespace lb::cli {

using nlohmann::json;

namespace {

// `status` answers in monitoring codes (0 ok, 1 warning, 2 violated); this one says the
// status could not be computed at all (the UNKNOWN of Nagios-style checks).
constexpr int kStatusUnknown = 3;
// A repository that does not answer within this counts as unreadable.
constexpr int64_t kObserveTimeout = 120;

std::string PlanPath(const std::string& given) {
  if (!given.empty()) return given;
  if (const char* p = std::getenv("LIFEBOAT_PLAN"); p && *p) return p;
  return "/etc/lifeboat/plan.yaml";
}

struct StatusArgs {
  std::string plan;
  std::string history;
};

int RunStatus(const StatusArgs& a) {
  std::string path = PlanPath(a.plan);
  auto lp = plan::LoadPlanFile(path);
  if (!lp.ok()) {
    Fail(lp.status());
    return kStatusUnknown;
  }
  if (!lp->ok()) {
    for (const auto& p : lp->problems)
      if (p.severity == plan::Severity::kError) std::fprintf(stderr, "%s\n", p.ToString().c_str());
    std::fprintf(stderr, "error: %s has %zu error(s)\n", path.c_str(), lp->ErrorCount());
    return kStatusUnknown;
  }
  const plan::Plan& p = lp->plan;
  auto self = ops::SelfExe();
  if (!self.ok()) {
    Fail(self.status());
    return kStatusUnknown;
  }
  ops::Observation obs = ops::ObserveRepositories(p, *self, kObserveTimeout);
  std::vector<std::string> errors = obs.errors;
  std::map<std::string, ops::JobStats> stats;
  std::vector<ops::RunRecord> failures;
  std::string history_path = a.history.empty() ? ops::DefaultHistoryPath(p) : a.history;
  auto h = ops::History::Open(history_path, false);
  if (h.ok()) {
    for (const auto& j : p.jobs)
      if (auto s = (*h)->Stats(j.name); s.ok()) stats[j.name] = *s;
    if (auto f = (*h)->RecentFailures(10); f.ok()) failures = *f;
  } else {
    errors.push_back(h.status().message());
  }
  double now = double(std::time(nullptr));
  std::map<std::string, ops::JobLive> live;
  for (const auto& j : p.jobs) {
    ops::JobLive l;
    l.next_run = j.schedule.NextRun(plan::UnixSeconds(now));
    l.running = stats.count(j.name) && stats[j.name].running.has_value();
    live[j.name] = l;
  }
  auto report = ops::ComputeStatus(p, obs.repositories, stats, live, std::move(failures),
                                   std::move(errors), now);
  if (Globals().json)
    PrintJson(ops::StatusToJson(report));
  else
    std::fputs(ops::StatusToText(report).c_str(), stdout);
  return ops::StatusExitCode(report);
}

int RunRecoveryPoints() {
  auto r = OpenRepo(LockMode::kNone, "recovery-points");
  if (!r.ok()) return Fail(r.status());
  auto points = ops::ReadRecoveryPoints(*r->repo);
  if (!points.ok()) return Fail(points.status());
  if (Globals().json) {
    PrintJson(points->ToJson());
    return 0;
  }
  std::printf("%-10s  %-16s  %-20s  %-20s  %s\n", "KIND", "SOURCE", "NEWEST (UTC)", "SNAPSHOT",
              "TAGS");
  for (const auto& s : points->snapshots) {
    std::string tags;
    for (const auto& t : s.tags) tags += (tags.empty() ? "" : ",") + t;
    std::printf("%-10s  %-16s  %-20s  %-20s  %s\n", s.kind.c_str(), s.source.c_str(),
                plan::FormatUtc(plan::UnixSeconds(s.time)).c_str(), s.id.substr(0, 8).c_str(),
                tags.c_str());
  }
  for (const auto& w : points->wal)
    std::printf("WAL of %s: %llu segments, newest %s, last archived %s\n", w.source.c_str(),
                (unsigned long long)w.files, w.newest.c_str(),
                plan::FormatUtc(plan::UnixSeconds(w.archived_at)).c_str());
  return 0;
}

}  // namespace

void AddDaemonCommands(CLI::App& app, Runner& run) {
  static ops::DaemonOptions d;
  auto* daemon = app.add_subcommand(
      "daemon", "run a plan: jobs on their schedules, history, status and metrics over HTTP");
  daemon->add_option("--plan", d.plan_path,
                     "the plan file (default: $LIFEBOAT_PLAN, /etc/lifeboat/plan.yaml)");
  daemon->add_option("--listen", d.listen,
                     "HTTP address (default: the plan's daemon.listen, else 127.0.0.1:9187)");
  daemon->add_option("--history", d.history, "job history database (default: see daemon.history)");
  daemon
      ->add_option("--observe-interval", d.observe_interval,
                   "seconds between reads of the repositories' recovery points (default 60)")
      ->check(CLI::Range(1, 86400));
  daemon->callback([&] {
    run = [] {
      d.plan_path = PlanPath(d.plan_path);
      // The plan's audit section decides where the daemon's records go, and the job steps
      // (child processes of lifeboat, each audited by main's hook) inherit it.
      if (auto lp = plan::LoadPlanFile(d.plan_path); lp.ok() && lp->plan.audit.present &&
                                                     !lp->plan.audit.log.empty())
        SetPlanAuditSettings({.log = lp->plan.audit.log, .key_file = "", .required = false,
                              .log_given = true});
      const AuditSettings audit = EffectiveAuditSettings();
      if (!audit.log.empty()) setenv("LIFEBOAT_AUDIT_LOG", audit.log.c_str(), 1);
      if (!audit.key_file.empty()) setenv("LIFEBOAT_AUDIT_KEY_FILE", audit.key_file.c_str(), 1);
      AuditEvent("daemon start");
      return ops::RunDaemon(d);  // its end is recorded as "daemon" by main's audit hook
    };
  });

  static StatusArgs sa;
  auto* status = app.add_subcommand(
      "status",
      "RPO exposure of every objective, last and next job runs, recent failures; "
      "exit 0 ok, 1 warning, 2 violated, 3 unknown");
  status->add_option("--plan", sa.plan,
                     "the plan file (default: $LIFEBOAT_PLAN, /etc/lifeboat/plan.yaml)");
  status->add_option("--history", sa.history, "job history database (default: see daemon.history)");
  status->callback([&] { run = [] { return RunStatus(sa); }; });

  auto* rp =
      app.add_subcommand("recovery-points",
                         "the newest snapshot of each kind, source and tags, and the newest WAL "
                         "of each cluster, of one repository (what status reads)");
  rp->callback([&] { run = [] { return RunRecoveryPoints(); }; });
}

}  // namespace lb::cli
