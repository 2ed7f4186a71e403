// plan check / plan next: validate a plan file and show when its jobs and drills run.
#include <cstdio>
#include <ctime>
#include <string>

#include "cli/common.h"
#include "plan/plan.h"
#include "repo/names.h"

namespace lb::cli {

using nlohmann::json;

namespace {

struct PlanArgs {
  std::string file;
  std::string now;  // RFC 3339 UTC; empty: the current time
  size_t count = 5;
};

Result<plan::UnixSeconds> Now(const std::string& text) {
  if (text.empty()) return plan::UnixSeconds(std::time(nullptr));
  int64_t ns = 0;
  if (!repo::ParseRfc3339(text, ns))
    return Status(Code::kInvalidArgument, fmt::format("--now '{}' is not a UTC time", text))
        .WithHint("write it as 2026-03-29T01:00:00Z");
  return ns / 1000000000;
}

json ProblemJson(const plan::Problem& p) {
  json j = {{"file", p.where.file},
            {"line", p.where.line},
            {"column", p.where.column},
            {"severity", p.severity == plan::Severity::kError ? "error" : "warning"},
            {"message", p.message}};
  if (!p.hint.empty()) j["hint"] = p.hint;
  return j;
}

std::string NextRunText(const plan::CronSchedule& s, plan::UnixSeconds now) {
  auto t = s.NextRun(now);
  return t ? plan::FormatUtc(*t) : "never";
}

json Summary(const plan::Plan& p, plan::UnixSeconds now) {
  json repos = json::array(), jobs = json::array(), drills = json::array();
  for (const auto& r : p.repositories)
    repos.push_back({{"name", r.name},
                     {"url", r.url},
                     {"role", plan::RepositoryRoleName(r.role)},
                     {"priority", r.priority}});
  for (const auto& j : p.jobs)
    jobs.push_back({{"name", j.name},
                    {"kind", plan::JobKindName(j.kind)},
                    {"source", j.source},
                    {"schedule", j.schedule_text},
                    {"timezone", j.schedule.zone().name()},
                    {"repositories", j.repositories},
                    {"next_run", NextRunText(j.schedule, now)}});
  for (const auto& d : p.drills)
    drills.push_back({{"name", d.name},
                      {"source", d.source},
                      {"schedule", d.schedule_text},
                      {"timezone", d.schedule.zone().name()},
                      {"next_run", NextRunText(d.schedule, now)}});
  json objectives = json::array();
  for (const auto& o : p.objectives) {
    json j = {{"name", o.name}, {"sources", o.sources}};
    if (o.rpo) j["rpo_seconds"] = *o.rpo;
    if (o.rto) j["rto_seconds"] = *o.rto;
    objectives.push_back(std::move(j));
  }
  json sources = json::array();
  for (const auto& s : p.sources)
    sources.push_back({{"name", s.name}, {"kind", plan::SourceKindName(s.kind)}});
  return {{"repositories", repos}, {"sources", sources},       {"jobs", jobs},
          {"drills", drills},      {"objectives", objectives}, {"now", plan::FormatUtc(now)}};
}

void PrintProblems(const plan::LoadedPlan& lp, std::FILE* out) {
  for (const auto& p : lp.problems) std::fprintf(out, "%s\n", p.ToString().c_str());
}

std::string Counted(size_t n, std::string_view word) {
  if (n == 1) return fmt::format("1 {}", word);
  if (word.ends_with("y")) return fmt::format("{} {}ies", n, word.substr(0, word.size() - 1));
  return fmt::format("{} {}s", n, word);
}

int RunCheck(const PlanArgs& a) {
  auto now = Now(a.now);
  if (!now.ok()) return Fail(now.status());
  auto lp = plan::LoadPlanFile(a.file, {.now = *now});
  if (!lp.ok()) return Fail(lp.status());
  int rc = lp->ok() ? 0 : ExitCodeFor(Code::kInvalidArgument);
  if (Globals().json) {
    json problems = json::array();
    for (const auto& p : lp->problems) problems.push_back(ProblemJson(p));
    json out = {{"file", a.file},
                {"ok", lp->ok()},
                {"errors", lp->ErrorCount()},
                {"warnings", lp->WarningCount()},
                {"problems", problems}};
    if (lp->ok()) out["summary"] = Summary(lp->plan, *now);
    PrintJson(out);
    return rc;
  }
  PrintProblems(*lp, stdout);
  if (!lp->ok()) {
    std::printf("%s: %s, %s\n", a.file.c_str(), Counted(lp->ErrorCount(), "error").c_str(),
                Counted(lp->WarningCount(), "warning").c_str());
    return rc;
  }
  const auto& p = lp->plan;
  std::printf("%s: ok (%s)\n", a.file.c_str(), Counted(lp->WarningCount(), "warning").c_str());
  std::printf("%s, %s, %s, %s, %s\n", Counted(p.repositories.size(), "repository").c_str(),
              Counted(p.sources.size(), "source").c_str(), Counted(p.jobs.size(), "job").c_str(),
              Counted(p.objectives.size(), "objective").c_str(),
              Counted(p.drills.size(), "drill").c_str());
  std::printf("\n%-16s  %-10s  %-16s  %-18s  %s\n", "JOB", "KIND", "SOURCE", "SCHEDULE",
              "NEXT RUN (UTC)");
  auto zone_suffix = [](const plan::CronSchedule& s) {
    return s.zone().IsUtc() ? std::string() : " " + s.zone().name();
  };
  for (const auto& j : p.jobs)
    std::printf("%-16s  %-10s  %-16s  %-18s  %s\n", j.name.c_str(),
                std::string(plan::JobKindName(j.kind)).c_str(),
                j.source.empty() ? "-" : j.source.c_str(),
                (j.schedule_text + zone_suffix(j.schedule)).c_str(),
                NextRunText(j.schedule, *now).c_str());
  if (!p.drills.empty()) {
    std::printf("\n%-16s  %-10s  %-16s  %-18s  %s\n", "DRILL", "", "SOURCE", "SCHEDULE",
                "NEXT RUN (UTC)");
    for (const auto& d : p.drills)
      std::printf("%-16s  %-10s  %-16s  %-18s  %s\n", d.name.c_str(), "", d.source.c_str(),
                  (d.schedule_text + zone_suffix(d.schedule)).c_str(),
                  NextRunText(d.schedule, *now).c_str());
  }
  return 0;
}

int RunNext(const PlanArgs& a) {
  auto now = Now(a.now);
  if (!now.ok()) return Fail(now.status());
  if (a.count < 1 || a.count > 10000)
    return Fail(Err(Code::kInvalidArgument, "--count {} is out of range 1-10000", a.count));
  auto lp = plan::LoadPlanFile(a.file, {.now = *now});
  if (!lp.ok()) return Fail(lp.status());
  if (!lp->ok()) {
    PrintProblems(*lp, stderr);
    return Fail(Status(Code::kInvalidArgument,
                       fmt::format("plan '{}' has {}", a.file,
                                   Counted(lp->ErrorCount(), "error")))
                    .WithHint(fmt::format("lifeboat plan check {}", a.file)));
  }
  auto runs = plan::NextRuns(lp->plan, *now, a.count);
  if (Globals().json) {
    json out = json::array();
    for (const auto& r : runs)
      out.push_back({{"time", plan::FormatUtc(r.time)},
                     {"kind", r.kind == plan::ScheduledRun::Kind::kJob ? "job" : "drill"},
                     {"name", r.name}});
    PrintJson(out);
    return 0;
  }
  std::printf("%-20s  %-5s  %s\n", "TIME (UTC)", "KIND", "NAME");
  for (const auto& r : runs)
    std::printf("%-20s  %-5s  %s\n", plan::FormatUtc(r.time).c_str(),
                r.kind == plan::ScheduledRun::Kind::kJob ? "job" : "drill", r.name.c_str());
  return 0;
}

}  // namespace

void AddPlanCommands(CLI::App& app, Runner& run) {
  static PlanArgs args;
  auto* p = app.add_subcommand("plan", "work with a plan file (docs/plan-reference.md)");
  p->require_subcommand(1);
  auto* check = p->add_subcommand(
      "check", "validate a plan file: print every problem as FILE:LINE:COLUMN (exit 2 if any "
               "error), else a summary with the next run of each job");
  check->add_option("FILE", args.file, "the plan (YAML)")->required();
  check->add_option("--now", args.now,
                    "take this UTC time (2026-03-29T01:00:00Z) as now for next runs and the "
                    "RPO checks");
  check->callback([&run] { run = [] { return RunCheck(args); }; });
  auto* next = p->add_subcommand("next", "list the next runs of every job and drill of a plan");
  next->add_option("FILE", args.file, "the plan (YAML)")->required();
  next->add_option("--count", args.count, "runs per job and drill (default 5)");
  next->add_option("--now", args.now, "list the runs after this UTC time instead of now");
  next->callback([&run] { run = [] { return RunNext(args); }; });
}

}  // namespace lb::cli
