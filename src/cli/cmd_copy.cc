// copy: snapshots, and the WAL archive of PostgreSQL sources, from one repository to another
// (the secondary region, offsite), so the other one can restore on its own.
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <set>

#include <fmt/format.h>

#include "cli/common.h"
#include "cli/progress.h"
#include "pg/base_backup.h"
#include "pg/pg_restore.h"
#include "pg/wal_copy.h"
#include "repo/copy.h"
#include "repo/names.h"
#include "repo/retention.h"
#include "util/log.h"

namespace lb::cli {

using nlohmann::json;

namespace {

struct CopyArgs {
  std::string from = {};
  std::string to = {};
  repo::SnapshotFilter filter = {};
  std::string since = {};
  std::vector<std::string> snapshots = {};
  bool no_wal = false;
  bool dry_run = false;
};

// --since: a duration back from now ("7d", "12h") or a time ("2026-11-24", "2026-11-24
// 20:40:01", RFC 3339; UTC unless it says otherwise).
Result<int64_t> ParseSince(const std::string& text) {
  if (auto d = repo::ParseDuration(text); d.ok())
    return (int64_t(time(nullptr)) - d->ApproxSeconds()) * 1000000000;
  int64_t ns = 0;
  if (repo::ParseRfc3339(text, ns) || pg::ParseTargetTime(text, ns) ||
      pg::ParseTargetTime(text + " 00:00:00", ns))
    return ns;
  return Err(Code::kInvalidArgument,
             "--since wants a duration (7d, 12h, 1y6m) or a time (YYYY-MM-DD[ HH:MM:SS]), got "
             "'{}'", text);
}

// Messages on stderr, above the progress bar when one is drawn.
void Say(bool bar, const std::string& line) {
  if (Globals().quiet) return;
  std::fprintf(stderr, "%s%s\n", bar ? "\r\033[K" : "", line.c_str());
}

std::string Describe(const repo::Snapshot& s) {
  std::string what = s.kind;
  if (!s.source.empty()) what += " '" + s.source + "'";
  for (const auto& p : s.paths) what += " " + p;
  for (const auto& t : s.tags) what += " #" + t;
  return fmt::format("{} {} of {}", what, s.time.substr(0, 19), s.host);
}

int RunCopy(const CopyArgs& a) {
  std::string from_url = a.from;
  if (from_url.empty())
    if (const char* f = std::getenv("LIFEBOAT_FROM_REPO"); f && *f) from_url = f;
  if (from_url.empty())
    return Fail(Status(Code::kInvalidArgument, "no source repository given")
                    .WithHint("pass --from REPO (or set LIFEBOAT_FROM_REPO)"));
  if (Status s = CheckUrlHasNoCredentials(from_url); !s.ok()) return Fail(s);
  if (Status s = CheckUrlHasNoCredentials(a.to); !s.ok()) return Fail(s);
  std::string to_url = a.to;
  const auto& repos = Globals().repos;
  if (!to_url.empty() && !repos.empty() && (repos.size() > 1 || repos[0] != to_url))
    return Fail(Err(Code::kInvalidArgument, "--to '{}' and --repo '{}' name different targets",
                    to_url, fmt::join(repos, "', '")));
  if (to_url.empty()) {
    auto url = RepoUrl();
    if (!url.ok())
      return Fail(url.status().WithHint("pass --to REPO (or --repo REPO, or set LIFEBOAT_REPO)"));
    to_url = *url;
  }
  int64_t since_ns = 0;
  if (!a.since.empty()) {
    auto s = ParseSince(a.since);
    if (!s.ok()) return Fail(s.status());
    since_ns = *s;
  }
  // Both secrets and both repositories before anything is written (the locks are the first
  // writes): a wrong key leaves no trace on either side.
  auto to_secret = ReadSecret();
  if (!to_secret.ok()) return Fail(to_secret.status().WithContext("target repository"));
  auto from_secret = ReadSecret(FromSecretSources());
  if (!from_secret.ok()) return Fail(FromRepoError(from_secret.status(), "--from"));
  auto from = OpenRepoAt(from_url, *from_secret, LockMode::kNone, "copy");
  if (!from.ok()) return Fail(FromRepoError(from.status(), "--from"));
  auto to = OpenRepoAt(to_url, *to_secret, LockMode::kNone, "copy");
  if (!to.ok()) return Fail(to.status().WithContext("target repository"));
  // Shared locks on both, as a backup takes: a prune on either side waits for this copy.
  // One copy at a time into a repository: two would both find a snapshot missing and both
  // write it.
  auto from_lock = repo::RepoLock::Acquire(from->repo->storage(), false, "copy (source)");
  if (!from_lock.ok()) return Fail(from_lock.status().WithContext("--from repository"));
  auto to_lock = repo::RepoLock::Acquire(to->repo->storage(), false, "copy", true);
  if (!to_lock.ok()) return Fail(to_lock.status().WithContext("target repository"));

  const bool dry = a.dry_run;
  repo::CopyProgress progress;
  repo::CopyOptions opts;
  opts.filter = a.filter;
  opts.since_ns = since_ns;
  opts.snapshots = a.snapshots;
  opts.dry_run = dry;
  opts.threads = Globals().threads;
  opts.progress = &progress;
  std::unique_ptr<ProgressBar> bar;
  if (ProgressWanted())
    bar = std::make_unique<ProgressBar>("copy", [&progress] {
      return ProgressSample{progress.snapshots_done, progress.snapshots_total,
                            progress.bytes_read, 0, false};
    }, "snapshots");
  json jsnaps = json::array();
  opts.on_snapshot = [&](const repo::CopiedSnapshot& c) {
    if (dry)
      Say(bool(bar), fmt::format("would copy snapshot {}: {}; {} blobs ({}) missing",
                                 c.source.id.Short(), Describe(c.source), c.blobs,
                                 HumanBytes(c.bytes_read)));
    else
      Say(bool(bar), fmt::format("copied snapshot {} as {}: {}; {} blobs, read {}, wrote {}",
                                 c.source.id.Short(), c.target_id.Short(), Describe(c.source),
                                 c.blobs, HumanBytes(c.bytes_read), HumanBytes(c.bytes_written)));
    json j = c.source.ToJson(true);
    j["target_id"] = dry ? json(nullptr) : json(c.target_id.Hex());
    j["blobs"] = c.blobs;
    j["bytes_read"] = c.bytes_read;
    j["bytes_written"] = c.bytes_written;
    jsnaps.push_back(std::move(j));
  };
  auto res = repo::CopySnapshots(*from->repo, *to->repo, opts);
  bar.reset();
  if (!res.ok()) return Fail(res.status());
  for (const auto& d : res->damaged)
    LogWarning("snapshot {} of the source is unreadable and was not copied: {}",
               d.id.substr(0, 8), d.error.ToString());

  // The WAL of the PostgreSQL sources: those named by --source; else those of the selected
  // base backups when snapshots were selected; else every source with an archive.
  std::set<std::string> wal_sources;
  if (!a.no_wal) {
    auto archived = pg::ListWalSources(*from->repo);
    if (!archived.ok()) return Fail(archived.status().WithContext("list the source's WAL archives"));
    std::set<std::string> wanted;
    bool selected = !a.snapshots.empty() || !a.filter.kinds.empty() || !a.filter.tags.empty() ||
                    !a.filter.hosts.empty() || !a.since.empty();
    if (!a.filter.sources.empty()) {
      wanted.insert(a.filter.sources.begin(), a.filter.sources.end());
    } else if (selected) {
      for (const auto& c : res->copied)
        if (c.source.kind == pg::kBaseKind) wanted.insert(c.source.source);
      for (const auto& s : res->skipped)
        if (s.kind == pg::kBaseKind) wanted.insert(s.source);
    } else {
      wanted.insert(archived->begin(), archived->end());
    }
    for (const auto& s : *archived)
      if (wanted.count(s)) wal_sources.insert(s);
  }
  repo::NamedCopyResult wal;
  json jwal = json::array();
  for (const auto& source : wal_sources) {
    repo::CopyProgress wp;
    pg::WalCopyOptions wo;
    wo.dry_run = dry;
    wo.threads = Globals().threads;
    wo.progress = &wp;
    if (dry)
      for (const auto& c : res->copied) wo.incoming_backups.push_back(c.source);
    if (ProgressWanted())
      bar = std::make_unique<ProgressBar>("copy WAL", [&wp] {
        return ProgressSample{wp.objects_done, wp.objects_total, wp.bytes_read, 0, false};
      }, "WAL files");
    auto w = pg::CopyWalArchive(*from->repo, *to->repo, source, wo);
    bar.reset();
    if (!w.ok()) return Fail(w.status().WithContext(fmt::format("copy WAL of source '{}'", source)));
    Say(false, fmt::format("WAL of source '{}': {} files {} ({}), {} in the target already, {} "
                           "older than the target's oldest base backup",
                           source, w->objects_copied, dry ? "to copy" : "copied",
                           HumanBytes(w->bytes_read), w->objects_present, w->objects_skipped));
    jwal.push_back({{"source", source}, {"files_copied", w->objects_copied},
                    {"files_present", w->objects_present}, {"files_skipped", w->objects_skipped},
                    {"bytes_read", w->bytes_read}, {"bytes_written", w->bytes_written}});
    wal.objects_copied += w->objects_copied;
    wal.objects_present += w->objects_present;
    wal.objects_skipped += w->objects_skipped;
    wal.bytes_read += w->bytes_read;
    wal.bytes_written += w->bytes_written;
  }

  const auto& r = *res;
  if (Globals().json) {
    json skipped = json::array();
    for (const auto& s : r.skipped) skipped.push_back(s.id.Hex());
    PrintJson({{"dry_run", dry},
               {"from", from->repo->storage().Location()},
               {"to", to->repo->storage().Location()},
               {"same_id_key", r.same_id_key},
               {"snapshots_selected", r.snapshots_selected},
               {"snapshots_copied", r.snapshots_copied},
               {"snapshots_skipped", r.snapshots_skipped},
               {"snapshots_damaged", r.snapshots_damaged},
               {"blobs_copied", r.blobs_copied},
               {"blobs_present", r.blobs_present},
               {"bytes_read", r.bytes_read + wal.bytes_read},
               {"bytes_written", r.bytes_written + wal.bytes_written},
               {"wal_files_copied", wal.objects_copied},
               {"wal_files_present", wal.objects_present},
               {"wal_files_skipped", wal.objects_skipped},
               {"snapshots", jsnaps},
               {"skipped", skipped},
               {"wal", jwal}});
  } else if (dry) {
    Say(false, fmt::format("would copy {} of {} selected snapshots ({} in the target already): "
                           "{} blobs ({}) missing{}; {} WAL files ({}); nothing was copied "
                           "(--dry-run)",
                           r.snapshots_copied, r.snapshots_selected, r.snapshots_skipped,
                           r.blobs_copied, HumanBytes(r.bytes_read),
                           r.same_id_key ? "" : ", blob ids to translate", wal.objects_copied,
                           HumanBytes(wal.bytes_read)));
  } else {
    Say(false, fmt::format("copied {} of {} selected snapshots ({} in the target already): {} "
                           "blobs{}; {} WAL files; read {}, wrote {}",
                           r.snapshots_copied, r.snapshots_selected, r.snapshots_skipped,
                           r.blobs_copied, r.same_id_key ? "" : " (ids translated)",
                           wal.objects_copied, HumanBytes(r.bytes_read + wal.bytes_read),
                           HumanBytes(r.bytes_written + wal.bytes_written)));
  }
  if (!r.damaged.empty()) return ExitCodeFor(Code::kIncomplete);
  return 0;
}

}  // namespace

int CopyToOtherRepos(repo::Repository& first, const repo::Snapshot& snapshot) {
  auto urls = RepoUrls();
  if (!urls.ok() || urls->size() < 2) return 0;
  int rc = 0;
  for (size_t i = 1; i < urls->size(); ++i) {
    const std::string& url = (*urls)[i];
    auto fail = [&](const Status& s) {
      Fail(s.WithContext(fmt::format("snapshot {} is stored in '{}'; copy to '{}'",
                                     snapshot.id.Short(), (*urls)[0], url))
               .WithHint(fmt::format("catch up later with 'lifeboat copy --from {} --to {}'",
                                     (*urls)[0], url)));
      if (rc == 0) rc = ExitCodeFor(s.code());
    };
    auto to = OpenRepoAt(url, LockMode::kNone, "copy");
    if (!to.ok()) {
      fail(to.status());
      continue;
    }
    auto lock = repo::RepoLock::Acquire(to->repo->storage(), false, "copy", true);
    if (!lock.ok()) {
      fail(lock.status());
      continue;
    }
    repo::CopyOptions opts;
    opts.snapshots = {snapshot.id.Hex()};
    opts.threads = Globals().threads;
    auto res = repo::CopySnapshots(first, *to->repo, opts);
    if (!res.ok()) {
      fail(res.status());
      continue;
    }
    if (snapshot.kind == pg::kBaseKind) {
      pg::WalCopyOptions wo;
      wo.threads = Globals().threads;
      auto w = pg::CopyWalArchive(first, *to->repo, snapshot.source, wo);
      if (!w.ok()) {
        fail(w.status().WithContext(fmt::format("copy WAL of source '{}'", snapshot.source)));
        continue;
      }
    }
    if (!Globals().quiet)
      LogInfo("snapshot {} copied to '{}'", snapshot.id.Short(), url);
  }
  return rc;
}

void AddCopyCommands(CLI::App& app, Runner& run) {
  static CopyArgs args;
  auto* c = app.add_subcommand(
      "copy", "copy snapshots, and the WAL of PostgreSQL sources, that another repository lacks");
  c->add_option("--from", args.from,
                "the repository to copy from (default: $LIFEBOAT_FROM_REPO); its secret: "
                "--from-password-file, --from-key-file, $LIFEBOAT_FROM_*");
  c->add_option("--to", args.to,
                "the repository to copy into (default: --repo, $LIFEBOAT_REPO); its secret: the "
                "usual --password-file, --key-file, $LIFEBOAT_*");
  AddFromSecretOptions(*c);
  c->add_option("--kind", args.filter.kinds, "only snapshots of this kind (repeatable)")
      ->allow_extra_args(false);
  c->add_option("--source", args.filter.sources,
                "only snapshots and WAL of this source (repeatable)")
      ->allow_extra_args(false);
  c->add_option("--host", args.filter.hosts, "only snapshots of this host (repeatable)")
      ->allow_extra_args(false);
  c->add_option("--tag", args.filter.tags,
                "only snapshots with this tag (repeatable: all must be present)")
      ->allow_extra_args(false);
  c->add_option("--since", args.since,
                "only snapshots taken since TIME (YYYY-MM-DD[ HH:MM:SS], UTC) or within "
                "DURATION (7d, 12h)");
  c->add_flag("--no-wal", args.no_wal, "copy no WAL");
  c->add_flag("--dry-run", args.dry_run, "show what would be copied; write nothing");
  c->add_option("SNAPSHOT", args.snapshots,
                "only these snapshots of the source (id, unique prefix or 'latest')");
  c->callback([&run] { run = [] { return RunCopy(args); }; });
}

}  // namespace lb::cli
