// Audit commands: audit verify, audit show.
#include <cstdio>
#include <filesystem>
#include <optional>

#include "audit/audit_log.h"
#include "audit/repository_copy.h"
#include "cli/audit_hook.h"
#include "cli/common.h"

namespace lb::cli {

using nlohmann::json;

namespace {

std::string LogPath(const std::string& given) {
  if (given.empty()) return EffectiveAuditSettings().log;
  std::error_code ec;
  auto abs = std::filesystem::absolute(given, ec);
  return ec ? given : abs.string();
}

json ProblemJson(const std::optional<audit::Problem>& p) {
  if (!p) return nullptr;
  static const char* kKinds[] = {"not_a_record", "edited",      "removed",
                                 "reordered",    "broken_link", "foreign_log",
                                 "unkeyed",      "wrong_key",   "truncated",
                                 "differs_from_copy", "incomplete"};
  return {{"kind", kKinds[int(p->kind)]}, {"line", p->line}, {"seq", p->seq},
          {"message", p->message}};
}

int RunAuditVerify(const std::string& given) {
  const std::string path = LogPath(given);
  const AuditSettings settings = EffectiveAuditSettings();
  std::optional<audit::ChainKey> key;
  if (!settings.key_file.empty()) {
    auto k = audit::LoadChainKey(settings.key_file);
    if (!k.ok()) return Fail(k.status());
    key = std::move(*k);
  }
  const audit::ChainKey* key_ptr = key ? &*key : nullptr;
  // A repository given (--repo or LIFEBOAT_REPO) is compared with the file.
  auto urls = RepoUrls();
  auto v = audit::VerifyLog(path, key_ptr);
  const bool missing = !v.ok() && v.status().code() == Code::kNotFound;
  if (!v.ok() && !(missing && urls.ok())) return Fail(v.status());
  audit::VerifyResult local = v.ok() ? *v : audit::VerifyResult{};

  const bool text = !Globals().json;
  json out = {{"log", path}, {"exists", !missing}};
  bool tampered = false;
  if (v.ok()) {
    // A record keyed with another key is not evidence of tampering by itself: the wrong key
    // may have been given. It is not an intact log either.
    tampered = local.problem && local.problem->kind != audit::ProblemKind::kWrongKey;
    out.update({{"log_id", local.log_id}, {"records", local.records},
                {"last_seq", local.last_seq}, {"last_hash", local.last_hash},
                {"keyed", local.keyed}, {"key_needed", local.key_needed},
                {"problem", ProblemJson(local.problem)},
                {"incomplete", ProblemJson(local.incomplete)}});
    if (!local.note.empty()) out["note"] = local.note;
    if (text) {
      std::printf("audit log %s: %llu records of log %s (%s)\n", path.c_str(),
                  (unsigned long long)local.records,
                  local.log_id.empty() ? "-" : local.log_id.substr(0, 8).c_str(),
                  local.keyed ? (key ? "keyed chain, key " + key->id : std::string("keyed chain"))
                                    .c_str()
                              : "sha256 chain");
      if (local.problem) std::printf("error: %s\n", local.problem->message.c_str());
      if (local.incomplete) std::printf("warning: %s\n", local.incomplete->message.c_str());
      if (!local.note.empty()) std::printf("note: %s\n", local.note.c_str());
      if (local.key_needed)
        std::printf("error: the log is keyed; its hashes were not checked (give the key with "
                    "--audit-key-file or LIFEBOAT_AUDIT_KEY_FILE)\n");
    }
  } else if (text) {
    std::printf("audit log %s does not exist\n", path.c_str());
  }

  json repos = json::array();
  Status repo_error;
  if (urls.ok()) {
    for (const auto& url : *urls) {
      auto r = OpenRepoAt(url, LockMode::kNone, "audit verify");
      if (!r.ok()) {
        repo_error = r.status().WithContext(fmt::format("repository '{}'", url));
        continue;
      }
      auto c = audit::CompareWithCopy(*r->repo, local, key_ptr);
      if (!c.ok()) {
        repo_error = c.status().WithContext(fmt::format("repository '{}'", url));
        continue;
      }
      tampered = tampered || c->problem.has_value();
      json others = json::object();
      for (const auto& [id, n] : c->other_logs) others[id] = n;
      repos.push_back({{"url", url}, {"copies", c->copies}, {"last_copy_seq", c->last_copy_seq},
                       {"not_copied", c->not_copied}, {"first_not_copied", c->first_not_copied},
                       {"problem", ProblemJson(c->problem)}, {"other_logs", others}});
      if (!text) continue;
      if (!local.log_id.empty())
        std::printf("repository %s: %llu records of this log, up to record %llu\n", url.c_str(),
                    (unsigned long long)c->copies, (unsigned long long)c->last_copy_seq);
      if (c->problem) std::printf("error: %s\n", c->problem->message.c_str());
      if (c->not_copied)
        std::printf("note: %llu records of the file have no copy here (the first is record "
                    "%llu): commands on other repositories, init, or copies that failed\n",
                    (unsigned long long)c->not_copied, (unsigned long long)c->first_not_copied);
      size_t shown = 0;
      for (const auto& [id, n] : c->other_logs) {
        if (shown++ == 10) {
          std::printf("repository %s also holds %zu more audit logs (see --json)\n", url.c_str(),
                      c->other_logs.size() - 10);
          break;
        }
        std::printf("repository %s also holds audit log %s (%llu records)\n", url.c_str(),
                    id.substr(0, 8).c_str(), (unsigned long long)n);
      }
    }
    out["repositories"] = repos;
  }

  const bool wrong_key = local.problem && local.problem->kind == audit::ProblemKind::kWrongKey;
  out["intact"] = !tampered && !wrong_key && v.ok() && !local.key_needed && repo_error.ok();
  if (!text) PrintJson(out);
  else if (tampered) std::printf("the audit trail has been tampered with\n");
  else if (wrong_key) std::printf("the log was keyed with another key\n");
  else if (v.ok() && !local.key_needed && !local.incomplete && repo_error.ok())
    std::printf("no problems were found; last record %llu, hash %s\n",
                (unsigned long long)local.last_seq, local.last_hash.c_str());
  if (tampered) return ExitCodeFor(Code::kCorruption);
  if (wrong_key) return ExitCodeFor(Code::kWrongKey);
  if (!repo_error.ok()) return Fail(repo_error);
  if (missing) return Fail(v.status());
  if (local.key_needed) return ExitCodeFor(Code::kFailedPrecondition);
  if (local.incomplete) return ExitCodeFor(Code::kIncomplete);
  return 0;
}

std::string Str(const json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end()) return "";
  return it->is_string() ? it->get<std::string>() : it->dump();
}

int RunAuditShow(const std::string& given, size_t last) {
  const std::string path = LogPath(given);
  auto lines = audit::ReadLog(path, last);
  if (!lines.ok()) return Fail(lines.status());
  if (Globals().json) {
    json out = json::array();
    for (const auto& l : *lines)
      out.push_back(l.record ? *l.record : json{{"line", l.line}, {"invalid", l.text}});
    PrintJson(out);
    return 0;
  }
  std::printf("%-6s  %-19s  %-24s  %-16s  %-5s  %-9s  %s\n", "SEQ", "Time (UTC)", "User@host",
              "Operation", "Exit", "Duration", "Result");
  for (const auto& l : *lines) {
    if (!l.record) {
      std::printf("(line %llu is not a record)\n", (unsigned long long)l.line);
      continue;
    }
    const json& r = *l.record;
    std::string time = Str(r, "time");
    if (time.size() >= 19) time = time.substr(0, 19).replace(10, 1, " ");
    // Records are shown as they are, edited ones too: no member is trusted to have its type.
    auto ms = r.find("duration_ms");
    double secs = ms != r.end() && ms->is_number() ? ms->get<double>() / 1000.0 : 0.0;
    std::printf("%-6s  %-19s  %-24s  %-16s  %-5s  %-9s  %s\n", Str(r, "seq").c_str(),
                time.c_str(), (Str(r, "user") + "@" + Str(r, "host")).c_str(),
                Str(r, "operation").c_str(), Str(r, "exit_code").c_str(),
                fmt::format("{:.1f} s", secs).c_str(), Str(r, "result").c_str());
  }
  return 0;
}

}  // namespace

void AddAuditCommands(CLI::App& app, Runner& run) {
  auto* audit = app.add_subcommand("audit", "the audit trail: verify its chain, show records");
  audit->require_subcommand(1);

  static std::string verify_log;
  auto* verify = audit->add_subcommand(
      "verify", "check the audit log's hash chain (and, with --repo, against the repository "
                "copy); name the first edited, removed or reordered record");
  verify->add_option("--log", verify_log, "the audit log (default: as for recording)");
  verify->callback([&] { run = [] { return RunAuditVerify(verify_log); }; });

  static std::string show_log;
  static size_t show_last = 0;
  auto* show = audit->add_subcommand("show", "list the records of the audit log");
  show->add_option("--log", show_log, "the audit log (default: as for recording)");
  show->add_option("--last", show_last, "only the last N records");
  show->callback([&] { run = [] { return RunAuditShow(show_log, show_last); }; });
}

}  // namespace lb::cli
