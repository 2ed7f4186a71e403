// lifeboat: backup and disaster recovery for PostgreSQL-backed applications.
#include <CLI/CLI.hpp>

#include <malloc.h>

#include <csignal>
#include <cstdio>

#include "cli/audit_hook.h"
#include "cli/common.h"
#include "util/log.h"

int main(int argc, char** argv) {
  using namespace lb::cli;
  std::signal(SIGPIPE, SIG_IGN);
  // Buffers of 4 MiB and more (8 MiB packs) are mapped and unmapped on their own. glibc's
  // default raises this threshold after the first such free, after which pack buffers
  // come from the heap and are not given back: prune's peak RSS was 108 MiB with it,
  // 43 MiB without (docs/decisions.md).
  mallopt(M_MMAP_THRESHOLD, 4 << 20);
  CLI::App app{"lifeboat: backup and disaster recovery for PostgreSQL applications"};
  app.require_subcommand(1);
  // Global options may follow the command too ("lifeboat snapshots --json"); subcommands
  // created below inherit this.
  app.fallthrough();
  app.set_version_flag("--version", "lifeboat 0.1.0");
  auto& g = Globals();
  app.add_option("--repo", g.repos,
                 "repository path or URL (default: $LIFEBOAT_REPO); repeat it for several, in "
                 "priority order: wal-push and backups write to each, restores and wal-get "
                 "use the first reachable")
      ->allow_extra_args(false);
  app.add_option("--password-file", g.password_file,
                 "file holding the password (default: $LIFEBOAT_PASSWORD_FILE, "
                 "$LIFEBOAT_PASSWORD)");
  app.add_option("--key-file", g.key_file,
                 "key file that opens the repository without password stretching (default: "
                 "$LIFEBOAT_KEY_FILE); see 'key add --generate-key-file'");
  app.add_flag("--json", g.json, "machine-readable output");
  app.add_flag("-q,--quiet", g.quiet, "no progress output");
  app.add_flag("-v,--verbose", g.verbose, "more output (repeat for debug)");
  app.add_option("--threads", g.threads, "worker threads (default: every core)");
  app.add_option("--audit-log", g.audit_log,
                 "audit log file (default: $LIFEBOAT_AUDIT_LOG, else "
                 "$XDG_STATE_HOME/lifeboat/audit.log or ~/.local/state/lifeboat/audit.log)");
  app.add_option("--audit-key-file", g.audit_key_file,
                 "key that makes the audit log's chain an HMAC one (default: "
                 "$LIFEBOAT_AUDIT_KEY_FILE)");
  app.add_flag("--audit-required", g.audit_required,
               "do not run an audited command whose record cannot be written (default: "
               "$LIFEBOAT_AUDIT_REQUIRED; otherwise a warning)");
  Runner run;
  AddRepoCommands(app, run);
  AddFileCommands(app, run);
  AddPgCommands(app, run);
  AddStreamCommands(app, run);
  AddForgetCommands(app, run);
  AddCopyCommands(app, run);
  AddPlanCommands(app, run);
  AddAuditCommands(app, run);
  AddDaemonCommands(app, run);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (g.verbose >= 2) lb::SetLogLevel(lb::LogLevel::kDebug);
  else if (g.verbose == 1) lb::SetLogLevel(lb::LogLevel::kInfo);
  if (!run) return 2;
  // Every command runs through the audit hook; its table says which leave a record.
  return RunAudited(CommandPath(app), argc, argv, run);
}
