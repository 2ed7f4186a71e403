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
#include "repo/snapshot.h"

namespace lb::cli {

struct GlobalOptions {
  std::vector<std::string> repos;  // --repo (repeatable, in priority order), else LIFEBOAT_REPO
  std::string password_file;  // --password-file, else LIFEBOAT_PASSWORD_FILE / LIFEBOAT_PASSWORD
  std::string key_file;       // --key-file, else LIFEBOAT_KEY_FILE
  // The other repository of `copy` and `init --copy-params-from` (options of those commands).
  std::string from_password_file;  // --from-password-file, else LIFEBOAT_FROM_PASSWORD_FILE / ..._PASSWORD
  std::string from_key_file;       // --from-key-file, else LIFEBOAT_FROM_KEY_FILE
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

// kInvalidArgument (without echoing the secret) when a repository url carries credentials:
// userinfo ("s3://KEY:SECRET@bucket") or a secret-looking query option.
Status CheckUrlHasNoCredentials(std::string_view url);
// The repository locations in priority order: every --repo, else LIFEBOAT_REPO;
// kInvalidArgument when there is none.
Result<std::vector<std::string>> RepoUrls();
// The one repository of a command that works on one; kInvalidArgument when none is given
// or --repo was given more than once.
Result<std::string> RepoUrl();
// Where one repository's secret may come from: two options (their values and names) and
// three environment variables, tried in the order of ReadSecret.
struct SecretSources {
  std::string key_file;       // option value, empty when not given
  std::string password_file;  // option value, empty when not given
  std::string key_file_option, password_file_option;
  std::string key_file_env, password_file_env, password_env;
};
// The repository's own (--key-file, --password-file, LIFEBOAT_KEY_FILE, ...), and the other
// repository's of `copy --from` and `init --copy-params-from` (--from-key-file, ...,
// LIFEBOAT_FROM_KEY_FILE, LIFEBOAT_FROM_PASSWORD_FILE, LIFEBOAT_FROM_PASSWORD).
SecretSources RepoSecretSources();
SecretSources FromSecretSources();

// Reads the secret that opens a repository, first found of: the key file option, the
// password file option, the key file variable, the password file variable, the password
// variable. Never from an option value. One trailing newline is removed. kInvalidArgument
// (with a hint naming the sources) when none is set.
Result<repo::Secret> ReadSecret(const SecretSources& src);
inline Result<repo::Secret> ReadSecret() { return ReadSecret(RepoSecretSources()); }
Result<std::string> ReadPassword(const SecretSources& src);
inline Result<std::string> ReadPassword() { return ReadPassword(RepoSecretSources()); }
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
// has_fallback: another repository will be tried if this one cannot be reached, so a server
// that never answers is given up within seconds (storage::OpenOptions::has_fallback).
Result<OpenedRepo> OpenRepoAt(const std::string& url, LockMode lock, const std::string& purpose,
                              bool has_fallback = false);
// For backups: the first repository of --repo (the one the backup writes; the others receive a
// copy afterwards, see CopyToOtherRepos).
Result<OpenedRepo> OpenBackupTarget(LockMode lock, const std::string& purpose);
// After a backup committed `snapshot` to `first` (opened by OpenBackupTarget, lock held):
// copies it into every other --repo, in order, with its WAL for a PostgreSQL base backup.
// Returns 0, or the exit code of the first copy that failed (the error is printed, naming
// the repository and the `lifeboat copy` command that catches up later).
int CopyToOtherRepos(repo::Repository& first, const repo::Snapshot& snapshot);
// For reading commands given several repositories: opens the first one that opens, warning
// about each that does not (unreachable, missing, wrong key), in --repo order; each but the
// last is opened with has_fallback. `url_out` receives the location opened.
Result<OpenedRepo> OpenFirstReachable(LockMode lock, const std::string& purpose,
                                      std::string* url_out = nullptr);
// Opens the repository at `url` with `secret`, then takes the lock.
Result<OpenedRepo> OpenRepoAt(const std::string& url, const repo::Secret& secret, LockMode lock,
                              const std::string& purpose, bool has_fallback = false);

// --from-password-file and --from-key-file on a command that opens a second repository.
void AddFromSecretOptions(CLI::App& cmd);
// An error opening the other repository (`what`: "--from", "--copy-params-from"): says which
// repository it concerns, and a wrong key hints at that repository's secret options.
Status FromRepoError(const Status& s, std::string_view what);

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
void AddCopyCommands(CLI::App& app, Runner& run);
void AddPlanCommands(CLI::App& app, Runner& run);
void AddAuditCommands(CLI::App& app, Runner& run);
void AddDaemonCommands(CLI::App& app, Runner& run);

}  // namespace lb::cli
