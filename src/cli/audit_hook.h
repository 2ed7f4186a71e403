// The audit hook: the one table of which commands leave an audit record, and the one place
// that writes it, around the command main() dispatches (docs/user-guide.md, "Audit trail").
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "cli/common.h"

namespace lb::cli {

// Where the audit log is and how it is kept.
struct AuditSettings {
  std::string log;        // path of the audit log; empty: nowhere known (records are lost)
  std::string key_file;   // key of a keyed (HMAC-SHA256) chain; empty: plain SHA-256
  bool required = false;  // an operation that cannot be recorded fails (see RunAudited)
  bool log_given = false; // `log` came from a flag, the environment or the plan file
};

// The plan file's `audit:` section. For the plan loader, before main() runs the command;
// flags and environment variables override each field.
void SetPlanAuditSettings(const AuditSettings& plan);

// The settings in effect: --audit-log / --audit-key-file / --audit-required, else
// LIFEBOAT_AUDIT_LOG / LIFEBOAT_AUDIT_KEY_FILE / LIFEBOAT_AUDIT_REQUIRED (1, true or yes),
// else the plan file, else the default log (audit::DefaultLogPath()), unkeyed, not required.
// Relative paths are made absolute.
AuditSettings EffectiveAuditSettings();

// The subcommands chosen on a parsed command line, joined by spaces: "pg wal-get".
std::string CommandPath(const CLI::App& app);

// Runs `command`. When `operation` is in the audit table, the log is opened first and, once
// the command has returned, one record with its exit code and result is appended and copied
// into every repository the command opened (OpenedRepositories()). When the log cannot be
// opened or written, a warning is printed and the command's exit code stands; with
// `required`, a log that cannot be opened stops the command before it runs, and a record
// that cannot be appended turns a success into that error's exit code. A failed repository
// copy is a warning only: the record is in the file. Returns the exit code for main().
int RunAudited(const std::string& operation, int argc, char** argv, const Runner& command);

// Appends one record for an event inside a long-running command ("daemon start"), with
// exit code 0 and result "ok". A log that cannot be written gives a warning.
// The command line is the one RunAudited was given.
void AuditEvent(const std::string& operation);

}  // namespace lb::cli
