#include "ops/recovery_points.h"

#include <fmt/format.h>

#include <map>
#include <tuple>

#include "pg/wal.h"
#include "pg/wal_copy.h"
#include "repo/snapshot.h"

namespace lb::ops {

using nlohmann::json;

json RecoveryPoints::ToJson() const {
  json snaps = json::array(), wals = json::array();
  for (const auto& s : snapshots)
    snaps.push_back({{"id", s.id},
                     {"kind", s.kind},
                     {"source", s.source},
                     {"tags", s.tags},
                     {"time", s.time},
                     {"count", s.count}});
  for (const auto& w : wal)
    wals.push_back({{"source", w.source},
                    {"newest", w.newest},
                    {"archived_at", w.archived_at},
                    {"files", w.files}});
  return {{"repository", repository}, {"snapshots", snaps}, {"wal", wals}};
}

RecoveryPoints RecoveryPoints::FromJson(const json& j) {
  RecoveryPoints p;
  if (!j.is_object()) return p;
  p.repository = j.value("repository", "");
  for (const auto& s : j.value("snapshots", json::array())) {
    SnapshotPoint sp;
    sp.id = s.value("id", "");
    sp.kind = s.value("kind", "");
    sp.source = s.value("source", "");
    sp.tags = s.value("tags", std::vector<std::string>{});
    sp.time = s.value("time", 0.0);
    sp.count = s.value("count", uint64_t{0});
    p.snapshots.push_back(std::move(sp));
  }
  for (const auto& w : j.value("wal", json::array())) {
    WalPoint wp;
    wp.source = w.value("source", "");
    wp.newest = w.value("newest", "");
    wp.archived_at = w.value("archived_at", 0.0);
    wp.files = w.value("files", uint64_t{0});
    p.wal.push_back(std::move(wp));
  }
  return p;
}

Result<RecoveryPoints> ReadRecoveryPoints(repo::Repository& repo) {
  RecoveryPoints out;
  std::vector<repo::DamagedSnapshot> damaged;
  LB_ASSIGN_OR_RETURN(auto snaps, repo::ListSnapshots(repo, &damaged));
  std::map<std::tuple<std::string, std::string, std::vector<std::string>>, SnapshotPoint> groups;
  for (const auto& s : snaps) {
    auto& g = groups[{s.kind, s.source, s.tags}];
    double t = double(s.time_ns) / 1e9;
    ++g.count;
    if (g.count == 1 || t >= g.time) {
      g.id = s.id.Hex();
      g.kind = s.kind;
      g.source = s.source;
      g.tags = s.tags;
      g.time = t;
    }
  }
  for (auto& [k, g] : groups) out.snapshots.push_back(std::move(g));
  LB_ASSIGN_OR_RETURN(auto sources, pg::ListWalSources(repo));
  for (const auto& src : sources) {
    LB_ASSIGN_OR_RETURN(auto files, pg::ListWal(repo, src));
    WalPoint w;
    w.source = src;
    for (const auto& f : files) {
      pg::SegmentName seg;
      if (!pg::ParseSegmentName(f.name, seg)) continue;  // history and backup files
      ++w.files;
      if (f.name > w.newest) w.newest = f.name;
      w.archived_at = std::max(w.archived_at, double(f.mtime));
    }
    out.wal.push_back(std::move(w));
  }
  return out;
}

}  // namespace lb::ops

#include <chrono>

#include "ops/child.h"
#include "ops/job_steps.h"
#include "plan/plan.h"

namespace lb::ops {

Observation ObserveRepositories(const plan::Plan& plan, const std::string& program,
                                int64_t timeout_seconds, const std::atomic<bool>* stop) {
  Observation o;
  for (const auto& r : plan.repositories) {
    if (stop && stop->load()) break;
    RepositoryAccess a = AccessFor(plan, r);
    ChildRequest req;
    req.argv = {program};
    req.argv.insert(req.argv.end(), a.args.begin(), a.args.end());
    req.argv.push_back("--json");
    req.argv.push_back("recovery-points");
    req.env = a.env;
    req.unset = kJobEnvUnset;
    req.unset_prefixes = kJobEnvPrefixesUnset;
    req.timeout_seconds = timeout_seconds;
    req.stop = stop;
    auto out = RunChild(req);
    if (!out.ok()) {
      o.errors.push_back(fmt::format("repository '{}': {}", r.name, out.status().message()));
      continue;
    }
    if (!out->ok()) {
      std::string why = FirstLine(out->err);
      if (out->timed_out) why = fmt::format("no answer within {} s", timeout_seconds);
      o.errors.push_back(
          fmt::format("repository '{}': {}", r.name, why.empty() ? "could not be read" : why));
      continue;
    }
    auto j = nlohmann::json::parse(out->out, nullptr, false);
    if (!j.is_object()) {
      o.errors.push_back(fmt::format("repository '{}': unreadable answer", r.name));
      continue;
    }
    RecoveryPoints p = RecoveryPoints::FromJson(j);
    p.repository = r.name;
    o.repositories.push_back(std::move(p));
  }
  o.taken_at =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  return o;
}

}  // namespace lb::ops
