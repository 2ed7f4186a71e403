// File-tree commands: backup files, restore.
#include <cstdio>
#include <memory>

#include "cli/common.h"
#include "cli/progress.h"
#include "repo/snapshot.h"
#include "source/files_backup.h"
#include "source/files_restore.h"
#include "source/log_archive.h"
#include "source/tree_walk.h"
#include "repo/retention.h"

#include <fnmatch.h>
#include <ctime>
#include "util/log.h"

namespace lb::cli {

using nlohmann::json;

namespace {

struct BackupArgs {
  std::vector<std::string> paths, tags, excludes;
  std::string host, parent;
  bool force = false;
};

int RunBackupFiles(const BackupArgs& a) {
  auto r = OpenBackupTarget(LockMode::kShared, "backup files");
  if (!r.ok()) return Fail(r.status());
  source::FileBackupOptions opts;
  opts.paths = a.paths;
  opts.tags = a.tags;
  opts.excludes = a.excludes;
  opts.host = a.host;
  if (!a.parent.empty()) opts.parent = a.parent;
  opts.force_read = a.force;
  opts.threads = Globals().threads;
  source::BackupProgress progress;
  std::unique_ptr<ProgressBar> bar = BackupProgressBar("backup", progress);
  if (bar) opts.progress = &progress;
  auto res = source::BackupFiles(*r->repo, opts);
  bar.reset();
  if (!res.ok()) return Fail(res.status().WithContext("backup failed; no snapshot was written"));
  const auto& s = res->snapshot;
  const int copied = CopyToOtherRepos(*r->repo, s);
  if (Globals().json) {
    json j = s.ToJson(true);
    j["errors"] = res->errors;
    PrintJson(j);
  } else {
    std::printf("snapshot %s saved: %llu files (%llu unchanged), %llu dirs, %s; read %s, "
                "added %s (%s stored) in %.1f s\n",
                s.id.Short().c_str(), (unsigned long long)res->files,
                (unsigned long long)res->files_unchanged, (unsigned long long)res->dirs,
                HumanBytes(res->bytes_total).c_str(), HumanBytes(res->bytes_read).c_str(),
                HumanBytes(res->writer.bytes_new_raw).c_str(),
                HumanBytes(res->writer.bytes_new_stored).c_str(), res->seconds);
  }
  if (!res->errors.empty()) {
    std::fprintf(stderr, "warning: %zu entr%s could not be backed up and are not in the "
                         "snapshot (see above)\n",
                 res->errors.size(), res->errors.size() == 1 ? "y" : "ies");
    return ExitCodeFor(Code::kIncomplete);
  }
  return copied;
}

struct LogArgs {
  std::vector<std::string> dirs, tags, patterns;
  std::string older_than;
  bool remove_archived = false;
};

int RunBackupLogs(const LogArgs& a) {
  auto age = repo::ParseDuration(a.older_than);
  if (!age.ok()) return Fail(age.status().WithContext("--older-than"));
  auto r = OpenBackupTarget(LockMode::kShared, "backup logs");
  if (!r.ok()) return Fail(r.status());
  source::FileBackupOptions opts;
  opts.paths = a.dirs;
  opts.tags = a.tags;
  opts.kind = "logs";
  opts.threads = Globals().threads;
  int64_t cutoff_ns = (int64_t(time(nullptr)) - age->ApproxSeconds()) * 1000000000;
  std::vector<std::string> patterns = a.patterns;
  // Only files last written before the cutoff (and matching a pattern, when given).
  opts.filter = [cutoff_ns, patterns](const std::string& path, const struct stat& st) {
    int64_t mtime = int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    if (mtime >= cutoff_ns) return false;
    if (patterns.empty()) return true;
    std::string name = path.substr(path.rfind('/') + 1);
    for (const auto& p : patterns)
      if (fnmatch(p.c_str(), name.c_str(), 0) == 0) return true;
    return false;
  };
  auto res = source::BackupFiles(*r->repo, opts);
  if (!res.ok()) return Fail(res.status().WithContext("backup logs failed; no snapshot was written"));
  const auto& s = res->snapshot;
  const int copied = CopyToOtherRepos(*r->repo, s);
  source::RemoveArchivedResult removed;
  if (a.remove_archived && res->errors.empty() && copied == 0) {
    // The snapshot is committed (in every repository); now every archived file is read back
    // and compared before it is deleted.
    auto rm = source::RemoveArchivedFiles(*r->repo, s, res->stored_paths);
    if (!rm.ok()) return Fail(rm.status().WithContext("snapshot saved, originals kept"));
    removed = *rm;
  }
  if (Globals().json) {
    json j = s.ToJson(true);
    j["files_archived"] = res->stored_paths.size();
    j["files_removed"] = removed.removed;
    j["bytes_removed"] = removed.bytes_removed;
    j["files_kept"] = removed.kept;
    j["errors"] = res->errors;
    PrintJson(j);
  } else {
    std::printf("snapshot %s saved: %zu log files older than %s, %s, added %s (%s stored)\n",
                s.id.Short().c_str(), res->stored_paths.size(), a.older_than.c_str(),
                HumanBytes(res->bytes_total).c_str(),
                HumanBytes(res->writer.bytes_new_raw).c_str(),
                HumanBytes(res->writer.bytes_new_stored).c_str());
    if (a.remove_archived)
      std::printf("removed %llu archived files (%s) after verifying them; kept %zu\n",
                  (unsigned long long)removed.removed, HumanBytes(removed.bytes_removed).c_str(),
                  removed.kept.size());
  }
  if (!res->errors.empty()) {
    if (a.remove_archived)
      std::fprintf(stderr, "warning: nothing was removed because some files could not be read\n");
    return ExitCodeFor(Code::kIncomplete);
  }
  if (copied != 0 && a.remove_archived)
    std::fprintf(stderr, "warning: nothing was removed because a copy failed\n");
  return removed.kept.empty() ? copied : ExitCodeFor(Code::kIncomplete);
}

struct RestoreArgs {
  std::string ref, target;
  std::vector<std::string> includes;
};

int RunRestore(const RestoreArgs& a) {
  auto r = OpenFirstReachable(LockMode::kShared, "restore");
  if (!r.ok()) return Fail(r.status());
  auto snap = repo::FindSnapshot(*r->repo, a.ref);
  if (!snap.ok()) return Fail(snap.status());
  for (const auto& inc : a.includes) {
    bool found = false;
    Status w = source::WalkTree(*r->repo, snap->tree, inc, [&](const std::string&, const repo::Node&) {
      found = true;
      return Err(Code::kCancelled, "found");  // one entry is enough
    });
    if (!w.ok() && w.code() != Code::kCancelled) return Fail(w);
    if (!found) return Fail(Err(Code::kNotFound, "'{}' is not in snapshot {}", inc, snap->id.Short()));
  }
  source::FileRestoreOptions opts;
  opts.target = a.target;
  opts.includes = a.includes;
  opts.threads = Globals().threads;
  source::RestoreProgress progress;
  std::unique_ptr<ProgressBar> bar;
  if (ProgressWanted()) {
    opts.progress = &progress;
    bar = std::make_unique<ProgressBar>("restore", [&] {
      return ProgressSample{progress.files_done, progress.files_total, progress.bytes_done,
                            progress.bytes_total, false};
    });
  }
  auto res = source::RestoreFiles(*r->repo, *snap, opts);
  bar.reset();
  if (!res.ok()) return Fail(res.status());

  if (Globals().json) {
    PrintJson({{"snapshot", snap->id.Hex()}, {"files", res->files}, {"dirs", res->dirs},
               {"others", res->others}, {"bytes", res->bytes}, {"damaged", res->damaged},
               {"errors", res->errors}, {"seconds", res->seconds}});
  } else {
    std::printf("restored snapshot %s to %s: %llu files, %llu dirs, %s in %.1f s\n",
                snap->id.Short().c_str(), a.target.c_str(), (unsigned long long)res->files,
                (unsigned long long)res->dirs, HumanBytes(res->bytes).c_str(), res->seconds);
  }
  if (!res->damaged.empty()) {
    std::fprintf(stderr, "error: %zu path(s) could not be restored intact:\n", res->damaged.size());
    for (const auto& p : res->damaged) std::fprintf(stderr, "  %s\n", PrintableName(p).c_str());
    return ExitCodeFor(Code::kCorruption);
  }
  if (!res->errors.empty()) return ExitCodeFor(Code::kIo);
  return 0;
}

}  // namespace

void AddFileCommands(CLI::App& app, Runner& run) {
  auto* backup = app.add_subcommand("backup", "back up a source");
  backup->require_subcommand(1);
  static BackupArgs ba;
  auto* files = backup->add_subcommand("files", "back up files and directories");
  files->add_option("PATH", ba.paths, "files or directories")->required();
  files->add_option("--tag", ba.tags, "tag the snapshot (repeatable)")->allow_extra_args(false);
  files->add_option("--exclude", ba.excludes, "skip entries matching this pattern (repeatable)")->allow_extra_args(false);
  files->add_option("--host", ba.host, "host name to record (default: this host)");
  files->add_option("--parent", ba.parent, "compare with this snapshot (default: the newest "
                                           "of the same paths and host)");
  files->add_flag("--force", ba.force, "read every file, even unchanged ones");
  files->callback([&] { run = [] { return RunBackupFiles(ba); }; });

  static LogArgs la;
  auto* logs = backup->add_subcommand("logs", "archive log files older than an age");
  logs->add_option("DIR", la.dirs, "log directories")->required();
  logs->add_option("--older-than", la.older_than, "only files last written before this age (7d)")
      ->required();
  logs->add_option("--pattern", la.patterns, "only file names matching (repeatable, e.g. '*.log')")->allow_extra_args(false);
  logs->add_option("--tag", la.tags, "tag the snapshot (repeatable)")->allow_extra_args(false);
  logs->add_flag("--remove-archived", la.remove_archived,
                 "delete the originals once the snapshot is committed and verified");
  logs->callback([&] { run = [] { return RunBackupLogs(la); }; });

  static RestoreArgs ra;
  auto* restore = app.add_subcommand(
      "restore", "restore a snapshot's files (file trees, logs, command output; base backups "
                 "are restored with 'pg restore')");
  restore->add_option("SNAPSHOT", ra.ref, "snapshot id, prefix or 'latest'")->required();
  restore->add_option("--target", ra.target, "directory to restore into")->required();
  restore->add_option("--include", ra.includes, "restore only this path (repeatable)")->allow_extra_args(false);
  restore->callback([&] { run = [] { return RunRestore(ra); }; });
}

}  // namespace lb::cli
