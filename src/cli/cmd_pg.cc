// PostgreSQL commands: pg backup, wal-push, wal-get, restore, wal-verify, info.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>

#include "cli/audit_hook.h"
#include "cli/common.h"
#include "cli/progress.h"
#include "pg/archive_report.h"
#include "pg/base_backup.h"
#include "pg/pg_restore.h"
#include "pg/wal.h"
#include "repo/names.h"
#include "repo/retention.h"
#include "util/log.h"

namespace lb::cli {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::string DefaultSource() {
  const char* s = std::getenv("LIFEBOAT_PG_SOURCE");
  return s && *s ? s : "main";
}

// wal-get must tell PostgreSQL "not in the archive" (exit 1: recovery ends there) apart from
// "could not look" (exit > 125: recovery stops with FATAL instead of promoting early).
constexpr int kWalGetMissing = 1;
constexpr int kWalGetError = 255;

struct PgBackupArgs {
  std::string type = "incr", source, pgdata, dbname;
  std::vector<std::string> tags;
  uint32_t block_size = 65536;
  int wal_timeout = 300;
};

int RunPgBackup(const PgBackupArgs& a) {
  if (a.type != "full" && a.type != "incr")
    return Fail(Err(Code::kInvalidArgument, "--type must be full or incr, not '{}'", a.type));
  auto r = OpenBackupTarget(LockMode::kShared, "pg backup");
  if (!r.ok()) return Fail(r.status());
  pg::BaseBackupOptions opts;
  opts.conninfo = a.dbname;
  opts.pgdata = a.pgdata;
  opts.source = a.source.empty() ? DefaultSource() : a.source;
  opts.full = a.type == "full";
  opts.tags = a.tags;
  opts.block_size = a.block_size;
  opts.wal_timeout_seconds = a.wal_timeout;
  opts.threads = Globals().threads;
  source::BackupProgress progress;
  std::unique_ptr<ProgressBar> bar = BackupProgressBar("pg backup", progress);
  if (bar) opts.progress = &progress;
  auto res = pg::BackupCluster(*r->repo, opts);
  bar.reset();
  if (!res.ok()) return Fail(res.status().WithContext("pg backup failed"));
  for (const auto& b : res->bad_pages) std::fprintf(stderr, "warning: bad page: %s\n", b.c_str());
  const auto& s = res->snapshot;
  const int copied = CopyToOtherRepos(*r->repo, s);
  if (Globals().json) {
    json j = s.ToJson(true);
    j["bad_pages"] = res->bad_pages;
    PrintJson(j);
  } else {
    std::printf("%s backup %s of cluster %s: LSN %s - %s, %s read, %s added (%s stored), "
                "%llu files (%llu unchanged) in %.1f s\n",
                s.extra.value("type", "").c_str(), s.id.Short().c_str(),
                s.extra.value("system_identifier", "").c_str(),
                s.extra.value("start_lsn", "").c_str(), s.extra.value("stop_lsn", "").c_str(),
                HumanBytes(res->files.bytes_read).c_str(),
                HumanBytes(res->files.writer.bytes_new_raw).c_str(),
                HumanBytes(res->files.writer.bytes_new_stored).c_str(),
                (unsigned long long)res->files.files,
                (unsigned long long)res->files.files_unchanged, res->seconds);
  }
  if (!res->bad_pages.empty()) {
    std::fprintf(stderr, "error: %zu page(s) failed checksum verification (listed above); the "
                         "backup was stored, but the cluster has damaged data\n",
                 res->bad_pages.size());
    return ExitCodeFor(Code::kCorruption);
  }
  return copied;
}

// Pushes to every repository; succeeds only when all have the file, so PostgreSQL keeps
// the segment (and retries) until each copy is durable. A retry is harmless for the
// repositories that already have it (same content is accepted).
int RunWalPush(const std::string& path, const std::string& src, int level) {
  auto urls = RepoUrls();
  if (!urls.ok()) return Fail(urls.status().WithContext(fmt::format("wal-push '{}'", path)));
  Status first_error;
  for (const auto& url : *urls) {
    auto r = OpenRepoAt(url, LockMode::kNone, "wal-push");
    Status s = r.status();
    if (r.ok()) {
      auto res = pg::PushWal(*r->repo, src.empty() ? DefaultSource() : src, path, level);
      s = res.status();
      if (res.ok())
        LogInfo("archived '{}' to '{}' ({} bytes){}", path, url, res->bytes,
                res->already_there ? ", already there" : "");
    }
    if (s.ok()) continue;
    s = s.WithContext(fmt::format("wal-push '{}' to '{}'", path, url));
    if (urls->size() > 1 && first_error.ok()) Fail(s);  // the others are still tried
    if (first_error.ok()) first_error = s;
  }
  if (!first_error.ok()) {
    if (urls->size() > 1) return ExitCodeFor(first_error.code());
    return Fail(first_error);
  }
  return 0;
}

int RunWalGet(const std::string& name, const std::string& dest, const std::string& src,
              int prefetch) {
  std::string source = src.empty() ? DefaultSource() : src;
  // A segment fetched ahead by an earlier call: move it into place.
  std::string spool = "lifeboat-spool";
  pg::SegmentName seg;
  bool is_segment = pg::ParseSegmentName(name, seg);
  if (is_segment && ::rename((spool + "/" + name).c_str(), dest.c_str()) == 0) {
    LogInfo("'{}' from the prefetch spool", name);
  } else {
    // Repositories in --repo order: the first that has the file wins. "Missing" needs at
    // least one repository to have answered that it does not have it; when every one
    // failed, it is an error (PostgreSQL stops instead of ending recovery early).
    auto urls = RepoUrls();
    if (!urls.ok()) {
      Fail(urls.status().WithContext(fmt::format("wal-get '{}'", name)));
      return kWalGetError;
    }
    bool answered_missing = false, found = false;
    Status last_error;
    for (size_t i = 0; i < urls->size(); ++i) {
      const std::string& url = (*urls)[i];
      // Each repository but the last has a fallback: a server that is gone costs seconds.
      auto r = OpenRepoAt(url, LockMode::kNone, "wal-get", /*has_fallback=*/i + 1 < urls->size());
      Status s = r.ok() ? pg::GetWal(*r->repo, source, name, dest) : r.status();
      if (s.ok()) {
        found = true;
        break;
      }
      if (s.code() == Code::kNotFound && r.ok()) {
        answered_missing = true;
        continue;
      }
      last_error = s.WithContext(fmt::format("wal-get '{}' from '{}'", name, url));
      if (urls->size() > 1) LogWarning("{}", last_error.ToString());
    }
    if (!found) {
      if (answered_missing) {
        LogInfo("'{}' is not in the archive", name);
        return kWalGetMissing;
      }
      if (urls->size() == 1) Fail(last_error);
      return kWalGetError;
    }
  }
  if (!is_segment || prefetch <= 0) return 0;
  // Spooled segments older than this one will never be asked for again.
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(spool, ec))
    if (e.path().filename().string() < name) fs::remove(e.path(), ec);
  // Fetch the next segments in a detached child so PostgreSQL replays this one meanwhile.
  pid_t pid = fork();
  if (pid != 0) return 0;  // parent (or fork failure: prefetch is an optimization)
  setsid();
  if (fork() != 0) _exit(0);  // the grandchild is adopted by init: no zombie for PostgreSQL
  int devnull = ::open("/dev/null", O_RDWR);
  if (devnull >= 0) {
    dup2(devnull, 0);
    dup2(devnull, 1);
    dup2(devnull, 2);
  }
  fs::create_directories(spool, ec);
  int lock = ::open((spool + "/.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock < 0 || flock(lock, LOCK_EX | LOCK_NB) != 0) _exit(0);  // another prefetcher runs
  auto r = OpenFirstReachable(LockMode::kNone, "wal-get prefetch");
  if (!r.ok()) _exit(0);
  auto info = pg::LoadClusterInfo(*r->repo, source);
  uint64_t seg_size = info.ok() && *info ? (*info)->segment_size : pg::kDefaultSegmentSize;
  (void)pg::PrefetchWal(*r->repo, source, name, spool, prefetch, seg_size);
  _exit(0);
}

struct PgRestoreArgs {
  std::string pgdata, source, backup, target_time, target_lsn, target_xid, target_name,
      target_action = "promote", restore_command;
  bool immediate = false, delta = false, start = false, no_archive = false;
  std::string target_timeline = "latest";
  std::vector<std::string> tablespace_map;
  int port = 0;
};

// The restore_command PostgreSQL will run: this binary, this repository, and the path (never
// the contents) of the file holding the secret.
Result<std::string> RestoreCommand(const std::string& source) {
  char self[4096] = {};
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return Err(Code::kInternal, "cannot find this program's path");
  LB_ASSIGN_OR_RETURN(std::vector<std::string> urls, RepoUrls());
  auto q = [](const std::string& s) {
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
  };
  std::string repos;
  for (std::string url : urls) {
    if (url.find("://") == std::string::npos && url.rfind("mem:", 0) != 0)
      url = fs::absolute(url).string();
    repos += (repos.empty() ? "--repo " : " --repo ") + q(url);
  }
  // The same secret, in the same order, as ReadSecret() used to open the repository.
  std::string secret;
  auto env = [](const char* name) {
    const char* v = std::getenv(name);
    return std::string(v ? v : "");
  };
  if (!Globals().key_file.empty())
    secret = "--key-file " + q(fs::absolute(Globals().key_file).string());
  else if (!Globals().password_file.empty())
    secret = "--password-file " + q(fs::absolute(Globals().password_file).string());
  else if (!env("LIFEBOAT_KEY_FILE").empty())
    secret = "--key-file " + q(fs::absolute(env("LIFEBOAT_KEY_FILE")).string());
  else if (!env("LIFEBOAT_PASSWORD_FILE").empty())
    secret = "--password-file " + q(fs::absolute(env("LIFEBOAT_PASSWORD_FILE")).string());
  else
    return Status(Code::kInvalidArgument,
                  "restore_command needs the repository secret in a file, not in "
                  "LIFEBOAT_PASSWORD")
        .WithHint("use LIFEBOAT_KEY_FILE (fastest: 'lifeboat key add --generate-key-file F') "
                  "or LIFEBOAT_PASSWORD_FILE, readable by the database user");
  // wal-get is audited: its records go to the same log, keyed the same way, as this
  // restore's, unless the log is only the default (then each account uses its own).
  std::string audit;
  const AuditSettings as = EffectiveAuditSettings();
  if (as.log_given) audit += " --audit-log " + q(as.log);
  if (!as.key_file.empty()) audit += " --audit-key-file " + q(as.key_file);
  if (as.required) audit += " --audit-required";
  return fmt::format("{} {} {}{} pg wal-get --source {}", q(self), repos, secret, audit,
                     q(source));
}

int RunPgRestore(const PgRestoreArgs& a) {
  pg::PgRestoreOptions opts;
  opts.pgdata = a.pgdata;
  opts.source = a.source.empty() ? DefaultSource() : a.source;
  opts.backup = a.backup;
  opts.delta = a.delta;
  opts.start = a.start;
  opts.port = a.port;
  opts.target_action = a.target_action;
  opts.target_timeline = a.target_timeline;
  opts.no_archive = a.no_archive;
  opts.threads = Globals().threads;
  int targets = 0;
  auto set = [&](pg::RecoveryTarget::Kind k, const std::string& v) {
    if (v.empty()) return;
    opts.target = {k, v};
    ++targets;
  };
  // A time without a zone means UTC here; say so to PostgreSQL too, which would otherwise
  // read it in its own TimeZone setting.
  std::string target_time = a.target_time;
  if (!target_time.empty()) {
    int64_t ns = 0;
    if (!pg::ParseTargetTime(target_time, ns))
      return Fail(Err(Code::kInvalidArgument, "cannot parse --target-time '{}' (want "
                                              "'YYYY-MM-DD HH:MM:SS[.ffffff][+HH[:MM]]')",
                      target_time));
    size_t t = target_time.find_first_of("T ");
    std::string rest = t == std::string::npos ? "" : target_time.substr(t + 1);
    if (rest.find_first_of("+-Z") == std::string::npos && rest.find("UTC") == std::string::npos)
      target_time += "+00";
  }
  set(pg::RecoveryTarget::Kind::kTime, target_time);
  set(pg::RecoveryTarget::Kind::kLsn, a.target_lsn);
  set(pg::RecoveryTarget::Kind::kXid, a.target_xid);
  set(pg::RecoveryTarget::Kind::kName, a.target_name);
  if (a.immediate) set(pg::RecoveryTarget::Kind::kImmediate, "immediate");
  if (targets > 1) return Fail(Err(Code::kInvalidArgument, "give at most one recovery target"));
  if (a.target_action != "promote" && a.target_action != "pause" && a.target_action != "shutdown")
    return Fail(Err(Code::kInvalidArgument, "--target-action must be promote, pause or shutdown"));
  for (const auto& m : a.tablespace_map) {
    size_t eq = m.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == m.size())
      return Fail(Err(Code::kInvalidArgument, "--tablespace-map wants OLD=NEW, got '{}'", m));
    opts.tablespace_map[m.substr(0, eq)] = m.substr(eq + 1);
  }
  if (!a.restore_command.empty()) {
    opts.restore_command = a.restore_command;
  } else {
    auto rc = RestoreCommand(opts.source);
    if (!rc.ok()) return Fail(rc.status());
    opts.restore_command = *rc;
  }
  auto r = OpenFirstReachable(LockMode::kShared, "pg restore");
  if (!r.ok()) return Fail(r.status());
  auto res = pg::RestoreCluster(*r->repo, opts);
  if (!res.ok()) return Fail(res.status().WithContext("pg restore"));
  const auto& b = res->backup;
  if (Globals().json) {
    PrintJson({{"backup", b.id.Hex()}, {"backup_stop_time", b.extra.value("stop_time", "")},
               {"files", res->files}, {"bytes", res->bytes}, {"files_kept", res->files_kept},
               {"files_removed", res->files_removed}, {"damaged", res->damaged},
               {"restore_seconds", res->restore_seconds}, {"started", res->started},
               {"recovery_point", res->recovery_point},
               {"last_transaction_time", res->last_transaction_time},
               {"total_seconds", res->total_seconds}});
  } else {
    std::printf("restored base backup %s (ended %s, LSN %s) into %s: %llu files, %s in %.1f s\n",
                b.id.Short().c_str(), b.extra.value("stop_time", "").c_str(),
                b.extra.value("stop_lsn", "").c_str(), a.pgdata.c_str(),
                (unsigned long long)res->files, HumanBytes(res->bytes).c_str(),
                res->restore_seconds);
    if (a.delta)
      std::printf("delta: %llu files unchanged, %llu removed\n",
                  (unsigned long long)res->files_kept, (unsigned long long)res->files_removed);
    if (res->started) {
      if (!res->recovery_point.empty())
        std::printf("recovery point: %s\n", res->recovery_point.c_str());
      if (!res->last_transaction_time.empty())
        std::printf("last transaction replayed: %s\n", res->last_transaction_time.c_str());
      std::printf("recovered and %s in %.1f s (measured RTO)\n",
                  a.target_action == "promote" ? "promoted" : a.target_action.c_str(),
                  res->total_seconds);
    } else {
      std::printf("recovery settings written; start PostgreSQL to replay WAL\n");
    }
  }
  if (!res->damaged.empty()) {
    for (const auto& d : res->damaged) std::fprintf(stderr, "damaged: %s\n", d.c_str());
    return ExitCodeFor(Code::kCorruption);
  }
  return 0;
}

int RunWalVerify(const std::string& src) {
  auto r = OpenRepo(LockMode::kNone, "wal-verify");
  if (!r.ok()) return Fail(r.status());
  std::string source = src.empty() ? DefaultSource() : src;
  auto rep = pg::VerifyArchive(*r->repo, source);
  if (!rep.ok()) return Fail(rep.status());
  if (Globals().json) {
    json tl = json::array(), bk = json::array();
    for (const auto& t : rep->timelines) {
      json gaps = json::array();
      for (const auto& [a, b] : t.gaps) gaps.push_back({{"from", a}, {"to", b}});
      tl.push_back({{"timeline", t.timeline}, {"segments", t.segments}, {"first", t.first},
                    {"last", t.last}, {"gaps", gaps}});
    }
    for (const auto& w : rep->backups)
      bk.push_back({{"backup", w.backup.id.Hex()}, {"wal_complete", w.wal_complete},
                    {"missing", w.missing}, {"earliest", w.earliest}, {"latest", w.latest},
                    {"last_segment", w.last_segment}});
    PrintJson({{"source", source}, {"ok", rep->ok()}, {"timelines", tl}, {"backups", bk},
               {"other_files", rep->other_files}});
  } else {
    for (const auto& t : rep->timelines) {
      std::printf("timeline %u: %llu segments, %s .. %s\n", t.timeline,
                  (unsigned long long)t.segments, t.first.c_str(), t.last.c_str());
      for (const auto& [a, b] : t.gaps)
        std::printf("  GAP: %s .. %s missing\n", a.c_str(), b.c_str());
    }
    for (const auto& w : rep->backups) {
      if (w.wal_complete)
        std::printf("backup %s: recoverable from %s to about %s (WAL through %s)\n",
                    w.backup.id.Short().c_str(), w.earliest.c_str(), w.latest.c_str(),
                    w.last_segment.c_str());
      else
        std::printf("backup %s: NOT RESTORABLE, its WAL segment %s is missing\n",
                    w.backup.id.Short().c_str(), w.missing.c_str());
    }
  }
  return rep->ok() ? 0 : ExitCodeFor(Code::kCorruption);
}

int RunPgInfo(const std::string& src) {
  auto r = OpenRepo(LockMode::kNone, "pg info");
  if (!r.ok()) return Fail(r.status());
  std::string source = src.empty() ? DefaultSource() : src;
  auto rep = pg::VerifyArchive(*r->repo, source);
  if (!rep.ok()) return Fail(rep.status());
  auto info = pg::LoadClusterInfo(*r->repo, source);
  if (!info.ok()) return Fail(info.status());
  if (Globals().json) {
    json out = {{"source", source}};
    if (*info)
      out["cluster"] = {{"system_identifier", std::to_string((*info)->system_id)},
                        {"wal_segment_size", (*info)->segment_size},
                        {"version", (*info)->version}};
    json bk = json::array();
    for (const auto& w : rep->backups) {
      json j = w.backup.ToJson(true);
      j["recoverable"] = {{"wal_complete", w.wal_complete}, {"earliest", w.earliest},
                          {"latest", w.latest}};
      bk.push_back(j);
    }
    out["backups"] = bk;
    PrintJson(out);
    return 0;
  }
  if (*info)
    std::printf("source %s: cluster %llu, PostgreSQL %d, WAL segments of %s\n", source.c_str(),
                (unsigned long long)(*info)->system_id, (*info)->version / 100,
                HumanBytes((*info)->segment_size).c_str());
  std::printf("%-8s  %-4s  %-19s  %-12s  %-12s  %-10s  %-8s  %s\n", "ID", "TYPE", "STOP (UTC)",
              "START LSN", "STOP LSN", "SIZE", "SECONDS", "RECOVERABLE UNTIL");
  for (const auto& w : rep->backups) {
    const auto& e = w.backup.extra;
    std::printf("%-8s  %-4s  %-19s  %-12s  %-12s  %-10s  %-8.1f  %s\n",
                w.backup.id.Short().c_str(), e.value("type", "").c_str(),
                e.value("stop_time", "").substr(0, 19).c_str(), e.value("start_lsn", "").c_str(),
                e.value("stop_lsn", "").c_str(),
                HumanBytes(w.backup.summary.value("bytes_total", uint64_t{0})).c_str(),
                w.backup.summary.value("seconds", 0.0),
                w.wal_complete ? w.latest.c_str() : ("WAL missing: " + w.missing).c_str());
  }
  return 0;
}

int RunWalExpire(const std::string& src, const std::string& retention, bool dry_run) {
  auto d = repo::ParseDuration(retention);
  if (!d.ok()) return Fail(d.status());
  auto r = OpenRepo(LockMode::kShared, "pg wal-expire");
  if (!r.ok()) return Fail(r.status());
  std::string source = src.empty() ? DefaultSource() : src;
  auto res = pg::ExpireWal(*r->repo, source, d->ApproxSeconds(), dry_run);
  if (!res.ok()) return Fail(res.status());
  if (Globals().json) {
    PrintJson({{"dry_run", dry_run}, {"segments_removed", res->segments_removed},
               {"bytes_removed", res->bytes_removed}, {"segments_kept", res->segments_kept},
               {"oldest_backup", res->oldest_backup}, {"first_kept", res->first_kept}});
  } else if (res->oldest_backup.empty()) {
    std::printf("no base backup of source '%s': no WAL is removed\n", source.c_str());
  } else {
    std::printf("%s%llu WAL segments (%s) older than %s and before base backup %s; kept %llu "
                "from %s\n",
                dry_run ? "would remove " : "removed ", (unsigned long long)res->segments_removed,
                HumanBytes(res->bytes_removed).c_str(), retention.c_str(),
                res->oldest_backup.substr(0, 8).c_str(), (unsigned long long)res->segments_kept,
                res->first_kept.c_str());
  }
  return 0;
}

}  // namespace

void AddPgCommands(CLI::App& app, Runner& run) {
  auto* pg = app.add_subcommand("pg", "PostgreSQL: base backups, WAL archive, recovery");
  pg->require_subcommand(1);

  static PgBackupArgs ba;
  auto* backup = pg->add_subcommand("backup", "take a base backup of the running cluster");
  backup->add_option("--type", ba.type, "full or incr (default: incr, full when no parent)");
  backup->add_option("--source", ba.source, "cluster name in the repository (default: main)");
  backup->add_option("--pgdata", ba.pgdata, "data directory (default: asked from the server)");
  backup->add_option("--dbname", ba.dbname, "libpq connection string (default: PG* environment)");
  backup->add_option("--tag", ba.tags, "tag the snapshot (repeatable)")->allow_extra_args(false);
  backup->add_option("--block-size", ba.block_size,
                     "chunk size of relation files in bytes, a multiple of 8192 (default 65536)");
  backup->add_option("--wal-timeout", ba.wal_timeout,
                     "seconds to wait for the backup's WAL to be archived (default 300)");
  backup->callback([&] { run = [] { return RunPgBackup(ba); }; });

  static std::string push_path, push_source;
  static int push_level = 1;
  auto* push = pg->add_subcommand("wal-push", "archive_command: archive one WAL file (%p)");
  push->add_option("PATH", push_path, "the WAL file (%p)")->required();
  push->add_option("--source", push_source, "cluster name in the repository (default: main)");
  push->add_option("--compress-level", push_level, "zstd level for WAL (default 1)");
  push->callback([&] { run = [] { return RunWalPush(push_path, push_source, push_level); }; });

  static std::string get_name, get_dest, get_source;
  static int get_prefetch = 8;
  auto* get = pg->add_subcommand("wal-get", "restore_command: fetch one WAL file (%f %p)");
  get->add_option("NAME", get_name, "the WAL file name (%f)")->required();
  get->add_option("DEST", get_dest, "where to write it (%p)")->required();
  get->add_option("--source", get_source, "cluster name in the repository (default: main)");
  get->add_option("--prefetch", get_prefetch, "segments to fetch ahead in the background (8)");
  get->callback([&] { run = [] { return RunWalGet(get_name, get_dest, get_source, get_prefetch); }; });

  static PgRestoreArgs ra;
  auto* restore = pg->add_subcommand("restore", "restore a base backup and set up recovery");
  restore->add_option("--pgdata", ra.pgdata, "data directory to restore into")->required();
  restore->add_option("--source", ra.source, "cluster name in the repository (default: main)");
  restore->add_option("--backup", ra.backup, "base backup id (default: chosen from the target)");
  restore->add_option("--target-time", ra.target_time,
                      "recover to this time: 'YYYY-MM-DD HH:MM:SS[.ffffff][+HH]' (no zone: UTC)");
  restore->add_option("--target-lsn", ra.target_lsn, "recover to this LSN");
  restore->add_option("--target-xid", ra.target_xid, "recover to this transaction id");
  restore->add_option("--target-name", ra.target_name, "recover to this restore point");
  restore->add_flag("--immediate", ra.immediate, "stop as soon as the backup is consistent");
  restore->add_option("--target-action", ra.target_action, "promote (default), pause or shutdown");
  restore->add_option("--target-timeline", ra.target_timeline,
                      "latest (default), current, or a timeline id");
  restore->add_flag("--no-archive", ra.no_archive,
                    "archive_mode = off in the restored cluster (restore tests, drills)");
  restore->add_flag("--delta", ra.delta, "update an existing data directory in place");
  restore->add_option("--tablespace-map", ra.tablespace_map, "OLD=NEW tablespace location")->allow_extra_args(false);
  restore->add_flag("--start", ra.start, "start PostgreSQL and wait until recovery is done");
  restore->add_option("--port", ra.port, "with --start: port to run on");
  restore->add_option("--restore-command", ra.restore_command,
                      "restore_command to write (default: this lifeboat's wal-get)");
  restore->callback([&] { run = [] { return RunPgRestore(ra); }; });

  static std::string verify_source;
  auto* verify = pg->add_subcommand("wal-verify", "check the WAL archive for gaps; show windows");
  verify->add_option("--source", verify_source, "cluster name in the repository (default: main)");
  verify->callback([&] { run = [] { return RunWalVerify(verify_source); }; });

  static std::string expire_source, expire_retention = "7d";
  static bool expire_dry = false;
  auto* expire = pg->add_subcommand("wal-expire", "remove WAL no retained base backup needs");
  expire->add_option("--retention", expire_retention, "keep WAL archived within this (default 7d)");
  expire->add_option("--source", expire_source, "cluster name in the repository (default: main)");
  expire->add_flag("--dry-run", expire_dry, "show what would be removed");
  expire->callback([&] { run = [] { return RunWalExpire(expire_source, expire_retention, expire_dry); }; });

  static std::string info_source;
  auto* info = pg->add_subcommand("info", "base backups, their LSNs and recoverable windows");
  info->add_option("--source", info_source, "cluster name in the repository (default: main)");
  info->callback([&] { run = [] { return RunPgInfo(info_source); }; });
}

}  // namespace lb::cli
