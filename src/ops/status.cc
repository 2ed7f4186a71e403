#include "ops/status.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "ops/job_steps.h"

namespace lb::ops {

using nlohmann::json;

std::string_view ObjectiveStateName(ObjectiveState s) {
  switch (s) {
    case ObjectiveState::kOk:
      return "OK";
    case ObjectiveState::kWarning:
      return "WARNING";
    case ObjectiveState::kViolated:
      return "VIOLATED";
    case ObjectiveState::kNotMeasured:
      return "NOT_MEASURED";
  }
  return "OK";
}

namespace {

std::string WalSourceOf(const plan::SourcePlan& s) {
  return s.wal_source.empty() ? s.name : s.wal_source;
}

int Rank(ObjectiveState s) {
  switch (s) {
    case ObjectiveState::kViolated:
      return 3;
    case ObjectiveState::kWarning:
      return 2;
    case ObjectiveState::kOk:
      return 1;
    case ObjectiveState::kNotMeasured:
      return 0;
  }
  return 0;
}

std::string Time(double t) { return plan::FormatUtc(plan::UnixSeconds(std::floor(t))); }

std::string Elapsed(double s) {
  if (s < 0) s = 0;
  int64_t n = int64_t(std::llround(s));
  if (n == 0) return "0s";
  return plan::FormatElapsed(n);
}

json RunJson(const RunRecord& r) {
  json j = {{"id", r.id},
            {"job", r.job},
            {"scheduled", plan::FormatUtc(r.scheduled)},
            {"started", Time(r.started)},
            {"started_unix", r.started},
            {"result", RunResultName(r.result)},
            {"exit_code", r.exit_code},
            {"bytes", r.bytes},
            {"snapshot", r.snapshot},
            {"error", r.error},
            {"attempt", r.attempt}};
  if (r.ended > 0) {
    j["ended"] = Time(r.ended);
    j["duration_seconds"] = r.ended - r.started;
  }
  return j;
}

}  // namespace

bool SnapshotOfSource(const SnapshotPoint& s, const plan::SourcePlan& src) {
  if (std::find(s.tags.begin(), s.tags.end(), SourceTag(src.name)) != s.tags.end()) return true;
  if (src.kind == plan::SourceKind::kPostgres && (s.kind == "pg-base" || s.kind == "pg-dump"))
    return s.source == WalSourceOf(src);
  if (src.kind == plan::SourceKind::kCommand && s.kind == "command") return s.source == src.name;
  return false;
}

StatusReport ComputeStatus(const plan::Plan& plan, const std::vector<RecoveryPoints>& repos,
                           const std::map<std::string, JobStats>& stats,
                           const std::map<std::string, JobLive>& live,
                           std::vector<RunRecord> failures, std::vector<std::string> errors,
                           double now) {
  StatusReport r;
  r.now = now;
  r.plan_file = plan.file;
  r.failures = std::move(failures);
  r.errors = std::move(errors);
  std::map<std::string, SourcePoint> points;
  for (const auto& src : plan.sources) {
    SourcePoint p;
    p.source = src.name;
    std::string snap_what, wal_what;
    for (const auto& rp : repos) {
      for (const auto& s : rp.snapshots) {
        if (!SnapshotOfSource(s, src)) continue;
        if (!p.snapshot_time || s.time > *p.snapshot_time) {
          p.snapshot_time = s.time;
          snap_what =
              fmt::format("{} snapshot {} in '{}'", s.kind, s.id.substr(0, 8), rp.repository);
        }
      }
      if (src.kind != plan::SourceKind::kPostgres) continue;
      for (const auto& w : rp.wal) {
        if (w.source != WalSourceOf(src) || w.files == 0) continue;
        if (!p.wal_time || w.archived_at > *p.wal_time) {
          p.wal_time = w.archived_at;
          wal_what = fmt::format("WAL up to {} in '{}'", w.newest, rp.repository);
        }
        WalStatus* ws = nullptr;
        for (auto& e : r.wal)
          if (e.source == src.name) ws = &e;
        if (ws == nullptr) {
          r.wal.push_back({.source = src.name, .wal_source = WalSourceOf(src)});
          ws = &r.wal.back();
        }
        if (!ws->archived_at || w.archived_at > *ws->archived_at) {
          ws->archived_at = w.archived_at;
          ws->lag = std::max(0.0, now - w.archived_at);
          ws->newest = w.newest;
          ws->repository = rp.repository;
        }
      }
    }
    if (p.wal_time && (!p.snapshot_time || *p.wal_time >= *p.snapshot_time)) {
      p.point = p.wal_time;
      p.what = wal_what;
    } else if (p.snapshot_time) {
      p.point = p.snapshot_time;
      p.what = snap_what;
    } else {
      p.what = "no backup found";
    }
    points[src.name] = p;
    r.sources.push_back(std::move(p));
  }

  for (const auto& o : plan.objectives) {
    ObjectiveStatus s;
    s.name = o.name;
    s.description = o.description;
    s.sources = o.sources;
    s.rpo = o.rpo;
    s.rto = o.rto;
    if (o.rpo) {
      bool unbounded = false;
      for (const auto& name : o.sources) {
        auto it = points.find(name);
        if (it == points.end() || !it->second.point) {
          unbounded = true;
          s.worst_source = name;
          break;
        }
        double e = std::max(0.0, now - *it->second.point);
        if (!s.exposure || e > *s.exposure) {
          s.exposure = e;
          s.worst_source = name;
        }
      }
      if (unbounded) {
        s.exposure.reset();
        s.state = ObjectiveState::kViolated;
      } else if (s.exposure && *s.exposure > double(*o.rpo)) {
        s.state = ObjectiveState::kViolated;
      } else if (s.exposure && *s.exposure > kWarningShare * double(*o.rpo)) {
        s.state = ObjectiveState::kWarning;
      } else {
        s.state = ObjectiveState::kOk;
      }
    }
    if (Rank(s.state) > Rank(r.overall)) r.overall = s.state;
    r.objectives.push_back(std::move(s));
  }

  for (const auto& j : plan.jobs) {
    JobStatus js;
    js.name = j.name;
    js.kind = std::string(plan::JobKindName(j.kind));
    js.source = j.source;
    js.schedule = j.schedule_text;
    if (auto it = stats.find(j.name); it != stats.end()) js.stats = it->second;
    if (auto it = live.find(j.name); it != live.end()) js.live = it->second;
    r.jobs.push_back(std::move(js));
  }
  return r;
}

int StatusExitCode(const StatusReport& r) {
  switch (r.overall) {
    case ObjectiveState::kViolated:
      return 2;
    case ObjectiveState::kWarning:
      return 1;
    default:
      return 0;
  }
}

json StatusToJson(const StatusReport& r) {
  json objectives = json::array(), sources = json::array(), wal = json::array(),
       jobs = json::array(), failures = json::array();
  for (const auto& o : r.objectives) {
    json j = {{"name", o.name},
              {"description", o.description},
              {"sources", o.sources},
              {"state", ObjectiveStateName(o.state)},
              {"worst_source", o.worst_source}};
    j["rpo_seconds"] = o.rpo ? json(*o.rpo) : json(nullptr);
    j["rto_seconds"] = o.rto ? json(*o.rto) : json(nullptr);
    j["exposure_seconds"] = o.exposure ? json(*o.exposure) : json(nullptr);
    objectives.push_back(std::move(j));
  }
  for (const auto& s : r.sources) {
    json j = {{"name", s.source}, {"what", s.what}};
    j["recovery_point"] = s.point ? json(Time(*s.point)) : json(nullptr);
    j["recovery_point_unix"] = s.point ? json(*s.point) : json(nullptr);
    j["snapshot_time_unix"] = s.snapshot_time ? json(*s.snapshot_time) : json(nullptr);
    j["wal_time_unix"] = s.wal_time ? json(*s.wal_time) : json(nullptr);
    sources.push_back(std::move(j));
  }
  for (const auto& w : r.wal) {
    json j = {{"source", w.source},
              {"wal_source", w.wal_source},
              {"newest", w.newest},
              {"repository", w.repository}};
    j["archived_at"] = w.archived_at ? json(Time(*w.archived_at)) : json(nullptr);
    j["lag_seconds"] = w.lag ? json(*w.lag) : json(nullptr);
    wal.push_back(std::move(j));
  }
  for (const auto& js : r.jobs) {
    json j = {{"name", js.name},           {"kind", js.kind},       {"source", js.source},
              {"schedule", js.schedule},   {"runs", js.stats.runs}, {"failures", js.stats.failures},
              {"running", js.live.running}};
    j["last_run"] = js.stats.last ? RunJson(*js.stats.last) : json(nullptr);
    j["last_success"] = js.stats.last_success ? RunJson(*js.stats.last_success) : json(nullptr);
    j["next_run"] = js.live.next_run ? json(plan::FormatUtc(*js.live.next_run)) : json(nullptr);
    jobs.push_back(std::move(j));
  }
  for (const auto& f : r.failures) failures.push_back(RunJson(f));
  return {
      {"now", Time(r.now)},
      {"now_unix", r.now},
      {"plan", r.plan_file},
      {"state", ObjectiveStateName(r.overall == ObjectiveState::kNotMeasured ? ObjectiveState::kOk
                                                                             : r.overall)},
      {"exit_code", StatusExitCode(r)},
      {"objectives", objectives},
      {"sources", sources},
      {"wal", wal},
      {"jobs", jobs},
      {"failures", failures},
      {"errors", r.errors}};
}

std::string StatusToText(const StatusReport& r) {
  std::string out = fmt::format("status of {} at {}\n\n", r.plan_file, Time(r.now));
  out += fmt::format("{:<24} {:>8} {:>10}  {:<12} {}\n", "OBJECTIVE", "RPO", "EXPOSURE", "STATE",
                     "NEWEST RECOVERY POINT");
  for (const auto& o : r.objectives) {
    std::string point;
    for (const auto& s : r.sources)
      if (s.source == o.worst_source)
        point = fmt::format("{}: {}{}", s.source, s.what,
                            s.point ? " at " + Time(*s.point) : std::string());
    out += fmt::format("{:<24} {:>8} {:>10}  {:<12} {}\n", o.name,
                       o.rpo ? plan::FormatElapsed(*o.rpo) : "-",
                       o.exposure ? Elapsed(*o.exposure) : (o.rpo ? "unbounded" : "-"),
                       ObjectiveStateName(o.state), o.rpo ? point : "(RTO only: see drills)");
  }
  if (!r.wal.empty()) {
    out += fmt::format("\n{:<24} {:<26} {:>10}  {}\n", "WAL ARCHIVE", "NEWEST SEGMENT", "LAG",
                       "REPOSITORY");
    for (const auto& w : r.wal)
      out += fmt::format("{:<24} {:<26} {:>10}  {}\n", w.source, w.newest,
                         w.lag ? Elapsed(*w.lag) : "-", w.repository);
  }
  out += fmt::format("\n{:<20} {:<10} {:<20} {:<11} {:>9} {:<20}\n", "JOB", "KIND",
                     "LAST RUN (UTC)", "RESULT", "DURATION", "NEXT RUN (UTC)");
  for (const auto& j : r.jobs) {
    std::string last = "-", result = j.live.running ? "running" : "-", dur = "-";
    if (j.stats.last) {
      last = Time(j.stats.last->started).substr(0, 19);
      if (!j.live.running) result = std::string(RunResultName(j.stats.last->result));
      dur = fmt::format("{:.1f}s", j.stats.last->ended - j.stats.last->started);
    }
    out +=
        fmt::format("{:<20} {:<10} {:<20} {:<11} {:>9} {:<20}\n", j.name, j.kind, last, result, dur,
                    j.live.next_run ? plan::FormatUtc(*j.live.next_run).substr(0, 19) : "-");
  }
  if (!r.failures.empty()) {
    out += "\nRECENT FAILURES\n";
    for (const auto& f : r.failures)
      out += fmt::format("{}  {:<20} attempt {}  {}: {}\n", Time(f.started).substr(0, 19), f.job,
                         f.attempt, RunResultName(f.result), f.error);
  }
  for (const auto& e : r.errors) out += "warning: " + e + "\n";
  out += fmt::format("\noverall: {}\n", ObjectiveStateName(r.overall == ObjectiveState::kNotMeasured
                                                               ? ObjectiveState::kOk
                                                               : r.overall));
  return out;
}

}  // namespace lb::ops
