// Stream commands: backup command, dump, pg dump, pg restore-dump. Byte streams go into the
// repository as they are produced (no temporary file of their size); see
// source/stream_backup.h.
//
// Secrets: a command's argv is echoed in messages and recorded in the snapshot (and is visible
// to every local user in ps anyway), so passwords must not be passed as arguments: use the
// command's environment or files (PGPASSWORD, ~/.pgpass, a kubeconfig). The environment is
// never logged. A --dbname conninfo is passed to the PostgreSQL programs but never printed.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <memory>

#include "cli/common.h"
#include "cli/progress.h"
#include "repo/snapshot.h"
#include "source/stream_backup.h"
#include "util/log.h"

namespace lb::cli {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// Re-emits what a command wrote to stderr (its last 64 KiB) as warnings, line by line.
void WarnStderr(const std::string& who, const std::string& tail) {
  size_t i = 0;
  while (i < tail.size()) {
    size_t nl = tail.find('\n', i);
    if (nl == std::string::npos) nl = tail.size();
    std::string line = tail.substr(i, nl - i);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") != std::string::npos) LogWarning("{}: {}", who, line);
    i = nl + 1;
  }
}

std::string BaseName(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// ---- backup command ----

struct CommandArgs {
  std::string name, filename, host;
  std::vector<std::string> tags, argv;
};

int RunBackupCommand(const CommandArgs& a) {
  if (a.name.empty() || a.name.find('/') != std::string::npos)
    return Fail(Err(Code::kInvalidArgument, "--name must be a non-empty name without '/'"));
  auto r = OpenBackupTarget(LockMode::kShared, "backup command");
  if (!r.ok()) return Fail(r.status());
  source::StreamBackupOptions opts;
  opts.streams.push_back({a.filename.empty() ? a.name + ".out" : a.filename, a.argv, ""});
  opts.tags = a.tags;
  opts.host = a.host;
  opts.kind = "command";
  opts.source = a.name;
  opts.threads = Globals().threads;
  source::BackupProgress progress;
  std::unique_ptr<ProgressBar> bar;
  if (ProgressWanted()) {
    opts.progress = &progress;
    bar = std::make_unique<ProgressBar>("backup", [&] {
      return ProgressSample{progress.files_done, 1, progress.bytes_done, 0, false};
    });
  }
  auto res = source::BackupCommands(*r->repo, opts);
  bar.reset();
  if (!res.ok()) return Fail(res.status());
  for (const auto& s : res->streams) WarnStderr(BaseName(a.argv[0]), s.stderr_tail);
  const auto& s = res->snapshot;
  const int copied = CopyToOtherRepos(*r->repo, s);
  if (Globals().json) {
    json j = s.ToJson(true);
    j["added"] = res->writer.bytes_new_raw;
    j["stored"] = res->writer.bytes_new_stored;
    PrintJson(j);
  } else {
    std::printf("snapshot %s saved: '%s' wrote %s into '%s'; added %s (%s stored) in %.1f s\n",
                s.id.Short().c_str(), res->streams[0].display.c_str(),
                HumanBytes(res->bytes_total).c_str(), PrintableName(res->streams[0].name).c_str(),
                HumanBytes(res->writer.bytes_new_raw).c_str(),
                HumanBytes(res->writer.bytes_new_stored).c_str(), res->seconds);
  }
  return copied;
}

// ---- dump ----

struct DumpArgs {
  std::string ref, file, output;
};

int RunDump(const DumpArgs& a) {
  // A shared lock like every reader: prune's sweep waits for it (docs/repository-format.md).
  auto r = OpenRepo(LockMode::kShared, "dump");
  if (!r.ok()) return Fail(r.status());
  auto snap = repo::FindSnapshot(*r->repo, a.ref);
  if (!snap.ok()) return Fail(snap.status());
  auto node = source::FindSnapshotFile(*r->repo, *snap, a.file);
  if (!node.ok()) return Fail(node.status());
  if (a.output.empty() || a.output == "-") {
    auto n = source::WriteFileContent(*r->repo, *node, STDOUT_FILENO, Globals().threads);
    // The reader went away (`lifeboat dump ... | head`): what it wanted was written.
    if (!n.ok() && n.status().message().find(std::strerror(EPIPE)) != std::string::npos) return 0;
    if (!n.ok()) return Fail(n.status().WithContext("dump"));
    return 0;
  }
  // Written under a temporary name and renamed when complete and synced: a failed dump never
  // leaves a truncated file under the name asked for.
  std::string tmp = a.output + ".lifeboat-XXXXXX";
  int fd = mkostemp(tmp.data(), O_CLOEXEC);
  if (fd < 0) return Fail(ErrnoStatus(errno, fmt::format("create '{}'", tmp)));
  auto n = source::WriteFileContent(*r->repo, *node, fd, Globals().threads);
  Status s = n.ok() ? Status::Ok() : n.status().WithContext("dump");
  if (s.ok() && fsync(fd) != 0) s = ErrnoStatus(errno, fmt::format("fsync '{}'", tmp));
  if (::close(fd) != 0 && s.ok()) s = ErrnoStatus(errno, fmt::format("close '{}'", tmp));
  if (s.ok() && ::rename(tmp.c_str(), a.output.c_str()) != 0)
    s = ErrnoStatus(errno, fmt::format("rename to '{}'", a.output));
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return Fail(s);
  }
  if (Globals().json)
    PrintJson({{"snapshot", snap->id.Hex()}, {"file", node->name}, {"output", a.output},
               {"bytes", *n}});
  else
    std::printf("wrote '%s' of snapshot %s (%s) to %s\n", PrintableName(node->name).c_str(),
                snap->id.Short().c_str(), HumanBytes(*n).c_str(), a.output.c_str());
  return 0;
}

// ---- PostgreSQL programs and connections ----

std::string DefaultPgSource() {
  const char* s = std::getenv("LIFEBOAT_PG_SOURCE");
  return s && *s ? s : "main";
}

// Installed PostgreSQL majors (Debian layout /usr/lib/postgresql/<major>/bin), newest first.
std::vector<int> InstalledMajors() {
  std::vector<int> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    const std::string n = e.path().filename().string();
    if (!n.empty() && std::all_of(n.begin(), n.end(), [](char c) { return c >= '0' && c <= '9'; }))
      out.push_back(std::atoi(n.c_str()));
  }
  std::sort(out.rbegin(), out.rend());
  return out;
}

// The program of the server's major version when installed, else the newest installed one
// not older than it (pg_dump must not be older than the server), else `prog` from PATH.
std::string FindPgProgram(const std::string& prog, int major) {
  auto path = [&](int m) { return fmt::format("/usr/lib/postgresql/{}/bin/{}", m, prog); };
  std::error_code ec;
  if (major > 0 && fs::exists(path(major), ec)) return path(major);
  for (int m : InstalledMajors())
    if (m >= major && fs::exists(path(m), ec)) return path(m);
  return prog;
}

bool IsUri(const std::string& s) {
  return s.rfind("postgresql://", 0) == 0 || s.rfind("postgres://", 0) == 0;
}
bool IsConninfo(const std::string& s) { return IsUri(s) || s.find('=') != std::string::npos; }

std::string QuoteConninfoValue(const std::string& v) {
  std::string out = "'";
  for (char c : v) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

std::string PercentEncode(const std::string& v) {
  std::string out;
  for (unsigned char c : v) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') out += char(c);
    else out += fmt::format("%{:02X}", c);
  }
  return out;
}

// A connection string for database `db` (empty: whatever `base` names) on the server `base`
// points at: a conninfo, a URI, a plain database name or empty (the PG* environment).
std::string ConninfoFor(const std::string& base, const std::string& db) {
  if (!IsConninfo(base)) {
    std::string name = db.empty() ? base : db;
    return name.empty() ? std::string() : "dbname=" + QuoteConninfoValue(name);
  }
  if (db.empty()) return base;
  if (IsUri(base))
    return base + (base.find('?') == std::string::npos ? "?" : "&") + "dbname=" + PercentEncode(db);
  return base + " dbname=" + QuoteConninfoValue(db);  // a later keyword wins
}

// Runs a short client command and returns its standard output (at most 16 MiB).
Result<std::string> Capture(const std::vector<std::string>& argv, const std::string& display) {
  LB_ASSIGN_OR_RETURN(auto child, source::ChildProcess::Start(argv, {.display = display}));
  std::string out;
  char buf[65536];
  while (true) {
    ssize_t n = ::read(child->stdout_fd(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (out.size() < (16u << 20)) out.append(buf, size_t(n));
  }
  Status s = child->Wait();
  if (!s.ok()) {
    std::string tail = source::LastLines(child->StderrTail(), 10);
    return Status(s.code(), tail.empty() ? s.message() : s.message() + ":\n" + tail);
  }
  return out;
}

std::vector<std::string> SplitNul(const std::string& s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = s.find('\0', i);
    if (j == std::string::npos) j = s.size();
    out.push_back(s.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

// One query through psql (any libpq connection form works the same as for pg_dump); rows of
// fields, NUL-separated so names may hold any character.
Result<std::vector<std::vector<std::string>>> PsqlQuery(const std::string& conninfo,
                                                        const std::string& sql, int ncols,
                                                        const std::string& purpose) {
  std::vector<std::string> argv = {FindPgProgram("psql", 0), "-X", "-q", "-A", "-t", "-z", "-0",
                                   "--no-password", "-v", "ON_ERROR_STOP=1", "-c", sql};
  if (!conninfo.empty()) argv.push_back("--dbname=" + conninfo);
  auto out = Capture(argv, "psql (" + purpose + ")");
  if (!out.ok())
    return Status(Code::kUnavailable, out.status().message())
        .WithHint("set PGHOST/PGPORT/PGUSER (passwords: PGPASSWORD or ~/.pgpass) or pass "
                  "--dbname CONNINFO");
  std::vector<std::vector<std::string>> rows;
  // -z -0: fields end in NUL, records end in NUL as well; psql ends the last with a newline.
  std::string text = *out;
  if (!text.empty() && text.back() == '\n') text.pop_back();
  auto fields = SplitNul(text);
  for (size_t i = 0; i + size_t(ncols) <= fields.size(); i += size_t(ncols))
    rows.emplace_back(fields.begin() + long(i), fields.begin() + long(i) + ncols);
  return rows;
}

struct ServerFacts {
  int version_num = 0;  // server_version_num, e.g. 150018
  std::string database;  // current_database() of the connection
};

Result<ServerFacts> ProbeServer(const std::string& conninfo) {
  LB_ASSIGN_OR_RETURN(auto rows, PsqlQuery(conninfo,
      "SELECT current_setting('server_version_num'), current_database()", 2,
      "connect and read the server version"));
  if (rows.size() != 1) return Err(Code::kInternal, "unexpected answer from psql");
  ServerFacts f;
  f.version_num = std::atoi(rows[0][0].c_str());
  f.database = rows[0][1];
  return f;
}

// A database name as a file name in the snapshot: '/' and '%' percent-encoded.
std::string DumpFileName(const std::string& db) {
  std::string out;
  for (char c : db) {
    if (c == '/') out += "%2F";
    else if (c == '%') out += "%25";
    else out += c;
  }
  return out + ".dump";
}

// ---- pg dump ----

struct PgDumpArgs {
  std::string database, source, dbname;
  std::vector<std::string> tags;
  bool all = false, no_globals = false;
};

int RunPgDump(const PgDumpArgs& a) {
  if (a.all && !a.database.empty())
    return Fail(Err(Code::kInvalidArgument, "give --database or --all, not both"));
  // The database to connect to first (and to dump, without --all).
  std::string db = a.database;
  if (db.empty() && !IsConninfo(a.dbname)) db = a.dbname;
  if (db.empty() && a.dbname.empty()) {
    const char* env = std::getenv("PGDATABASE");
    db = env && *env ? env : "postgres";
  }
  std::string base = IsConninfo(a.dbname) ? a.dbname : "";
  std::string first = ConninfoFor(base, db);
  auto facts = ProbeServer(first);
  if (!facts.ok()) return Fail(facts.status().WithContext("pg dump"));
  int major = facts->version_num / 10000;
  std::vector<std::string> dbs;
  if (a.all) {
    auto rows = PsqlQuery(first, "SELECT datname FROM pg_database WHERE NOT datistemplate "
                                 "AND datallowconn ORDER BY datname", 1, "list databases");
    if (!rows.ok()) return Fail(rows.status().WithContext("pg dump: list databases"));
    for (auto& row : *rows) dbs.push_back(row[0]);
  } else {
    dbs.push_back(facts->database);
  }
  std::string pg_dump = FindPgProgram("pg_dump", major);
  std::string pg_dumpall = FindPgProgram("pg_dumpall", major);

  source::StreamBackupOptions opts;
  opts.kind = "pg-dump";
  opts.source = a.source.empty() ? DefaultPgSource() : a.source;
  opts.tags = a.tags;
  opts.threads = Globals().threads;
  json databases = json::array();
  // Globals first: small, and a failure to read pg_authid (no superuser) shows at once.
  if (!a.no_globals)
    opts.streams.push_back({"globals.sql",
                            {pg_dumpall, "--globals-only", "--no-password", "--dbname=" + first},
                            "pg_dumpall --globals-only"});
  for (const auto& d : dbs) {
    std::string file = DumpFileName(d);
    // The display names the database, never the conninfo (it may hold a password).
    opts.streams.push_back({file,
                            {pg_dump, "-Fc", "--no-password", "--dbname=" + ConninfoFor(base, d)},
                            "pg_dump -Fc " + d});
    databases.push_back({{"name", d}, {"file", file}});
  }
  opts.extra = {{"databases", databases},
                {"server_version_num", facts->version_num},
                {"pg_dump", pg_dump},
                {"pg_dump_major", major},
                {"format", "custom"},
                {"globals", !a.no_globals}};
  auto r = OpenBackupTarget(LockMode::kShared, "pg dump");
  if (!r.ok()) return Fail(r.status());
  source::BackupProgress progress;
  std::unique_ptr<ProgressBar> bar;
  if (ProgressWanted()) {
    opts.progress = &progress;
    size_t total = opts.streams.size();
    bar = std::make_unique<ProgressBar>("pg dump", [&progress, total] {
      return ProgressSample{progress.files_done, total, progress.bytes_done, 0, false};
    });
  }
  auto res = source::BackupCommands(*r->repo, opts);
  bar.reset();
  if (!res.ok()) return Fail(res.status().WithContext("pg dump"));
  for (const auto& s : res->streams) WarnStderr(s.display.substr(0, s.display.find(' ')), s.stderr_tail);
  const auto& s = res->snapshot;
  const int copied = CopyToOtherRepos(*r->repo, s);
  if (Globals().json) {
    json j = s.ToJson(true);
    j["added"] = res->writer.bytes_new_raw;
    j["stored"] = res->writer.bytes_new_stored;
    PrintJson(j);
  } else {
    std::string files;
    for (const auto& st : res->streams)
      files += fmt::format("{}{} ({})", files.empty() ? "" : ", ", PrintableName(st.name),
                           HumanBytes(st.bytes));
    std::printf("pg-dump snapshot %s saved: %s; added %s (%s stored) in %.1f s\n",
                s.id.Short().c_str(), files.c_str(), HumanBytes(res->writer.bytes_new_raw).c_str(),
                HumanBytes(res->writer.bytes_new_stored).c_str(), res->seconds);
  }
  return copied;
}

// ---- pg restore-dump ----

struct RestoreDumpArgs {
  std::string ref, dbname, database, tmpdir;
  bool globals = false, globals_only = false;
  int jobs = 0;
  std::vector<std::string> pass;  // after "--": given to pg_restore as they are
};

// Streams a stored file into a child's stdin; the child's failure wins over our EPIPE.
Status StreamInto(repo::Repository& repo, const repo::Node& node, source::ChildProcess& child) {
  auto written = source::WriteFileContent(repo, node, child.stdin_fd(), Globals().threads);
  child.CloseStdin();
  Status exit = child.Wait();
  if (!exit.ok()) {
    std::string tail = source::LastLines(child.StderrTail(), 20);
    return Status(exit.code(), tail.empty() ? exit.message()
                                            : exit.message() + "; its last lines on stderr:\n" + tail);
  }
  if (!written.ok())
    return written.status().WithContext(fmt::format("feed '{}' to '{}'", PrintableName(node.name),
                                                    child.display()));
  return Status::Ok();
}

struct GlobalsReport {
  int errors = 0, already_existed = 0;
};

// globals.sql through psql without ON_ERROR_STOP: roles that exist already (always the
// bootstrap superuser) are reported, not fatal.
Result<GlobalsReport> RestoreGlobals(repo::Repository& repo, const repo::Snapshot& snap,
                                     const std::string& conninfo, int major) {
  auto node = source::FindSnapshotFile(repo, snap, "globals.sql");
  if (!node.ok()) return node.status().WithContext("restore globals");
  std::vector<std::string> argv = {FindPgProgram("psql", major), "-X", "-q", "--no-password",
                                   "-v", "ON_ERROR_STOP=0", "--dbname=" + conninfo};
  LB_ASSIGN_OR_RETURN(auto child, source::ChildProcess::Start(
      argv, {.stdin_mode = source::ChildOptions::Input::kPipe,
             .stdout_mode = source::ChildOptions::Output::kStderr,
             .display = "psql (globals.sql)"}));
  LB_RETURN_IF_ERROR(StreamInto(repo, *node, *child).WithContext("restore globals"));
  GlobalsReport rep;
  std::string tail = child->StderrTail();
  size_t i = 0;
  while (i < tail.size()) {
    size_t nl = tail.find('\n', i);
    if (nl == std::string::npos) nl = tail.size();
    std::string line = tail.substr(i, nl - i);
    i = nl + 1;
    if (line.find("ERROR:") == std::string::npos) {
      if (!line.empty() && line.find("NOTICE:") == std::string::npos)
        LogWarning("psql: {}", line);
      continue;
    }
    rep.errors++;
    if (line.find("already exists") != std::string::npos) rep.already_existed++;
    else LogWarning("psql: {}", line);
  }
  return rep;
}

// Picks the database dump of a pg-dump snapshot: --database, else the only one.
Result<repo::Node> FindDump(repo::Repository& repo, const repo::Snapshot& snap,
                            const std::string& database) {
  if (!database.empty()) {
    std::string file = DumpFileName(database);
    for (const auto& d : snap.extra.value("databases", json::array()))
      if (d.value("name", "") == database) file = d.value("file", file);
    return source::FindSnapshotFile(repo, snap, file);
  }
  std::vector<std::string> names;
  for (const auto& d : snap.extra.value("databases", json::array()))
    names.push_back(d.value("name", ""));
  if (names.size() == 1) return FindDump(repo, snap, names[0]);
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "'" : ", '") + n + "'";
  return Status(Code::kInvalidArgument,
                fmt::format("snapshot {} holds {} database dumps ({}); pick one with --database",
                            snap.id.Short(), names.size(), list));
}

// A temporary file removed on every path out.
struct TempFile {
  std::string path;
  int fd = -1;
  ~TempFile() {
    if (fd >= 0) ::close(fd);
    if (!path.empty()) ::unlink(path.c_str());
  }
};

int RunRestoreDump(const RestoreDumpArgs& a) {
  auto r = OpenFirstReachable(LockMode::kNone, "pg restore-dump");
  if (!r.ok()) return Fail(r.status());
  auto snap = repo::FindSnapshot(*r->repo, a.ref, "pg-dump");
  if (!snap.ok()) return Fail(snap.status());
  if (snap->kind != "pg-dump")
    return Fail(Err(Code::kInvalidArgument, "snapshot {} is a {} snapshot, not a pg-dump",
                    snap->id.Short(), snap->kind));
  std::string conninfo = ConninfoFor(IsConninfo(a.dbname) ? a.dbname : "",
                                     IsConninfo(a.dbname) ? "" : a.dbname);
  auto facts = ProbeServer(conninfo);
  if (!facts.ok()) return Fail(facts.status().WithContext("pg restore-dump"));
  int major = std::max(facts->version_num / 10000, snap->extra.value("pg_dump_major", 0));

  json out = {{"snapshot", snap->id.Hex()}};
  if (a.globals || a.globals_only) {
    auto g = RestoreGlobals(*r->repo, *snap, conninfo, major);
    if (!g.ok()) return Fail(g.status());
    out["globals"] = {{"errors", g->errors}, {"already_existed", g->already_existed}};
    if (!Globals().json)
      std::printf("restored globals.sql of snapshot %s: %d statement(s) failed, %d of them "
                  "because the object already existed\n",
                  snap->id.Short().c_str(), g->errors, g->already_existed);
    if (a.globals_only) {
      if (Globals().json) PrintJson(out);
      return 0;
    }
  }

  auto dump = FindDump(*r->repo, *snap, a.database);
  if (!dump.ok()) return Fail(dump.status());
  std::string pg_restore = FindPgProgram("pg_restore", major);
  std::vector<std::string> argv = {pg_restore, "--no-password", "--dbname=" + conninfo};
  std::string display = "pg_restore";
  if (a.jobs > 1) {
    argv.push_back("--jobs=" + std::to_string(a.jobs));
    display += " --jobs=" + std::to_string(a.jobs);
  }
  for (const auto& p : a.pass) {
    argv.push_back(p);
    display += " " + p;
  }
  Status s;
  std::unique_ptr<source::ChildProcess> child;
  if (a.jobs > 1) {
    // Parallel restore seeks in the archive: it needs a file, of the dump's size.
    std::string dir = a.tmpdir;
    if (dir.empty())
      if (const char* t = std::getenv("TMPDIR"); t && *t) dir = t;
    if (dir.empty()) dir = "/tmp";
    TempFile tmp;
    tmp.path = dir + "/lifeboat-restore-XXXXXX.dump";
    tmp.fd = mkostemps(tmp.path.data(), 5, O_CLOEXEC);
    if (tmp.fd < 0) {
      Status e = ErrnoStatus(errno, fmt::format("create a temporary file in '{}'", dir));
      tmp.path.clear();
      return Fail(e.WithHint("--jobs needs free space of the dump's size there; see --tmpdir"));
    }
    auto n = source::WriteFileContent(*r->repo, *dump, tmp.fd, Globals().threads);
    if (!n.ok())
      return Fail(n.status().WithContext(fmt::format("write '{}'", tmp.path)));
    ::close(tmp.fd);
    tmp.fd = -1;
    argv.push_back(tmp.path);
    auto c = source::ChildProcess::Start(
        argv, {.stdout_mode = source::ChildOptions::Output::kStderr, .display = display});
    if (!c.ok()) return Fail(c.status());
    child = std::move(*c);
    s = child->Wait();
    if (!s.ok()) {
      std::string tail = source::LastLines(child->StderrTail(), 20);
      if (!tail.empty())
        s = Status(s.code(), s.message() + "; its last lines on stderr:\n" + tail);
    }
  } else {
    auto c = source::ChildProcess::Start(
        argv, {.stdin_mode = source::ChildOptions::Input::kPipe,
               .stdout_mode = source::ChildOptions::Output::kStderr,
               .display = display});
    if (!c.ok()) return Fail(c.status());
    child = std::move(*c);
    s = StreamInto(*r->repo, *dump, *child);
  }
  if (!s.ok()) return Fail(s.WithContext("pg restore-dump"));
  WarnStderr("pg_restore", child->StderrTail());
  out["file"] = dump->name;
  out["bytes"] = dump->size;
  if (Globals().json)
    PrintJson(out);
  else
    std::printf("restored '%s' (%s) of snapshot %s with %s\n", PrintableName(dump->name).c_str(),
                HumanBytes(dump->size).c_str(), snap->id.Short().c_str(), display.c_str());
  return 0;
}

}  // namespace

void AddStreamCommands(CLI::App& app, Runner& run) {
  auto* backup = app.get_subcommand("backup");
  static CommandArgs ca;
  auto* cmd = backup->add_subcommand(
      "command", "back up the standard output of a command (kubectl, helm, ...), streamed");
  cmd->add_option("--name", ca.name, "source name of the snapshot, e.g. k8s-config")->required();
  cmd->add_option("--filename", ca.filename, "file name of the output (default: NAME.out)");
  cmd->add_option("--tag", ca.tags, "tag the snapshot (repeatable)")->allow_extra_args(false);
  cmd->add_option("--host", ca.host, "host name to record (default: this host)");
  cmd->add_option("COMMAND", ca.argv,
                  "after --: the command and its arguments, run without a shell; a non-zero "
                  "exit writes no snapshot. Never pass secrets as arguments (they are shown "
                  "and recorded): use the environment or files")
      ->required();
  cmd->callback([&] { run = [] { return RunBackupCommand(ca); }; });

  static DumpArgs da;
  auto* dump = app.add_subcommand("dump", "write one file of a snapshot to stdout, verified");
  dump->add_option("SNAPSHOT", da.ref, "snapshot id, prefix or 'latest'")->required();
  dump->add_option("FILE", da.file, "path of the file in the snapshot (default: its only file)");
  dump->add_option("-o,--output", da.output, "write to this file instead of stdout");
  dump->callback([&] { run = [] { return RunDump(da); }; });

  auto* pg = app.get_subcommand("pg");
  static PgDumpArgs pa;
  auto* pgd = pg->add_subcommand(
      "dump", "logical dump (pg_dump -Fc, pg_dumpall --globals-only) streamed into a snapshot");
  pgd->add_option("--database", pa.database, "database to dump (default: $PGDATABASE or postgres)");
  pgd->add_flag("--all", pa.all, "dump every database that accepts connections");
  pgd->add_option("--source", pa.source, "cluster name in the repository (default: main)");
  pgd->add_option("--tag", pa.tags, "tag the snapshot (repeatable)")->allow_extra_args(false);
  pgd->add_option("--dbname", pa.dbname,
                  "libpq connection string (default: PG* environment); never printed");
  pgd->add_flag("--no-globals", pa.no_globals,
                "leave out roles and tablespaces (pg_dumpall --globals-only needs a superuser)");
  pgd->callback([&] { run = [] { return RunPgDump(pa); }; });

  static RestoreDumpArgs ra;
  auto* pgr = pg->add_subcommand(
      "restore-dump", "stream a pg-dump snapshot into pg_restore (and globals into psql)");
  pgr->add_option("SNAPSHOT", ra.ref, "pg-dump snapshot id, prefix or 'latest'")->required();
  pgr->add_option("--dbname", ra.dbname,
                  "database name or libpq connection string to restore into (with pg_restore "
                  "--create: the database to connect to first); never printed")
      ->required();
  pgr->add_option("--database", ra.database,
                  "which database of the snapshot (default: its only one)");
  pgr->add_flag("--globals", ra.globals,
                "first run globals.sql (roles) through psql; existing roles are reported");
  pgr->add_flag("--globals-only", ra.globals_only, "restore globals.sql only");
  pgr->add_option("-j,--jobs", ra.jobs,
                  "parallel pg_restore; needs a temporary copy of the dump (disk space of its "
                  "size) in --tmpdir");
  pgr->add_option("--tmpdir", ra.tmpdir, "directory for the --jobs copy (default: $TMPDIR, /tmp)");
  pgr->add_option("PG_RESTORE_ARGS", ra.pass,
                  "after --: more pg_restore options, e.g. --clean --if-exists --create");
  pgr->callback([&] { run = [] { return RunRestoreDump(ra); }; });
}

}  // namespace lb::cli
