#include "repo/snapshot.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "repo/names.h"

namespace lb::repo {

using nlohmann::json;

json Snapshot::ToJson(bool with_id) const {
  json j = {{"time", time},       {"host", host},   {"user", user},
            {"tags", tags},       {"kind", kind},   {"source", source},
            {"paths", paths},     {"tree", tree.Hex()},
            {"summary", summary}, {"extra", extra}};
  if (parent) j["parent"] = parent->Hex();
  if (original) j["original"] = original->Hex();
  if (with_id) {
    j["id"] = id.Hex();
    j["short_id"] = id.Short();
  }
  return j;
}

Result<Snapshot> Snapshot::FromJson(const json& j) {
  try {
    Snapshot s;
    s.time = j.at("time").get<std::string>();
    if (!ParseRfc3339(s.time, s.time_ns))
      return Err(Code::kCorruption, "snapshot: bad time '{}'", s.time);
    s.host = j.value("host", "");
    s.user = j.value("user", "");
    s.tags = j.value("tags", std::vector<std::string>{});
    s.kind = j.value("kind", "files");
    s.source = j.value("source", "");
    s.paths = j.value("paths", std::vector<std::string>{});
    if (!crypto::Id::Parse(j.at("tree").get<std::string>(), s.tree))
      return Err(Code::kCorruption, "snapshot: bad tree id");
    if (j.contains("parent")) {
      crypto::Id p;
      if (!crypto::Id::Parse(j.at("parent").get<std::string>(), p))
        return Err(Code::kCorruption, "snapshot: bad parent id");
      s.parent = p;
    }
    if (j.contains("original")) {
      crypto::Id o;
      if (!crypto::Id::Parse(j.at("original").get<std::string>(), o))
        return Err(Code::kCorruption, "snapshot: bad original id");
      s.original = o;
    }
    s.summary = j.value("summary", json::object());
    s.extra = j.value("extra", json::object());
    return s;
  } catch (const std::exception& e) {
    return Err(Code::kCorruption, "snapshot: {}", e.what());
  }
}

void SetOrigin(Snapshot& snap, const std::string& host) {
  char name[256] = {};
  gethostname(name, sizeof name - 1);
  snap.host = host.empty() ? name : host;
  const char* user = getenv("USER");
  snap.user = user ? user : std::to_string(geteuid());
}

Result<crypto::Id> SaveSnapshot(Repository& repo, Snapshot& snap) {
  if (snap.time.empty()) snap.time = NowRfc3339();
  (void)ParseRfc3339(snap.time, snap.time_ns);
  // Paths may hold bytes that are not UTF-8; the tree keeps them exactly, this list is for
  // display, so invalid sequences are replaced here rather than failing the backup.
  std::string text =
      snap.ToJson(false).dump(-1, ' ', false, json::error_handler_t::replace);
  LB_ASSIGN_OR_RETURN(snap.id, repo.SaveFile("snapshots", AsBytes(text)));
  return snap.id;
}

Result<std::vector<Snapshot>> ListSnapshots(Repository& repo,
                                            std::vector<DamagedSnapshot>* damaged) {
  std::vector<crypto::Id> ids;
  LB_RETURN_IF_ERROR(repo.storage().List("snapshots/", [&](const storage::ObjectInfo& o) {
    crypto::Id id;
    if (IdFromName(o.name, id)) ids.push_back(id);
    return Status::Ok();
  }));
  std::vector<Snapshot> out;
  for (const auto& id : ids) {
    auto load = [&]() -> Result<Snapshot> {
      LB_ASSIGN_OR_RETURN(Bytes b, repo.LoadFile("snapshots", id));
      json j;
      try {
        j = json::parse(AsString(b));
      } catch (const std::exception& e) {
        return Err(Code::kCorruption, "snapshot '{}': {}", id.Short(), e.what());
      }
      LB_ASSIGN_OR_RETURN(Snapshot s, Snapshot::FromJson(j));
      s.id = id;
      return s;
    };
    auto s = load();
    if (!s.ok()) {
      if (s.status().code() == Code::kNotFound) continue;  // removed meanwhile
      if (!damaged) return s.status();
      damaged->push_back({id.Hex(), s.status()});
      continue;
    }
    out.push_back(std::move(*s));
  }
  std::sort(out.begin(), out.end(), [](const Snapshot& a, const Snapshot& b) {
    return a.time_ns != b.time_ns ? a.time_ns < b.time_ns : a.id < b.id;
  });
  return out;
}

Result<Snapshot> FindSnapshot(Repository& repo, std::string_view ref, std::string_view kind) {
  if (ref.empty()) return Err(Code::kInvalidArgument, "no snapshot given");
  if (ref == "latest") {
    std::vector<DamagedSnapshot> damaged;
    LB_ASSIGN_OR_RETURN(auto all, ListSnapshots(repo, &damaged));
    for (auto it = all.rbegin(); it != all.rend(); ++it)
      if (kind.empty() || it->kind == kind) return *it;
    return Err(Code::kNotFound, "the repository has no {}snapshot",
               kind.empty() ? "" : std::string(kind) + " ");
  }
  std::vector<crypto::Id> matches;
  LB_RETURN_IF_ERROR(repo.storage().List("snapshots/", [&](const storage::ObjectInfo& o) {
    crypto::Id id;
    if (IdFromName(o.name, id) && id.Hex().compare(0, ref.size(), ref) == 0) matches.push_back(id);
    return Status::Ok();
  }));
  if (matches.empty()) return Err(Code::kNotFound, "no snapshot '{}'", ref);
  if (matches.size() > 1) return Err(Code::kInvalidArgument, "snapshot prefix '{}' is ambiguous", ref);
  LB_ASSIGN_OR_RETURN(Bytes b, repo.LoadFile("snapshots", matches[0]));
  json j;
  try {
    j = json::parse(AsString(b));
  } catch (const std::exception& e) {
    return Err(Code::kCorruption, "snapshot '{}': {}", matches[0].Short(), e.what());
  }
  LB_ASSIGN_OR_RETURN(Snapshot s, Snapshot::FromJson(j));
  s.id = matches[0];
  return s;
}

}  // namespace lb::repo
