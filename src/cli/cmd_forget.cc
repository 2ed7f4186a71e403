// forget: remove snapshots by a retention policy (restic's --keep-* rules) or by id. Only the
// snapshot manifests go; the data they named is reclaimed by a later prune.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "cli/common.h"
#include "repo/retention.h"
#include "repo/snapshot.h"
#include "util/log.h"

namespace lb::cli {

using nlohmann::json;

namespace {

struct ForgetArgs {
  repo::RetentionPolicy policy = {};
  std::string keep_within = {};  // as given; parsed by RunForgetPolicy
  std::string group_by = "host,kind,source,paths";
  bool group_by_given = false;
  repo::SnapshotFilter filter = {};
  std::vector<std::string> refs = {};
  bool dry_run = false;
};

std::string ShortTime(const std::string& rfc) { return rfc.substr(0, 19).replace(10, 1, " "); }

std::string Join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

std::string Plural(size_t n) { return n == 1 ? "snapshot" : "snapshots"; }

// "keep-last 2, keep-daily 7, keep-within 30d, keep-tag release", in the user's flag names.
std::string DescribePolicy(const repo::RetentionPolicy& p) {
  std::vector<std::string> parts;
  auto count = [&](const char* name, int n) {
    if (n == repo::kKeepUnlimited) parts.push_back(fmt::format("{} unlimited", name));
    else if (n != 0) parts.push_back(fmt::format("{} {}", name, n));
  };
  count("keep-last", p.keep_last);
  count("keep-hourly", p.keep_hourly);
  count("keep-daily", p.keep_daily);
  count("keep-weekly", p.keep_weekly);
  count("keep-monthly", p.keep_monthly);
  count("keep-yearly", p.keep_yearly);
  if (!p.keep_within.IsZero()) parts.push_back("keep-within " + p.keep_within.ToString());
  for (const auto& t : p.keep_tags) parts.push_back("keep-tag " + t);
  return Join(parts, ", ");
}

void PrintRemoveTable(const std::vector<const repo::Snapshot*>& remove, bool dry_run) {
  std::printf("%s %zu %s%s\n", dry_run ? "would remove" : "remove", remove.size(),
              Plural(remove.size()).c_str(), remove.empty() ? "" : ":");
  if (remove.empty()) return;
  std::printf("  %-8s  %s\n", "ID", "Time (UTC)");
  for (const auto* s : remove)
    std::printf("  %-8s  %s\n", s->id.Short().c_str(), ShortTime(s->time).c_str());
}

// Removes `ids` (unless a dry run) and prints the closing line or the JSON document.
int Finish(repo::Repository& repo, const std::vector<crypto::Id>& ids, bool dry_run, json out) {
  if (!dry_run && !ids.empty()) {
    Status s = repo::ForgetSnapshots(repo, ids);
    if (!s.ok()) return Fail(s);
  }
  size_t removed = dry_run ? 0 : ids.size();
  if (Globals().json) {
    out["dry_run"] = dry_run;
    out["removed"] = removed;
    PrintJson(out);
  } else if (dry_run) {
    std::printf("would remove %zu %s; nothing was removed (--dry-run)\n", ids.size(),
                Plural(ids.size()).c_str());
  } else if (removed == 0) {
    std::printf("no snapshot removed\n");
  } else {
    std::printf("%zu %s removed; run 'lifeboat prune' to reclaim space\n", removed,
                Plural(removed).c_str());
  }
  return 0;
}

int RunForgetIds(const ForgetArgs& a) {
  auto r = OpenRepo(LockMode::kShared, "forget");
  if (!r.ok()) return Fail(r.status());
  std::vector<repo::Snapshot> snaps;
  for (const auto& ref : a.refs) {
    auto s = repo::FindSnapshot(*r->repo, ref);
    if (!s.ok()) return Fail(s.status());
    bool dup = std::any_of(snaps.begin(), snaps.end(),
                           [&](const repo::Snapshot& o) { return o.id == s->id; });
    if (!dup) snaps.push_back(std::move(*s));
  }
  std::vector<crypto::Id> ids;
  std::vector<const repo::Snapshot*> rows;
  json remove = json::array();
  for (const auto& s : snaps) {
    ids.push_back(s.id);
    rows.push_back(&s);
    remove.push_back(s.ToJson(true));
  }
  if (!Globals().json) PrintRemoveTable(rows, a.dry_run);
  return Finish(*r->repo, ids, a.dry_run, {{"remove", remove}});
}

int RunForgetPolicy(ForgetArgs a) {
  if (!a.keep_within.empty()) {
    auto d = repo::ParseDuration(a.keep_within);
    if (!d.ok()) return Fail(d.status().WithContext("--keep-within"));
    a.policy.keep_within = *d;
  }
  auto group_by = repo::ParseGroupBy(a.group_by);
  if (!group_by.ok()) return Fail(group_by.status().WithContext("--group-by"));
  // Refused before the repository is opened: an empty policy would remove everything.
  Status valid = repo::ValidatePolicy(a.policy);
  if (!valid.ok() && a.policy.IsEmpty())
    return Fail(valid.WithHint("give at least one --keep-* option; to remove given snapshots, "
                               "name them: lifeboat forget SNAPSHOT..."));
  if (!valid.ok()) return Fail(valid);

  auto r = OpenRepo(LockMode::kShared, "forget");
  if (!r.ok()) return Fail(r.status());
  std::vector<repo::DamagedSnapshot> damaged;
  auto snaps = repo::ListSnapshots(*r->repo, &damaged);
  if (!snaps.ok()) return Fail(snaps.status());
  for (const auto& d : damaged)
    LogWarning("snapshot {} is unreadable and left alone: {}", d.id.substr(0, 8),
               d.error.ToString());
  auto groups = repo::ApplyPolicy(*snaps, a.policy, *group_by, a.filter);
  if (!groups.ok()) return Fail(groups.status());

  // Tables list oldest first, as 'lifeboat snapshots' does; the policy walks newest first.
  std::vector<crypto::Id> ids;
  json jgroups = json::array();
  if (!Globals().json) std::printf("applying policy: %s\n", DescribePolicy(a.policy).c_str());
  for (const auto& g : *groups) {
    json keep = json::array(), remove = json::array();
    for (auto it = g.keep.rbegin(); it != g.keep.rend(); ++it) {
      json j = it->snapshot.ToJson(true);
      j["reasons"] = it->reasons;
      keep.push_back(std::move(j));
    }
    std::vector<const repo::Snapshot*> rows;
    for (auto it = g.remove.rbegin(); it != g.remove.rend(); ++it) {
      ids.push_back(it->id);
      rows.push_back(&*it);
      remove.push_back(it->ToJson(true));
    }
    jgroups.push_back({{"group", g.key.ToJson()}, {"keep", keep}, {"remove", remove}});
    if (Globals().json) continue;
    std::printf("\ngroup %s\n", g.key.ToString().c_str());
    std::printf("keep %zu %s:\n", g.keep.size(), Plural(g.keep.size()).c_str());
    std::printf("  %-8s  %-19s  %s\n", "ID", "Time (UTC)", "Reasons");
    for (auto it = g.keep.rbegin(); it != g.keep.rend(); ++it)
      std::printf("  %-8s  %-19s  %s\n", it->snapshot.id.Short().c_str(),
                  ShortTime(it->snapshot.time).c_str(), Join(it->reasons, ", ").c_str());
    PrintRemoveTable(rows, a.dry_run);
  }
  if (!Globals().json) std::printf("\n");
  return Finish(*r->repo, ids, a.dry_run, {{"groups", jgroups}});
}

int RunForget(const ForgetArgs& a) {
  if (a.refs.empty()) return RunForgetPolicy(a);
  bool policy_given = !a.policy.IsEmpty() || !a.keep_within.empty() || a.group_by_given ||
                      !a.filter.hosts.empty() || !a.filter.kinds.empty() ||
                      !a.filter.sources.empty() || !a.filter.tags.empty();
  if (policy_given)
    return Fail(Status(Code::kInvalidArgument,
                       "snapshot ids cannot be combined with --keep-*, --group-by or filters")
                    .WithHint("either name the snapshots to remove, or give a policy"));
  return RunForgetIds(a);
}

}  // namespace

void AddForgetCommands(CLI::App& app, Runner& run) {
  static ForgetArgs args;
  auto* f = app.add_subcommand(
      "forget", "remove snapshots by a retention policy, or the given ones (prune reclaims space)");
  auto count = [&](const char* name, int& field, const char* unit) {
    f->add_option(name, field,
                  fmt::format("keep the newest snapshot of each of the last N {} that have "
                              "snapshots (-1: every one)", unit));
  };
  f->add_option("--keep-last", args.policy.keep_last, "keep the N newest snapshots (-1: all)");
  count("--keep-hourly", args.policy.keep_hourly, "hours");
  count("--keep-daily", args.policy.keep_daily, "days");
  count("--keep-weekly", args.policy.keep_weekly, "ISO weeks");
  count("--keep-monthly", args.policy.keep_monthly, "months");
  count("--keep-yearly", args.policy.keep_yearly, "years");
  f->add_option("--keep-within", args.keep_within,
                "keep snapshots newer than the group's newest minus DURATION (units y m w d h: "
                "30d, 12h, 2w, 1y6m)");
  f->add_option("--keep-tag", args.policy.keep_tags,
                "always keep snapshots with this tag (repeatable)")
      ->allow_extra_args(false);
  f->add_option("--host", args.filter.hosts, "only snapshots of this host (repeatable)")
      ->allow_extra_args(false);
  f->add_option("--kind", args.filter.kinds, "only snapshots of this kind (repeatable)")
      ->allow_extra_args(false);
  f->add_option("--source", args.filter.sources, "only snapshots of this source (repeatable)")
      ->allow_extra_args(false);
  f->add_option("--tag", args.filter.tags,
                "only snapshots with this tag (repeatable: all must be present)")
      ->allow_extra_args(false);
  auto* group_by = f->add_option(
      "--group-by", args.group_by,
      "apply the policy per group of snapshots equal in these fields: comma list of host, kind, "
      "source, paths, tags; '' for one group (default: host,kind,source,paths)");
  f->add_flag("--dry-run", args.dry_run, "show what would be removed; remove nothing");
  f->add_option("SNAPSHOT", args.refs,
                "remove these snapshots (id, unique prefix or 'latest') instead of applying a "
                "policy");
  f->callback([&run, group_by] {
    args.group_by_given = group_by->count() > 0;
    run = [] { return RunForget(args); };
  });
}

}  // namespace lb::cli
