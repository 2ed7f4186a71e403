// File-tree commands: backup files, restore.
#include <cstdio>
#include <memory>

#include "cli/common.h"
#include "cli/progress.h"
#include "repo/snapshot.h"
#include "source/files_backup.h"
#include "source/files_restore.h"
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
  auto r = OpenRepo(LockMode::kShared, "backup files");
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
  std::unique_ptr<ProgressBar> bar;
  if (ProgressWanted()) {
    opts.progress = &progress;
    bar = std::make_unique<ProgressBar>("backup", [&] {
      return ProgressSample{progress.files_done, progress.files_total, progress.bytes_done,
                            progress.bytes_total, progress.scan_done};
    });
  }
  auto res = source::BackupFiles(*r->repo, opts);
  bar.reset();
  if (!res.ok()) return Fail(res.status().WithContext("backup failed; no snapshot was written"));
  const auto& s = res->snapshot;
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
  return 0;
}

struct RestoreArgs {
  std::string ref, target;
  std::vector<std::string> includes;
};

int RunRestore(const RestoreArgs& a) {
  auto r = OpenRepo(LockMode::kNone, "restore");
  if (!r.ok()) return Fail(r.status());
  auto snap = repo::FindSnapshot(*r->repo, a.ref);
  if (!snap.ok()) return Fail(snap.status());
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
  files->add_option("--tag", ba.tags, "tag the snapshot (repeatable)");
  files->add_option("--exclude", ba.excludes, "skip entries matching this pattern (repeatable)");
  files->add_option("--host", ba.host, "host name to record (default: this host)");
  files->add_option("--parent", ba.parent, "compare with this snapshot (default: the newest "
                                           "of the same paths and host)");
  files->add_flag("--force", ba.force, "read every file, even unchanged ones");
  files->callback([&] { run = [] { return RunBackupFiles(ba); }; });

  static RestoreArgs ra;
  auto* restore = app.add_subcommand("restore", "restore a file-tree snapshot");
  restore->add_option("SNAPSHOT", ra.ref, "snapshot id, prefix or 'latest'")->required();
  restore->add_option("--target", ra.target, "directory to restore into")->required();
  restore->add_option("--include", ra.includes, "restore only this path (repeatable)");
  restore->callback([&] { run = [] { return RunRestore(ra); }; });
}

}  // namespace lb::cli
