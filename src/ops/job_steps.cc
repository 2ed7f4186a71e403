#include "ops/job_steps.h"

#include <fmt/format.h>

#include <fstream>
#include <sstream>

namespace lb::ops {

namespace {

std::string Quote(const std::string& s) {
  if (!s.empty() && s.find_first_of(" \t'\"\\$`*?") == std::string::npos) return s;
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

Result<std::string> ReadConninfo(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Err(Code::kNotFound, "cannot read conninfo_file '{}'", path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

// "--keep-within 30d"-style options of a retention policy.
std::vector<std::string> RetentionArgs(const repo::RetentionPolicy& p) {
  std::vector<std::string> out;
  auto count = [&](const char* name, int n) {
    if (n == 0) return;
    out.push_back(name);
    out.push_back(std::to_string(n == repo::kKeepUnlimited ? -1 : n));
  };
  count("--keep-last", p.keep_last);
  count("--keep-hourly", p.keep_hourly);
  count("--keep-daily", p.keep_daily);
  count("--keep-weekly", p.keep_weekly);
  count("--keep-monthly", p.keep_monthly);
  count("--keep-yearly", p.keep_yearly);
  if (!p.keep_within.IsZero()) {
    out.push_back("--keep-within");
    out.push_back(p.keep_within.ToString());
  }
  for (const auto& t : p.keep_tags) {
    out.push_back("--keep-tag");
    out.push_back(t);
  }
  return out;
}

void Append(std::vector<std::string>& to, std::initializer_list<std::string> more) {
  to.insert(to.end(), more.begin(), more.end());
}

std::string WalSourceOf(const plan::SourcePlan& s) {
  return s.wal_source.empty() ? s.name : s.wal_source;
}

}  // namespace

std::string JobStep::Display() const {
  std::string out = "lifeboat";
  for (const auto& a : args) out += " " + Quote(a);
  return out;
}

std::string JobTag(const std::string& job) { return "job:" + job; }
std::string SourceTag(const std::string& source) { return "source:" + source; }

std::vector<const plan::RepositoryPlan*> JobRepositories(const plan::Plan& plan,
                                                         const plan::JobPlan& job) {
  std::vector<const plan::RepositoryPlan*> out;
  if (job.repositories.empty()) {
    for (const auto& r : plan.repositories) out.push_back(&r);
    return out;
  }
  for (const auto& name : job.repositories)
    if (const auto* r = plan.FindRepository(name)) out.push_back(r);
  return out;
}

RepositoryAccess AccessFor(const plan::Plan& plan, const plan::RepositoryPlan& repo) {
  RepositoryAccess a;
  a.args = {"--repo", repo.url};
  plan::KeySource k = plan.KeyFor(repo);
  if (!k.key_file.empty()) {
    Append(a.args, {"--key-file", k.key_file});
  } else if (!k.password_file.empty()) {
    Append(a.args, {"--password-file", k.password_file});
  } else if (!k.password_env.empty()) {
    // The daemon's own variable, passed on under the name lifeboat reads.
    if (const char* v = std::getenv(k.password_env.c_str())) a.env["LIFEBOAT_PASSWORD"] = v;
  }
  if (!repo.s3_credentials_file.empty())
    a.env["AWS_SHARED_CREDENTIALS_FILE"] = repo.s3_credentials_file;
  if (!repo.s3_profile.empty()) a.env["AWS_PROFILE"] = repo.s3_profile;
  return a;
}

Result<std::vector<JobStep>> JobSteps(const plan::Plan& plan, const plan::JobPlan& job) {
  const plan::SourcePlan* source = nullptr;
  if (!job.source.empty()) {
    source = plan.FindSource(job.source);
    if (source == nullptr)
      return Err(Code::kInvalidArgument, "job '{}': unknown source '{}'", job.name, job.source);
  }
  auto repos = JobRepositories(plan, job);
  if (repos.empty() && job.kind != plan::JobKind::kCopy)
    return Err(Code::kInvalidArgument, "job '{}': no repository to work on", job.name);

  std::vector<JobStep> steps;
  // One step on repository `r`: global options, then the command.
  auto step = [&](StepRole role, const plan::RepositoryPlan& r, std::vector<std::string> cmd) {
    RepositoryAccess a = AccessFor(plan, r);
    JobStep s;
    s.role = role;
    s.repository = r.name;
    s.args = a.args;
    s.args.push_back("--json");
    s.args.insert(s.args.end(), cmd.begin(), cmd.end());
    s.env = a.env;
    if (source != nullptr && source->kind == plan::SourceKind::kPostgres)
      for (const auto& [k, v] : source->env) s.env[k] = v;
    return s;
  };
  std::vector<std::string> tags;
  if (plan::MakesSnapshots(job.kind)) {
    Append(tags, {"--tag", JobTag(job.name)});
    if (source != nullptr) Append(tags, {"--tag", SourceTag(source->name)});
    for (const auto& t : job.tags) Append(tags, {"--tag", t});
  }
  std::string dbname;
  if (source != nullptr && !source->conninfo_file.empty()) {
    LB_ASSIGN_OR_RETURN(dbname, ReadConninfo(source->conninfo_file));
  }

  // The backup command of a job that makes snapshots (several for a dump of some databases).
  std::vector<std::vector<std::string>> backups;
  using plan::JobKind;
  switch (job.kind) {
    case JobKind::kFull:
    case JobKind::kIncr: {
      std::vector<std::string> c = {"pg",       "backup",
                                    "--type",   job.kind == JobKind::kFull ? "full" : "incr",
                                    "--source", WalSourceOf(*source)};
      if (!source->pgdata.empty()) Append(c, {"--pgdata", source->pgdata});
      if (!dbname.empty()) Append(c, {"--dbname", dbname});
      c.insert(c.end(), tags.begin(), tags.end());
      backups.push_back(std::move(c));
      break;
    }
    case JobKind::kDump: {
      std::vector<std::string> base = {"pg", "dump", "--source", WalSourceOf(*source)};
      if (!dbname.empty()) Append(base, {"--dbname", dbname});
      base.insert(base.end(), tags.begin(), tags.end());
      if (job.databases.empty()) {
        base.push_back("--all");
        backups.push_back(base);
      }
      for (const auto& db : job.databases) {
        auto c = base;
        Append(c, {"--database", db});
        backups.push_back(std::move(c));
      }
      break;
    }
    case JobKind::kFiles: {
      std::vector<std::string> c = {"backup", "files"};
      for (const auto& e : source->excludes) Append(c, {"--exclude", e});
      c.insert(c.end(), tags.begin(), tags.end());
      c.push_back("--");
      c.insert(c.end(), source->paths.begin(), source->paths.end());
      backups.push_back(std::move(c));
      break;
    }
    case JobKind::kLogs: {
      std::vector<std::string> c = {"backup", "logs", "--older-than",
                                    source->older_than.ToString()};
      for (const auto& p : source->patterns) Append(c, {"--pattern", p});
      if (source->remove_archived) c.push_back("--remove-archived");
      c.insert(c.end(), tags.begin(), tags.end());
      c.push_back("--");
      c.insert(c.end(), source->paths.begin(), source->paths.end());
      backups.push_back(std::move(c));
      break;
    }
    case JobKind::kCommand: {
      std::vector<std::string> c = {"backup", "command", "--name", source->name};
      if (!source->filename.empty()) Append(c, {"--filename", source->filename});
      c.insert(c.end(), tags.begin(), tags.end());
      c.push_back("--");
      c.insert(c.end(), source->command.begin(), source->command.end());
      backups.push_back(std::move(c));
      break;
    }
    case JobKind::kWalExpire:
      for (const auto* r : repos)
        steps.push_back(step(StepRole::kMaintenance, *r,
                             {"pg", "wal-expire", "--source", WalSourceOf(*source), "--retention",
                              plan.wal.retention.ToString()}));
      return steps;
    case JobKind::kWalVerify:
      for (const auto* r : repos)
        steps.push_back(step(StepRole::kMaintenance, *r,
                             {"pg", "wal-verify", "--source", WalSourceOf(*source)}));
      return steps;
    case JobKind::kForget: {
      if (!job.retention)
        return Err(Code::kInvalidArgument, "job '{}': a forget job needs a retention", job.name);
      std::vector<std::string> c = {"forget"};
      auto policy = RetentionArgs(*job.retention);
      c.insert(c.end(), policy.begin(), policy.end());
      if (source != nullptr) Append(c, {"--tag", SourceTag(source->name)});
      for (const auto* r : repos) steps.push_back(step(StepRole::kMaintenance, *r, c));
      return steps;
    }
    case JobKind::kPrune:
      for (const auto* r : repos) steps.push_back(step(StepRole::kMaintenance, *r, {"prune"}));
      return steps;
    case JobKind::kCheck: {
      std::vector<std::string> c = {"check"};
      if (job.read_data)
        c.push_back("--read-data");
      else if (job.read_data_subset > 0)
        Append(c, {"--read-data-subset", std::to_string(job.read_data_subset) + "%"});
      for (const auto* r : repos) steps.push_back(step(StepRole::kMaintenance, *r, c));
      return steps;
    }
    case JobKind::kCopy: {
      const auto* from = plan.FindRepository(job.from);
      if (from == nullptr)
        return Err(Code::kInvalidArgument, "job '{}': unknown repository '{}'", job.name, job.from);
      for (const auto* r : repos) {
        if (r->name == from->name) continue;
        steps.push_back(step(StepRole::kMaintenance, *r, CopyArgs(plan, *from)));
        for (const auto& [k, v] : FromEnv(plan, *from)) steps.back().env.emplace(k, v);
      }
      return steps;
    }
  }

  // A backup: to the first repository, copied to the others, then the retention in each.
  const plan::RepositoryPlan& first = *repos.front();
  for (auto& b : backups) steps.push_back(step(StepRole::kBackup, first, std::move(b)));
  for (size_t i = 1; i < repos.size(); ++i) {
    auto c = CopyArgs(plan, first);
    Append(c, {"--tag", JobTag(job.name)});
    if (job.kind != JobKind::kFull && job.kind != JobKind::kIncr) c.push_back("--no-wal");
    steps.push_back(step(StepRole::kCopy, *repos[i], std::move(c)));
    for (const auto& [k, v] : FromEnv(plan, first)) steps.back().env.emplace(k, v);
  }
  if (job.retention) {
    std::vector<std::string> c = {"forget"};
    auto policy = RetentionArgs(*job.retention);
    c.insert(c.end(), policy.begin(), policy.end());
    Append(c, {"--tag", JobTag(job.name)});
    for (const auto* r : repos) steps.push_back(step(StepRole::kForget, *r, c));
  }
  return steps;
}

std::vector<std::string> CopyArgs(const plan::Plan& plan, const plan::RepositoryPlan& from) {
  std::vector<std::string> c = {"copy", "--from", from.url};
  plan::KeySource k = plan.KeyFor(from);
  if (!k.key_file.empty())
    Append(c, {"--from-key-file", k.key_file});
  else if (!k.password_file.empty())
    Append(c, {"--from-password-file", k.password_file});
  return c;
}

std::map<std::string, std::string> FromEnv(const plan::Plan& plan,
                                           const plan::RepositoryPlan& from) {
  std::map<std::string, std::string> env;
  plan::KeySource k = plan.KeyFor(from);
  if (k.key_file.empty() && k.password_file.empty() && !k.password_env.empty())
    if (const char* v = std::getenv(k.password_env.c_str())) env["LIFEBOAT_FROM_PASSWORD"] = v;
  if (!from.s3_credentials_file.empty())
    env.emplace("AWS_SHARED_CREDENTIALS_FILE", from.s3_credentials_file);
  if (!from.s3_profile.empty()) env.emplace("AWS_PROFILE", from.s3_profile);
  return env;
}

}  // namespace lb::ops
