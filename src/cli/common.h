// What every command shares: global options, the password sources, opening the repository,
// printing results and mapping a Status to an exit code.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

#include "repo/lock.h"
#include "repo/repository.h"

namespace lb::cli {

struct GlobalOptions {
  std::vector<std::string> repos;  // --repo (repeatable, in priority order), else LIFEBOAT_REPO
  std::string password_file;  // --password-file, else LIFEBOAT_PASSWORD_FILE / LIFEBOAT_PASSWORD
  std::string key_file;       // --key-file, else LIFEBOAT_KEY_FILE
  bool json = false;
  bool quiet = false;
  int verbose = 0;
  size_t threads = 0;
  // The audit trail (cli/audit_hook.h): flag, else LIFEBOAT_AUDIT_*, else the plan file.
  std::string audit_log;        // --audit-log FILE
  std::string audit_key_file;   // --audit-key-file FILE
  bool audit_required = false;  // --audit-required
};

GlobalOptions& Globals();

// The repository locations in priority order: every --repo, else LIFEBOAT_REPO;
// kInvalidArgument when there is none.
Result<std::vector<std::string>> RepoUrls();
// The one repository of a command that works on one; kInvalidArgument when none is given
// or --repo was given more than once.
Result<std::string> RepoUrl();
// Reads the secret that opens the repository, first found of: --key-file, --password-file,
// LIFEBOAT_KEY_FILE, LIFEBOAT_PASSWORD_FILE, LIFEBOAT_PASSWORD. Never from a flag value.
// One trailing newline is removed.
Result<repo::Secret> ReadSecret();
Result<std::string> ReadPassword();
Result<std::string> ReadPasswordFile(const std::string& path);
// Every secret value this process has read (password and key files, LIFEBOAT_PASSWORD), so
// that the audit record can redact them wherever they turn up.
const std::vector<std::string>& SecretsRead();

struct OpenedRepo {
  // Shared with OpenedRepositories(): the audit hook copies the command's record into the
  // repository after the command has returned and let go of its OpenedRepo.
  std::shared_ptr<repo::Repository> repo;
  std::unique_ptr<repo::RepoLock> lock;  // released before repo
};
enum class LockMode { kNone, kShared, kExclusive };
Result<OpenedRepo> OpenRepo(LockMode lock, const std::string& purpose);
Result<OpenedRepo> OpenRepoAt(const std::string& url, LockMode lock, const std::string& purpose);
// For reading commands given several repositories: opens the first one that opens, warning
// about each that does not (unreachable, missing, wrong key), in --repo order. `url_out`
// receives the location opened.
Result<OpenedRepo> OpenFirstReachable(LockMode lock, const std::string& purpose,
                                      std::string* url_out = nullptr);
// The repositories this process opened with OpenRepoAt, one entry per url (the latest
// opening), in the order first opened. Not thread-safe: commands open repositories from
// their main thread.
struct OpenedRepository {
  std::string url;
  std::shared_ptr<repo::Repository> repo;
};
const std::vector<OpenedRepository>& OpenedRepositories();

// Prints "error: ..." (and the hint) and returns the exit code for the status.
int Fail(const Status& s);
// The status last given to Fail (ok when none): what the audit record gives as the result.
const Status& LastFailure();
bool ProgressWanted();
void PrintJson(const nlohmann::json& j);

// Each command group registers its subcommands; `run` is set to the chosen command.
using Runner = std::function<int()>;
void AddRepoCommands(CLI::App& app, Runner& run);
void AddFileCommands(CLI::App& app, Runner& run);
void AddPgCommands(CLI::App& app, Runner& run);
void AddStreamCommands(CLI::App& app, Runner& run);
void AddForgetCommands(CLI::App& app, Runner& run);
void AddAuditCommands(CLI::App& app, Runner& run);

}  // namespace lb::cli
