// Repository commands: init, key, snapshots, ls, diff, check, repair, locks, unlock.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>

#include "cli/common.h"
#include "repo/check.h"
#include "repo/prune.h"
#include "repo/keys.h"
#include "repo/names.h"
#include "repo/snapshot.h"
#include "source/tree_walk.h"
#include "storage/storage.h"
#include "util/log.h"

namespace lb::cli {

using nlohmann::json;

namespace {

std::string ShortTime(const std::string& rfc) { return rfc.substr(0, 19).replace(10, 1, " "); }

int RunInit(const std::string& params_from) {
  auto url = RepoUrl();
  if (!url.ok()) return Fail(url.status());
  auto pw = ReadSecret();
  if (!pw.ok()) return Fail(pw.status());
  // A repository `copy` can fill without translating blob ids: the other repository's id
  // key and chunker, an encryption key of its own.
  OpenedRepo other;
  if (!params_from.empty()) {
    auto other_secret = ReadSecret(FromSecretSources());
    if (!other_secret.ok()) return Fail(other_secret.status().WithContext("--copy-params-from"));
    auto opened = OpenRepoAt(params_from, *other_secret, LockMode::kNone, "init");
    if (!opened.ok()) return Fail(FromRepoError(opened.status(), "--copy-params-from"));
    other = std::move(*opened);
  }
  auto st = storage::OpenStorage(*url, true);
  if (!st.ok()) return Fail(st.status());
  auto id = repo::Repository::Init(**st, *pw, {.params_from = other.repo.get()});
  if (!id.ok()) return Fail(id.status());
  if (Globals().json) {
    json j = {{"id", *id}, {"location", (*st)->Location()}};
    if (other.repo) j["params_from"] = other.repo->config().id;
    PrintJson(j);
  } else {
    std::printf("created repository %s at %s\n", id->substr(0, 8).c_str(), (*st)->Location().c_str());
    if (other.repo)
      std::printf("with the blob ids and chunker parameters of repository %s: 'lifeboat copy' "
                  "between them moves blobs without translating them\n",
                  other.repo->config().id.substr(0, 8).c_str());
  }
  return 0;
}

int RunKeyList() {
  auto r = OpenRepo(LockMode::kNone, "key list");
  if (!r.ok()) return Fail(r.status());
  auto keys = repo::ListKeys(r->repo->storage());
  if (!keys.ok()) return Fail(keys.status());
  json out = json::array();
  for (const auto& k : *keys) {
    bool current = k.id == r->repo->key_id();
    if (Globals().json) {
      out.push_back({{"id", k.id}, {"current", current}, {"host", k.host}, {"user", k.user},
                     {"type", k.key_file ? "key-file" : "password"},
                     {"created", k.created},
                     {"kdf", k.key_file ? json{{"name", "none"}}
                                        : json{{"name", "scrypt"}, {"n", k.kdf.n},
                                               {"r", k.kdf.r}, {"p", k.kdf.p}}}});
    } else {
      std::printf("%s %s  %-8s  %-12s %-20s %s\n", current ? "*" : " ",
                  k.id.substr(0, 8).c_str(), k.key_file ? "key-file" : "password",
                  k.user.c_str(), k.host.c_str(), ShortTime(k.created).c_str());
    }
  }
  if (Globals().json) PrintJson(out);
  return 0;
}

int RunKeyAdd(const std::string& new_pw_file, const std::string& generate,
              const std::string& existing_key_file) {
  repo::Secret secret;
  if (!generate.empty()) {
    secret = {repo::NewKeyFileContents(), true};
  } else if (!existing_key_file.empty()) {
    // A key file made by --generate-key-file for another repository, so that one file opens
    // several (wal-push and restores with --repo given more than once). Key files skip
    // password stretching, so only generated ones (64 hex digits: 256 random bits) qualify.
    auto v = ReadPasswordFile(existing_key_file);
    if (!v.ok()) return Fail(v.status());
    bool hex64 = v->size() == 64 &&
                 v->find_first_not_of("0123456789abcdef") == std::string::npos;
    if (!hex64)
      return Fail(Status(Code::kInvalidArgument,
                         fmt::format("'{}' is not a lifeboat key file (64 hex digits)",
                                     existing_key_file))
                      .WithHint("make one with 'lifeboat key add --generate-key-file FILE'; a "
                                "password goes in --new-password-file"));
    secret = {*v, true};
  } else {
    std::string file = new_pw_file;
    if (file.empty())
      if (const char* f = std::getenv("LIFEBOAT_NEW_PASSWORD_FILE")) file = f;
    if (file.empty())
      return Fail(Status(Code::kInvalidArgument, "no new password given")
                      .WithHint("pass --new-password-file FILE (or set LIFEBOAT_NEW_PASSWORD_FILE),"
                                " or --generate-key-file FILE"));
    auto pw = ReadPasswordFile(file);
    if (!pw.ok()) return Fail(pw.status());
    secret = {*pw, false};
  }
  auto r = OpenRepo(LockMode::kShared, "key add");
  if (!r.ok()) return Fail(r.status());
  if (!generate.empty()) {
    // Created exclusively and readable by its owner only, before the key object exists.
    int fd = ::open(generate.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return Fail(ErrnoStatus(errno, fmt::format("create key file '{}'", generate)));
    bool ok = ::write(fd, secret.value.data(), secret.value.size()) == ssize_t(secret.value.size());
    ok = ::fsync(fd) == 0 && ok;
    ::close(fd);
    if (!ok) {
      ::unlink(generate.c_str());
      return Fail(ErrnoStatus(errno, fmt::format("write key file '{}'", generate)));
    }
    secret.value.pop_back();  // the trailing newline, as ReadPasswordFile removes it
  }
  auto id = repo::AddKey(r->repo->storage(), r->repo->key(), secret);
  if (!id.ok()) {
    if (!generate.empty()) ::unlink(generate.c_str());
    return Fail(id.status());
  }
  if (Globals().json) PrintJson({{"id", *id}, {"key_file", secret.is_key_file}});
  else if (!generate.empty())
    std::printf("added key %s; its key file is %s (keep it as safe as a password)\n",
                id->substr(0, 8).c_str(), generate.c_str());
  else std::printf("added key %s\n", id->substr(0, 8).c_str());
  return 0;
}

int RunKeyRemove(const std::string& prefix) {
  auto r = OpenRepo(LockMode::kExclusive, "key remove");
  if (!r.ok()) return Fail(r.status());
  auto keys = repo::ListKeys(r->repo->storage());
  if (!keys.ok()) return Fail(keys.status());
  std::vector<std::string> matches;
  for (const auto& k : *keys)
    if (!prefix.empty() && k.id.compare(0, prefix.size(), prefix) == 0) matches.push_back(k.id);
  if (matches.empty()) return Fail(Err(Code::kNotFound, "no key '{}'", prefix));
  if (matches.size() > 1) return Fail(Err(Code::kInvalidArgument, "key prefix '{}' is ambiguous", prefix));
  if (matches[0] == r->repo->key_id())
    return Fail(Status(Code::kFailedPrecondition, "refusing to remove the key in use")
                    .WithHint("open the repository with another key to remove this one"));
  if (keys->size() < 2)
    return Fail(Err(Code::kFailedPrecondition, "refusing to remove the last key"));
  Status s = r->repo->storage().Remove(repo::KeyName(matches[0]));
  if (!s.ok()) return Fail(s);
  std::printf("removed key %s\n", matches[0].substr(0, 8).c_str());
  return 0;
}

struct SnapshotFilter {
  std::string kind, host;
  std::vector<std::string> tags;
  bool Match(const repo::Snapshot& s) const {
    if (!kind.empty() && s.kind != kind) return false;
    if (!host.empty() && s.host != host) return false;
    for (const auto& t : tags)
      if (std::find(s.tags.begin(), s.tags.end(), t) == s.tags.end()) return false;
    return true;
  }
};

int RunSnapshots(const SnapshotFilter& f) {
  auto r = OpenRepo(LockMode::kNone, "snapshots");
  if (!r.ok()) return Fail(r.status());
  std::vector<repo::DamagedSnapshot> damaged;
  auto snaps = repo::ListSnapshots(*r->repo, &damaged);
  if (!snaps.ok()) return Fail(snaps.status());
  for (const auto& d : damaged)
    LogWarning("snapshot {}: {}", d.id.substr(0, 8), d.error.ToString());
  if (Globals().json) {
    json out = json::array();
    for (const auto& s : *snaps)
      if (f.Match(s)) out.push_back(s.ToJson(true));
    PrintJson(out);
  } else {
    std::printf("%-8s  %-19s  %-8s  %-16s  %-12s  %s\n", "ID", "Time (UTC)", "Kind", "Host",
                "Size", "Paths / tags");
    for (const auto& s : *snaps) {
      if (!f.Match(s)) continue;
      std::string paths;
      for (const auto& p : s.paths) paths += (paths.empty() ? "" : " ") + p;
      for (const auto& t : s.tags) paths += " #" + t;
      uint64_t size = s.summary.value("bytes_total", uint64_t{0});
      std::printf("%-8s  %-19s  %-8s  %-16s  %-12s  %s\n", s.id.Short().c_str(),
                  ShortTime(s.time).c_str(), s.kind.c_str(), s.host.c_str(),
                  HumanBytes(size).c_str(), paths.c_str());
    }
  }
  return damaged.empty() ? 0 : ExitCodeFor(Code::kCorruption);
}

std::string ModeString(const repo::Node& n) {
  static const char kTypes[] = "?-dlpcbs";
  std::string s(1, kTypes[int(n.type)]);
  const char* rwx = "rwxrwxrwx";
  for (int i = 0; i < 9; ++i) s += (n.mode & (0400 >> i)) ? rwx[i] : '-';
  return s;
}

int RunLs(const std::string& ref, const std::string& path) {
  auto r = OpenRepo(LockMode::kShared, "ls");
  if (!r.ok()) return Fail(r.status());
  auto snap = repo::FindSnapshot(*r->repo, ref);
  if (!snap.ok()) return Fail(snap.status());
  json out = json::array();
  bool seen_any = false;
  Status s = source::WalkTree(*r->repo, snap->tree, path,
                              [&](const std::string& p, const repo::Node& n) {
    seen_any = true;
    if (Globals().json) {
      json e = {{"path", p}, {"type", repo::NodeTypeName(n.type)}, {"mode", n.mode},
                {"uid", n.uid}, {"gid", n.gid}, {"size", n.size},
                {"mtime", repo::FormatRfc3339(n.mtime_ns)}};
      if (n.type == repo::NodeType::kSymlink) e["target"] = n.link_target;
      out.push_back(std::move(e));
    } else {
      std::printf("%s %5u %5u %12llu %s %s%s\n", ModeString(n).c_str(), n.uid, n.gid,
                  (unsigned long long)n.size, ShortTime(repo::FormatRfc3339(n.mtime_ns)).c_str(),
                  PrintableName(p).c_str(),
                  n.type == repo::NodeType::kSymlink
                      ? (" -> " + PrintableName(n.link_target)).c_str() : "");
    }
    return Status::Ok();
  });
  if (!s.ok()) return Fail(s);
  if (!path.empty() && path != "/" && !seen_any)
    return Fail(Err(Code::kNotFound, "'{}' is not in snapshot {}", path, snap->id.Short()));
  if (Globals().json) PrintJson(out);
  return 0;
}

int RunDiff(const std::string& a, const std::string& b) {
  auto r = OpenRepo(LockMode::kShared, "diff");
  if (!r.ok()) return Fail(r.status());
  auto sa = repo::FindSnapshot(*r->repo, a);
  if (!sa.ok()) return Fail(sa.status());
  auto sb = repo::FindSnapshot(*r->repo, b);
  if (!sb.ok()) return Fail(sb.status());
  json out = json::array();
  uint64_t counts[4] = {};
  Status s = source::DiffTrees(*r->repo, sa->tree, sb->tree,
                               [&](source::Change c, const std::string& p, const repo::Node*) {
    static const char* kSym[] = {"+", "-", "M", "U"};
    static const char* kName[] = {"added", "removed", "modified", "metadata"};
    counts[int(c)]++;
    if (Globals().json) out.push_back({{"change", kName[int(c)]}, {"path", p}});
    else std::printf("%s    %s\n", kSym[int(c)], PrintableName(p).c_str());
  });
  if (!s.ok()) return Fail(s);
  if (Globals().json) PrintJson(out);
  else
    std::printf("\n%llu added, %llu removed, %llu modified, %llu metadata only\n",
                (unsigned long long)counts[0], (unsigned long long)counts[1],
                (unsigned long long)counts[2], (unsigned long long)counts[3]);
  return 0;
}

int RunCheck(bool read_data, const std::string& subset) {
  repo::CheckOptions opts;
  opts.threads = Globals().threads;
  opts.read_data = read_data;
  if (!subset.empty()) {
    std::string v = subset;
    if (v.back() == '%') v.pop_back();
    char* end = nullptr;
    double pct = std::strtod(v.c_str(), &end);
    if (!end || *end || pct <= 0 || pct > 100)
      return Fail(Err(Code::kInvalidArgument, "--read-data-subset wants a percentage in (0, 100], "
                                              "got '{}'", subset));
    opts.read_data = true;
    opts.read_fraction = pct / 100.0;
  }
  auto r = OpenRepo(LockMode::kShared, "check");
  if (!r.ok()) return Fail(r.status());
  auto res = repo::Check(*r->repo, opts);
  if (!res.ok()) return Fail(res.status());
  if (Globals().json) {
    PrintJson({{"ok", res->ok()}, {"errors", res->errors}, {"warnings", res->warnings},
               {"affected", res->affected}, {"index_files", res->index_files},
               {"packs", res->packs}, {"snapshots", res->snapshots}, {"trees", res->trees},
               {"packs_read", res->packs_read}, {"blobs_read", res->blobs_read},
               {"bytes_read", res->bytes_read}});
  } else {
    std::printf("checked %llu index files, %llu packs, %llu snapshots, %llu trees",
                (unsigned long long)res->index_files, (unsigned long long)res->packs,
                (unsigned long long)res->snapshots, (unsigned long long)res->trees);
    if (opts.read_data)
      std::printf("; read %llu packs, %llu blobs, %s", (unsigned long long)res->packs_read,
                  (unsigned long long)res->blobs_read, HumanBytes(res->bytes_read).c_str());
    std::printf("\n");
    for (const auto& w : res->warnings) std::printf("warning: %s\n", w.c_str());
    for (const auto& e : res->errors) std::printf("error: %s\n", e.c_str());
    if (!res->affected.empty()) {
      std::printf("damage affects:\n");
      for (const auto& a : res->affected) std::printf("  %s\n", a.c_str());
    }
    std::printf(res->ok() ? "no errors were found\n" : "the repository is damaged\n");
  }
  return res->ok() ? 0 : ExitCodeFor(Code::kCorruption);
}

int RunRepairIndex() {
  auto r = OpenRepo(LockMode::kExclusive, "repair index");
  if (!r.ok()) return Fail(r.status());
  auto res = repo::RepairIndex(*r->repo);
  if (!res.ok()) return Fail(res.status());
  for (const auto& e : res->errors) std::fprintf(stderr, "warning: %s\n", e.c_str());
  if (Globals().json)
    PrintJson({{"packs", res->packs}, {"blobs", res->blobs}, {"bad_packs", res->bad_packs},
               {"index_files_written", res->index_files_written},
               {"index_files_removed", res->index_files_removed}, {"errors", res->errors}});
  else
    std::printf("indexed %llu blobs in %llu packs; wrote %llu index files, removed %llu\n",
                (unsigned long long)res->blobs, (unsigned long long)res->packs,
                (unsigned long long)res->index_files_written,
                (unsigned long long)res->index_files_removed);
  return res->bad_packs ? ExitCodeFor(Code::kIncomplete) : 0;
}

int RunPrune(bool dry_run, double max_unused_pct) {
  if (max_unused_pct < 0 || max_unused_pct > 100)
    return Fail(Err(Code::kInvalidArgument, "--max-unused wants a percentage in [0, 100]"));
  // A shared lock, unique among prunes: backups and wal-push keep appending meanwhile.
  auto r = OpenRepo(LockMode::kNone, "prune");
  if (!r.ok()) return Fail(r.status());
  auto lock = repo::RepoLock::Acquire(r->repo->storage(), false, "prune", true);
  if (!lock.ok()) return Fail(lock.status());
  repo::PruneOptions opts;
  opts.dry_run = dry_run;
  opts.max_unused = max_unused_pct / 100.0;
  opts.threads = Globals().threads;
  auto res = repo::Prune(*r->repo, opts);
  if (!res.ok()) return Fail(res.status().WithContext("prune"));
  const auto& p = *res;
  if (Globals().json) {
    PrintJson({{"dry_run", dry_run}, {"snapshots", p.snapshots}, {"packs_total", p.packs_total},
               {"packs_unused", p.packs_unused}, {"packs_repacked", p.packs_repacked},
               {"packs_unindexed", p.packs_unindexed}, {"blobs_referenced", p.blobs_referenced},
               {"blobs_unreferenced", p.blobs_unreferenced}, {"bytes_total", p.bytes_total},
               {"bytes_unreferenced", p.bytes_unreferenced}, {"bytes_repacked", p.bytes_repacked},
               {"packs_deleted", p.packs_deleted}, {"bytes_deleted", p.bytes_deleted},
               {"packs_resurrected", p.packs_resurrected}, {"packs_waiting", p.packs_waiting},
               {"bytes_waiting", p.bytes_waiting}, {"waiting_for", p.waiting_for},
               {"index_files_written", p.index_files_written},
               {"index_files_removed", p.index_files_removed}});
    return 0;
  }
  std::printf("%s%llu snapshots reference %llu blobs; %llu blobs (%s) are unreferenced\n",
              dry_run ? "dry run: " : "", (unsigned long long)p.snapshots,
              (unsigned long long)p.blobs_referenced, (unsigned long long)p.blobs_unreferenced,
              HumanBytes(p.bytes_unreferenced).c_str());
  std::printf("packs: %llu total, %llu unused, %llu %s, %llu not in any index\n",
              (unsigned long long)p.packs_total, (unsigned long long)p.packs_unused,
              (unsigned long long)p.packs_repacked, dry_run ? "to repack" : "repacked",
              (unsigned long long)p.packs_unindexed);
  if (!dry_run) {
    std::printf("deleted %llu packs, reclaimed %s (repacked %s of live data)\n",
                (unsigned long long)p.packs_deleted, HumanBytes(p.bytes_deleted).c_str(),
                HumanBytes(p.bytes_repacked).c_str());
    if (p.packs_resurrected)
      std::printf("kept %llu condemned packs that a later snapshot uses\n",
                  (unsigned long long)p.packs_resurrected);
  }
  if (p.packs_waiting)
    std::printf("%llu packs (%s) %s deleted once no process that started before this prune "
                "can use them%s%s; the next prune deletes them\n",
                (unsigned long long)p.packs_waiting, HumanBytes(p.bytes_waiting).c_str(),
                dry_run ? "would be" : "will be", p.waiting_for.empty() ? "" : ": waiting for ",
                p.waiting_for.c_str());
  return 0;
}

int RunLocks(bool remove, bool all) {
  auto r = OpenRepo(LockMode::kNone, "locks");
  if (!r.ok()) return Fail(r.status());
  if (remove) {
    auto n = repo::RemoveLocks(r->repo->storage(), all);
    if (!n.ok()) return Fail(n.status());
    if (Globals().json) PrintJson({{"removed", *n}});
    else std::printf("removed %d lock(s)\n", *n);
    return 0;
  }
  auto locks = repo::ListLocks(r->repo->storage());
  if (!locks.ok()) return Fail(locks.status());
  json out = json::array();
  for (const auto& l : *locks) {
    if (Globals().json)
      out.push_back({{"id", l.id}, {"host", l.host}, {"user", l.user}, {"pid", l.pid},
                     {"time", l.time_unix}, {"exclusive", l.exclusive}, {"purpose", l.purpose},
                     {"stale", l.stale}, {"stale_reason", l.stale_reason}});
    else
      std::printf("%s %s %s@%s pid %lld %s%s\n", l.id.substr(0, 8).c_str(),
                  l.exclusive ? "exclusive" : "shared", l.user.c_str(), l.host.c_str(),
                  (long long)l.pid, l.purpose.c_str(),
                  l.stale ? (" STALE: " + l.stale_reason).c_str() : "");
  }
  if (Globals().json) PrintJson(out);
  return 0;
}

}  // namespace

void AddRepoCommands(CLI::App& app, Runner& run) {
  static std::string params_from;
  auto* init = app.add_subcommand("init", "create a repository");
  init->add_option("--copy-params-from", params_from,
                   "take blob ids and chunker parameters from this repository, so 'copy' from "
                   "it needs no id translation (its secret: --from-password-file, "
                   "--from-key-file, LIFEBOAT_FROM_*)");
  AddFromSecretOptions(*init);
  init->callback([&] { run = [] { return RunInit(params_from); }; });

  auto* key = app.add_subcommand("key", "manage the keys that open the repository");
  key->require_subcommand(1);
  key->add_subcommand("list", "list keys")->callback([&] { run = RunKeyList; });
  auto* add = key->add_subcommand("add", "add a key for another password");
  static std::string new_pw_file, generate;
  add->add_option("--new-password-file", new_pw_file, "file holding the new password");
  add->add_option("--generate-key-file", generate,
                  "create a random key file at this path (mode 600) and add a key for it");
  static std::string existing_key_file;
  add->add_option("--new-key-file", existing_key_file,
                  "add a key for an existing key file (made by --generate-key-file for another "
                  "repository), so one key file opens both");
  add->callback([&] { run = [] { return RunKeyAdd(new_pw_file, generate, existing_key_file); }; });
  auto* rm = key->add_subcommand("remove", "remove a key");
  static std::string key_id;
  rm->add_option("ID", key_id, "key id or unique prefix")->required();
  rm->callback([&] { run = [] { return RunKeyRemove(key_id); }; });

  static SnapshotFilter filter;
  auto* snaps = app.add_subcommand("snapshots", "list snapshots");
  snaps->add_option("--kind", filter.kind,
                    "only this kind (files, logs, command, pg-base, pg-dump)");
  snaps->add_option("--host", filter.host, "only this host");
  snaps->add_option("--tag", filter.tags, "only snapshots with this tag (repeatable)")->allow_extra_args(false);
  snaps->callback([&] { run = [] { return RunSnapshots(filter); }; });

  static std::string ls_ref, ls_path;
  auto* ls = app.add_subcommand("ls", "list the entries of a snapshot");
  ls->add_option("SNAPSHOT", ls_ref, "snapshot id, prefix or 'latest'")->required();
  ls->add_option("PATH", ls_path, "only this path and what lies below it");
  ls->callback([&] { run = [] { return RunLs(ls_ref, ls_path); }; });

  static std::string diff_a, diff_b;
  auto* diff = app.add_subcommand("diff", "show what changed between two snapshots");
  diff->add_option("A", diff_a, "the older snapshot (id, prefix or 'latest')")->required();
  diff->add_option("B", diff_b, "the newer snapshot")->required();
  diff->callback([&] { run = [] { return RunDiff(diff_a, diff_b); }; });

  static bool read_data = false;
  static std::string subset;
  auto* check = app.add_subcommand("check", "verify the repository");
  check->add_flag("--read-data", read_data, "also read and verify every blob");
  check->add_option("--read-data-subset", subset, "read and verify N% of the packs");
  check->callback([&] { run = [] { return RunCheck(read_data, subset); }; });

  auto* repair = app.add_subcommand("repair", "repair repository structures");
  repair->require_subcommand(1);
  repair->add_subcommand("index", "rebuild the index from the packs alone")
      ->callback([&] { run = RunRepairIndex; });

  static bool prune_dry = false;
  static double prune_max_unused = 30;
  auto* prune = app.add_subcommand("prune", "remove unreferenced data, repack mostly-garbage packs");
  prune->add_flag("--dry-run", prune_dry, "show what would be removed, remove nothing");
  prune->add_option("--max-unused", prune_max_unused,
                    "repack packs with at least this % of unreferenced bytes (default 30)");
  prune->callback([&] { run = [] { return RunPrune(prune_dry, prune_max_unused); }; });

  static bool unlock_all = false;
  auto* unlock = app.add_subcommand("unlock", "remove stale locks");
  unlock->add_flag("--remove-all", unlock_all, "remove every lock, also live ones");
  unlock->callback([&] { run = [] { return RunLocks(true, unlock_all); }; });
  app.add_subcommand("locks", "list locks and whether they are stale")
      ->callback([&] { run = [] { return RunLocks(false, false); }; });
}

}  // namespace lb::cli
