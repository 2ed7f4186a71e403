#include "pg/pg_restore.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string_view>
#include <thread>

#include "pg/base_backup.h"
#include "pg/wal.h"
#include "repo/names.h"
#include "repo/tree.h"
#include "source/files_restore.h"
#include "util/log.h"

namespace lb::pg {

namespace fs = std::filesystem;
using Kind = RecoveryTarget::Kind;

bool ParseTargetTime(const std::string& text, int64_t& unix_ns) {
  int y, mo, d, h, mi, sec;
  int consumed = 0;
  if (sscanf(text.c_str(), "%4d-%2d-%2d%*1[ T]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec,
             &consumed) != 6)
    return false;
  struct tm tm {};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  int64_t ns = 0;
  size_t i = repo::ParseFraction(text, size_t(consumed), ns);
  while (i < text.size() && text[i] == ' ') ++i;
  int64_t offset_s = 0;
  if (i < text.size()) {
    if (text[i] == 'Z' || text.compare(i, 3, "UTC") == 0) {
      // UTC
    } else if (text[i] == '+' || text[i] == '-') {
      int sign = text[i] == '-' ? -1 : 1;
      int oh = 0, om = 0;
      std::string rest = text.substr(i + 1);
      if (sscanf(rest.c_str(), "%2d:%2d", &oh, &om) < 1 && sscanf(rest.c_str(), "%2d%2d", &oh, &om) < 1)
        return false;
      offset_s = sign * (oh * 3600 + om * 60);
    } else {
      return false;
    }
  }
  unix_ns = (int64_t(timegm(&tm)) - offset_s) * 1000000000 + ns;
  return true;
}

Result<repo::Snapshot> ChooseBackup(repo::Repository& repo, const PgRestoreOptions& opts) {
  if (!opts.backup.empty()) {
    LB_ASSIGN_OR_RETURN(auto s, repo::FindSnapshot(repo, opts.backup, kBaseKind));
    if (s.kind != kBaseKind) return Err(Code::kInvalidArgument, "snapshot {} is not a PostgreSQL base backup", s.id.Short());
    return s;
  }
  LB_ASSIGN_OR_RETURN(auto backups, ListBaseBackups(repo, opts.source));
  if (backups.empty())
    return Err(Code::kNotFound, "the repository has no base backup of source '{}'", opts.source);
  if (opts.target.kind == Kind::kTime) {
    int64_t target = 0;
    if (!ParseTargetTime(opts.target.value, target))
      return Err(Code::kInvalidArgument, "cannot parse target time '{}' (want 'YYYY-MM-DD "
                                         "HH:MM:SS[.ffffff][+HH]')", opts.target.value);
    for (auto it = backups.rbegin(); it != backups.rend(); ++it) {
      int64_t stop = 0;
      if (repo::ParseRfc3339(it->extra.value("stop_time", ""), stop) && stop <= target) return *it;
    }
    return Err(Code::kNotFound, "no base backup ended before {}; the earliest ended at {}",
               opts.target.value, backups.front().extra.value("stop_time", "?"));
  }
  if (opts.target.kind == Kind::kLsn) {
    uint64_t target = 0;
    if (!ParseLsn(opts.target.value, target))
      return Err(Code::kInvalidArgument, "cannot parse target LSN '{}'", opts.target.value);
    for (auto it = backups.rbegin(); it != backups.rend(); ++it) {
      uint64_t stop = 0;
      if (ParseLsn(it->extra.value("stop_lsn", ""), stop) && stop <= target) return *it;
    }
    return Err(Code::kNotFound, "no base backup ended before LSN {}", opts.target.value);
  }
  return backups.back();
}

namespace {

Status WriteText(const std::string& path, const std::string& text, uid_t uid, gid_t gid) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return Err(Code::kIo, "cannot write '{}'", path);
  if (geteuid() == 0 && chown(path.c_str(), uid, gid) != 0)
    return ErrnoStatus(errno, fmt::format("chown '{}'", path));
  return Status::Ok();
}

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "''";
    else out += c;
  }
  return out + "'";
}

constexpr char kBegin[] = "# lifeboat recovery settings: begin";
constexpr char kEnd[] = "# lifeboat recovery settings: end";

// Rewrites postgresql.auto.conf: drops an earlier lifeboat block, appends a new one.
Status WriteRecoverySettings(const std::string& pgdata, const PgRestoreOptions& opts,
                             uid_t uid, gid_t gid) {
  std::string path = pgdata + "/postgresql.auto.conf";
  std::ifstream in(path);
  std::string line, kept;
  bool inside = false;
  while (std::getline(in, line)) {
    if (line == kBegin) inside = true;
    if (!inside) kept += line + "\n";
    if (line == kEnd) inside = false;
  }
  std::string block = std::string(kBegin) + "\n";
  block += "restore_command = " + Quote(opts.restore_command + " %f %p") + "\n";
  switch (opts.target.kind) {
    case Kind::kTime: block += "recovery_target_time = " + Quote(opts.target.value) + "\n"; break;
    case Kind::kLsn: block += "recovery_target_lsn = " + Quote(opts.target.value) + "\n"; break;
    case Kind::kXid: block += "recovery_target_xid = " + Quote(opts.target.value) + "\n"; break;
    case Kind::kName: block += "recovery_target_name = " + Quote(opts.target.value) + "\n"; break;
    case Kind::kImmediate: block += "recovery_target = 'immediate'\n"; break;
    case Kind::kLatest: break;
  }
  if (opts.target.kind != Kind::kLatest)
    block += "recovery_target_action = " + Quote(opts.target_action) + "\n";
  block += "recovery_target_timeline = " + Quote(opts.target_timeline) + "\n";
  if (opts.no_archive) block += "archive_mode = off\n";
  block += std::string(kEnd) + "\n";
  return WriteText(path, kept + block, uid, gid);
}

std::string BinDir(int version) {
  std::string dir = fmt::format("/usr/lib/postgresql/{}/bin", version / 100);
  if (fs::exists(dir + "/pg_ctl")) return dir;
  return "";  // rely on PATH
}

// Runs a command as `uid` (when root) and waits for it; returns its exit status. As another
// user it runs the way `runuser -u USER` would: with that user's supplementary groups (not
// root's) and HOME, USER and LOGNAME set to that user's. The server and its restore_command
// inherit them: with root's HOME, an s3 restore_command running as postgres failed on every
// WAL file reading the AWS config file in root's home ("Permission denied").
int RunAs(const std::vector<std::string>& argv, uid_t uid, gid_t gid) {
  const bool switch_user = geteuid() == 0 && uid != 0;
  // Everything the child needs is prepared here: after fork in a threaded process only
  // async-signal-safe calls are allowed, and user, group and environment lookups are not.
  std::vector<gid_t> groups;
  std::vector<std::string> env;
  std::string name, home;
  if (switch_user) {
    std::vector<char> buf(16384);
    passwd pw{};
    passwd* found = nullptr;
    if (getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr) {
      name = found->pw_name;
      home = found->pw_dir;
      int n = 64;
      groups.resize(n);
      if (getgrouplist(name.c_str(), gid, groups.data(), &n) < 0) {
        groups.resize(n);
        if (getgrouplist(name.c_str(), gid, groups.data(), &n) < 0) n = 0;
      }
      groups.resize(n);
    }
  }
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view kv(*e);
    if (switch_user &&
        (kv.starts_with("HOME=") || kv.starts_with("USER=") || kv.starts_with("LOGNAME="))) {
      continue;
    }
    env.emplace_back(kv);
  }
  if (!name.empty()) {
    env.push_back("HOME=" + home);
    env.push_back("USER=" + name);
    env.push_back("LOGNAME=" + name);
  }
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);

  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    if (switch_user) {
      if (setgroups(groups.size(), groups.data()) != 0 || setgid(gid) != 0 || setuid(uid) != 0) {
        _exit(126);
      }
    }
    int devnull = ::open("/dev/null", O_RDWR);
    if (devnull >= 0) {
      dup2(devnull, 0);
      dup2(devnull, 1);
    }
    execvpe(args[0], args.data(), envp.data());
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool PidAlive(const std::string& pidfile) {
  std::ifstream in(pidfile);
  long pid = 0;
  if (!(in >> pid) || pid <= 0) return false;
  return kill(pid_t(pid), 0) == 0 || errno == EPERM;
}

}  // namespace

Result<PgRestoreResult> RestoreCluster(repo::Repository& repo, const PgRestoreOptions& opts) {
  auto t0 = std::chrono::steady_clock::now();
  if (opts.pgdata.empty()) return Err(Code::kInvalidArgument, "no --pgdata given");
  if (opts.restore_command.empty())
    return Err(Code::kInvalidArgument, "no restore_command to write");
  std::error_code ec;
  if (fs::exists(opts.pgdata, ec) && !fs::is_empty(opts.pgdata, ec)) {
    if (!opts.delta)
      return Status(Code::kFailedPrecondition,
                    fmt::format("'{}' is not empty", opts.pgdata))
          .WithHint("restore into an empty directory, or pass --delta to update it in place");
    if (PidAlive(opts.pgdata + "/postmaster.pid"))
      return Err(Code::kFailedPrecondition, "PostgreSQL is running in '{}'; stop it first",
                 opts.pgdata);
  }
  PgRestoreResult res;
  LB_ASSIGN_OR_RETURN(res.backup, ChooseBackup(repo, opts));
  const auto& extra = res.backup.extra;

  // The tablespace trees, by oid.
  LB_ASSIGN_OR_RETURN(Bytes root_blob, repo.LoadBlob(res.backup.tree));
  LB_ASSIGN_OR_RETURN(auto root_nodes, repo::DecodeTree(root_blob));
  std::map<std::string, crypto::Id> spc_trees;
  uid_t uid = 0;
  gid_t gid = 0;
  for (const auto& n : root_nodes) {
    if (n.name == "PG_VERSION") {
      uid = n.uid;
      gid = n.gid;
    }
    if (n.name == kTablespaceDir && n.type == repo::NodeType::kDir) {
      LB_ASSIGN_OR_RETURN(Bytes b, repo.LoadBlob(n.subtree));
      LB_ASSIGN_OR_RETURN(auto spc, repo::DecodeTree(b));
      for (const auto& t : spc) spc_trees[t.name] = t.subtree;
    }
  }

  source::FileRestoreOptions fo;
  fo.target = opts.pgdata;
  fo.threads = opts.threads;
  fo.delta = opts.delta;
  fo.excludes = {std::string("/") + kTablespaceDir};
  if (opts.delta) {
    // Local files PostgreSQL writes itself; a delta restore must not keep stale ones either.
    fo.excludes.push_back("/lifeboat-recovery.log");
  }
  LB_ASSIGN_OR_RETURN(auto fr, source::RestoreFiles(repo, res.backup, fo));
  res.files += fr.files;
  res.bytes += fr.bytes;
  res.files_kept += fr.files_kept;
  res.files_removed += fr.removed;
  for (auto& d : fr.damaged) res.damaged.push_back(d);
  if (!fr.errors.empty())
    return Err(Code::kIo, "restore of the data directory failed: {}", fr.errors[0]);

  std::string spcmap;
  for (const auto& t : extra.value("tablespaces", nlohmann::json::array())) {
    std::string oid = t.value("oid", "");
    std::string location = t.value("location", "");
    auto mapped = opts.tablespace_map.find(location);
    std::string target = mapped != opts.tablespace_map.end() ? mapped->second : location;
    if (!spc_trees.count(oid))
      return Err(Code::kCorruption, "backup {} lacks the tree of tablespace {}",
                 res.backup.id.Short(), oid);
    if (!opts.delta && fs::exists(target, ec) && !fs::is_empty(target, ec))
      return Err(Code::kFailedPrecondition, "tablespace directory '{}' is not empty (map it "
                                            "elsewhere with --tablespace-map {}=NEW)",
                 target, location);
    source::FileRestoreOptions to = fo;
    to.target = target;
    to.root = spc_trees[oid];
    to.excludes.clear();
    LB_ASSIGN_OR_RETURN(auto tr, source::RestoreFiles(repo, res.backup, to));
    res.files += tr.files;
    res.bytes += tr.bytes;
    for (auto& d : tr.damaged) res.damaged.push_back(d);
    if (!tr.errors.empty())
      return Err(Code::kIo, "restore of tablespace {} failed: {}", oid, tr.errors[0]);
    if (geteuid() == 0 && (chown(target.c_str(), uid, gid) != 0 || chmod(target.c_str(), 0700) != 0))
      return ErrnoStatus(errno, fmt::format("set owner of '{}'", target));
    std::string link = opts.pgdata + "/pg_tblspc/" + oid;
    ::unlink(link.c_str());
    fs::create_directories(opts.pgdata + "/pg_tblspc", ec);
    if (symlink(target.c_str(), link.c_str()) != 0)
      return ErrnoStatus(errno, fmt::format("link '{}'", link));
    if (geteuid() == 0) (void)lchown(link.c_str(), uid, gid);
    spcmap += oid + " " + target + "\n";
  }
  if (!spcmap.empty())
    LB_RETURN_IF_ERROR(WriteText(opts.pgdata + "/tablespace_map", spcmap, uid, gid));

  // PostgreSQL insists on a private data directory.
  if (chmod(opts.pgdata.c_str(), 0700) != 0) return ErrnoStatus(errno, "chmod data directory");
  if (geteuid() == 0 && chown(opts.pgdata.c_str(), uid, gid) != 0)
    return ErrnoStatus(errno, "chown data directory");
  fs::create_directories(opts.pgdata + "/pg_wal/archive_status", ec);
  if (geteuid() == 0) {
    (void)chown((opts.pgdata + "/pg_wal").c_str(), uid, gid);
    (void)chown((opts.pgdata + "/pg_wal/archive_status").c_str(), uid, gid);
  }
  LB_RETURN_IF_ERROR(WriteText(opts.pgdata + "/recovery.signal", "", uid, gid));
  LB_RETURN_IF_ERROR(WriteRecoverySettings(opts.pgdata, opts, uid, gid));
  res.restore_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  res.total_seconds = res.restore_seconds;
  if (!opts.start) return res;

  // Run recovery to the target and wait for the promotion.
  int version = extra.value("pg_version", 0);
  std::string bin = BinDir(version);
  std::string pg_ctl = bin.empty() ? "pg_ctl" : bin + "/pg_ctl";
  std::string log = opts.pgdata + "/lifeboat-recovery.log";
  ::unlink(log.c_str());
  std::string server_opts = "-c logging_collector=off";
  if (opts.port) server_opts += fmt::format(" -p {}", opts.port);
  int rc = RunAs({pg_ctl, "-D", opts.pgdata, "-l", log, "-o", server_opts, "-W", "start"}, uid, gid);
  if (rc != 0) return Err(Code::kUnavailable, "pg_ctl start failed (exit {}); see '{}'", rc, log);
  res.started = true;
  const auto started = std::chrono::steady_clock::now();
  auto deadline = started + std::chrono::seconds(opts.start_timeout_seconds);
  // pg_ctl -W returns before the postmaster has written its pid file: a server that is gone
  // counts only once it was seen, or when it never showed up at all.
  bool seen_running = false;
  while (true) {
    // Looked at before the log, so that a server which said it was ready and then went away
    // counts as ready.
    const bool alive = PidAlive(opts.pgdata + "/postmaster.pid");
    seen_running = seen_running || alive;
    std::ifstream in(log);
    std::string line;
    bool ready = false, stopped = false;
    std::string fatal;
    while (std::getline(in, line)) {
      if (line.find("recovery stopping") != std::string::npos)
        res.recovery_point = line.substr(line.find("recovery stopping"));
      if (line.find("last completed transaction was at log time") != std::string::npos)
        res.last_transaction_time = line.substr(line.find("log time ") + 9);
      if (line.find("database system is ready to accept connections") != std::string::npos)
        ready = true;
      if (line.find("pausing at the end of recovery") != std::string::npos ||
          line.find("recovery has paused") != std::string::npos)
        ready = true;
      if (line.find("database system is shut down") != std::string::npos) stopped = true;
      if (line.find("FATAL:") != std::string::npos || line.find("PANIC:") != std::string::npos)
        fatal = line.substr(line.find(line.find("FATAL:") != std::string::npos ? "FATAL:" : "PANIC:"));
    }
    if (!fatal.empty() && !alive)
      return Status(Code::kFailedPrecondition, "recovery failed: " + fatal)
          .WithHint(fmt::format("the server log is '{}'; a missing WAL segment shows as "
                                "'recovery ended before configured recovery target was reached'",
                                log));
    if (ready || (stopped && opts.target_action == "shutdown")) break;
    // Stopped from outside (pg_ctl stop, a signal, the OOM killer) before recovery finished:
    // nothing will finish it, so waiting out the hour would only hide that.
    if (!alive && (seen_running || std::chrono::steady_clock::now() - started >
                                       std::chrono::seconds(60)))
      return Status(Code::kFailedPrecondition,
                    fmt::format("the server {} before recovery finished",
                                seen_running ? "stopped" : "did not start"))
          .WithHint(fmt::format("see the server log '{}'", log));
    if (std::chrono::steady_clock::now() > deadline)
      return Err(Code::kUnavailable, "recovery did not finish within {} s; see '{}'",
                 opts.start_timeout_seconds, log);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  res.total_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return res;
}

}  // namespace lb::pg
