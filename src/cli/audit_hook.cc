#include "cli/audit_hook.h"

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <optional>

#include "audit/audit_log.h"
#include "audit/redact.h"
#include "audit/repository_copy.h"
#include "util/log.h"

namespace lb::cli {
namespace {

// Which commands leave a record. Everything that changes a repository or the data outside
// it, and everything that takes data out of a repository, is here; listings and checks that
// only read metadata (snapshots, ls, diff, check, locks, key list, pg info, pg wal-verify,
// audit verify / show) are not.
struct AuditRule {
  std::string_view operation;
  // false: only failures are recorded. For wal-push, which PostgreSQL runs for every
  // segment: each success is already on record as the archived segment itself, and a
  // record per segment would bury the failures that matter (docs/decisions.md, 12).
  bool record_success = true;
  // An exit code that is not recorded: wal-get's 1, "not in the archive", which a standby
  // gets every few seconds while it waits for the next segment.
  int unrecorded_exit = -1;
};

constexpr AuditRule kAudited[] = {
    {"init"},
    {"key add"},
    {"key remove"},
    {"backup files"},
    {"backup logs"},
    {"backup command"},
    {"restore"},
    {"dump"},
    {"forget"},
    {"prune"},
    {"repair index"},
    {"unlock"},
    {"pg backup"},
    {"pg dump"},
    {"pg restore"},
    {"pg restore-dump"},
    {"pg wal-get", true, 1},
    {"pg wal-push", false},
    {"pg wal-expire"},
    // Commands being built elsewhere; recorded as soon as they exist under these names.
    {"copy"},
    {"drill"},
    {"daemon"},
};

const AuditRule* FindRule(std::string_view operation) {
  for (const auto& r : kAudited)
    if (r.operation == operation) return &r;
  return nullptr;
}

AuditSettings& PlanSettings() {
  static AuditSettings plan;
  return plan;
}

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string Absolute(const std::string& path) {
  if (path.empty()) return path;
  std::error_code ec;
  auto abs = std::filesystem::absolute(path, ec);
  return ec ? path : abs.lexically_normal().string();
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Result<std::unique_ptr<audit::AuditLog>> OpenLog(const AuditSettings& s) {
  if (s.log.empty())
    return Status(Code::kInvalidArgument, "no place for the audit log is known")
        .WithHint("set --audit-log FILE or LIFEBOAT_AUDIT_LOG (neither HOME nor "
                  "XDG_STATE_HOME is set)");
  std::optional<audit::ChainKey> key;
  if (!s.key_file.empty()) {
    LB_ASSIGN_OR_RETURN(key, audit::LoadChainKey(s.key_file));
  }
  return audit::AuditLog::Open(s.log, std::move(key));
}

std::string FirstLine(const std::string& text) { return text.substr(0, text.find('\n')); }

}  // namespace

void SetPlanAuditSettings(const AuditSettings& plan) { PlanSettings() = plan; }

AuditSettings EffectiveAuditSettings() {
  const GlobalOptions& g = Globals();
  const AuditSettings& plan = PlanSettings();
  AuditSettings s;
  s.log = !g.audit_log.empty()                 ? g.audit_log
          : !Env("LIFEBOAT_AUDIT_LOG").empty() ? Env("LIFEBOAT_AUDIT_LOG")
                                               : plan.log;
  s.log_given = !s.log.empty();
  if (s.log.empty()) s.log = audit::DefaultLogPath();
  s.log = Absolute(s.log);
  s.key_file = !g.audit_key_file.empty()              ? g.audit_key_file
               : !Env("LIFEBOAT_AUDIT_KEY_FILE").empty() ? Env("LIFEBOAT_AUDIT_KEY_FILE")
                                                        : plan.key_file;
  s.key_file = Absolute(s.key_file);
  const std::string req = Env("LIFEBOAT_AUDIT_REQUIRED");
  s.required = g.audit_required || req == "1" || req == "true" || req == "yes" || plan.required;
  return s;
}

std::string CommandPath(const CLI::App& app) {
  std::string path;
  const CLI::App* cur = &app;
  for (;;) {
    auto subs = cur->get_subcommands();
    if (subs.empty()) break;
    cur = subs.front();
    path += (path.empty() ? "" : " ") + cur->get_name();
  }
  return path;
}

namespace {
std::vector<std::string>& CommandLine() {
  static std::vector<std::string> argv;
  return argv;
}
}  // namespace

int RunAudited(const std::string& operation, int argc, char** argv, const Runner& command) {
  CommandLine().assign(argv, argv + argc);
  const AuditRule* rule = FindRule(operation);
  if (!rule) return command();

  AuditSettings settings = EffectiveAuditSettings();
  audit::Event e;
  e.time_ns = NowNs();
  const auto start = std::chrono::steady_clock::now();
  // Opened before the command runs, so that a log that cannot be written is known before
  // an operation that must be recorded starts.
  auto log = OpenLog(settings);
  if (!log.ok()) {
    Status s = log.status().WithContext("audit log");
    if (settings.required)
      return Fail(Status(s.code(), s.message())
                      .WithHint(fmt::format("'{}' was not run: --audit-required (or "
                                            "LIFEBOAT_AUDIT_REQUIRED) demands a record of it{}",
                                            operation,
                                            s.hint().empty() ? "" : "; " + s.hint())));
    LogWarning("{}; '{}' is not recorded in the audit trail", s.message(), operation);
  }

  const int rc = command();
  // A command that read a plan file (the daemon) may have moved the log meanwhile.
  if (AuditSettings now = EffectiveAuditSettings(); now.log != settings.log) {
    settings = now;
    log = OpenLog(settings);
    if (!log.ok())
      LogWarning("audit log: {}; '{}' is not recorded", log.status().message(), operation);
  }
  if (!log.ok()) return rc;
  if ((rc == 0 && !rule->record_success) || rc == rule->unrecorded_exit) return rc;

  audit::SetProcessFields(e);
  e.operation = operation;
  std::vector<std::string> secrets = SecretsRead();
  for (const char* var : {"LIFEBOAT_PASSWORD", "PGPASSWORD"})
    if (!Env(var).empty()) secrets.push_back(Env(var));
  e.argv = audit::RedactArgv(std::vector<std::string>(argv, argv + argc), secrets);
  if (auto urls = RepoUrls(); urls.ok())
    for (const auto& u : *urls) e.repositories.push_back(audit::RedactText(u, secrets));
  e.exit_code = rc;
  if (rc == 0) e.result = "ok";
  else if (!LastFailure().ok()) e.result = audit::RedactText(FirstLine(LastFailure().message()), secrets);
  else e.result = fmt::format("exit {}", rc);
  e.duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - start)
                      .count();

  auto rec = (*log)->Append(e);
  if (!rec.ok()) {
    Status s = rec.status().WithContext("audit log");
    if (settings.required) {
      int code = Fail(Status(s.code(), fmt::format("{}; '{}' ran but is not recorded",
                                                   s.message(), operation)));
      return rc != 0 ? rc : code;
    }
    LogWarning("{}; '{}' is not recorded in the audit trail", s.message(), operation);
    return rc;
  }
  if (!rec->repair.empty()) {
    // The record holds the whole story (with the removed bytes); the warning points to it.
    std::string what = rec->repair.size() > 160 ? rec->repair.substr(0, 160) + "..." : rec->repair;
    LogWarning("audit log '{}': {} (see record {})", settings.log, what, rec->seq);
  }
  for (const auto& opened : OpenedRepositories()) {
    Status s = audit::PutCopy(*opened.repo, *rec);
    if (!s.ok())
      LogWarning("audit record {} was not copied into repository '{}': {}", rec->seq,
                 audit::RedactText(opened.url, secrets), s.ToString());
  }
  return rc;
}

void AuditEvent(const std::string& operation) {
  const AuditSettings settings = EffectiveAuditSettings();
  auto log = OpenLog(settings);
  if (!log.ok()) {
    LogWarning("audit log: {}; '{}' is not recorded", log.status().message(), operation);
    return;
  }
  audit::Event e;
  e.time_ns = NowNs();
  audit::SetProcessFields(e);
  e.operation = operation;
  std::vector<std::string> secrets = SecretsRead();
  for (const char* var : {"LIFEBOAT_PASSWORD", "PGPASSWORD"})
    if (!Env(var).empty()) secrets.push_back(Env(var));
  e.argv = audit::RedactArgv(CommandLine(), secrets);
  e.result = "ok";
  auto rec = (*log)->Append(e);
  if (!rec.ok()) LogWarning("audit log: {}; '{}' is not recorded", rec.status().message(), operation);
}

}  // namespace lb::cli
