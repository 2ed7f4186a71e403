// lifeboat: backup and disaster recovery for PostgreSQL-backed applications.
#include <CLI/CLI.hpp>

#include <csignal>
#include <cstdio>

#include "cli/common.h"
#include "util/log.h"

int main(int argc, char** argv) {
  using namespace lb::cli;
  std::signal(SIGPIPE, SIG_IGN);
  CLI::App app{"lifeboat: backup and disaster recovery for PostgreSQL applications"};
  app.require_subcommand(1);
  // Global options may follow the command too ("lifeboat snapshots --json"); subcommands
  // created below inherit this.
  app.fallthrough();
  app.set_version_flag("--version", "lifeboat 0.1.0");
  auto& g = Globals();
  app.add_option("--repo", g.repo, "repository path or URL (default: $LIFEBOAT_REPO)");
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
  Runner run;
  AddRepoCommands(app, run);
  AddFileCommands(app, run);
  AddPgCommands(app, run);
  AddStreamCommands(app, run);
  AddForgetCommands(app, run);
  AddCopyCommands(app, run);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (g.verbose >= 2) lb::SetLogLevel(lb::LogLevel::kDebug);
  else if (g.verbose == 1) lb::SetLogLevel(lb::LogLevel::kInfo);
  if (!run) return 2;
  return run();
}
