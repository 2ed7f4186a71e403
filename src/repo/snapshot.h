// Snapshot manifests: what was backed up, when, from where, and the root of its tree.
// Stored as sealed JSON under snapshots/ (docs/repository-format.md, "Snapshots").
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "repo/repository.h"

namespace lb::repo {

struct Snapshot {
  crypto::Id id;             // SHA-256 of the stored object; not part of the JSON
  std::string time;          // RFC 3339 UTC, nanoseconds
  int64_t time_ns = 0;       // parsed `time`
  std::string host;
  std::string user;
  std::vector<std::string> tags;
  std::string kind = "files";  // source kind: files, command, logs, pg-base, pg-dump ...
  std::string source;          // source name within its kind (optional)
  std::vector<std::string> paths;
  crypto::Id tree;
  std::optional<crypto::Id> parent;
  // Set on a copy made by `lifeboat copy`: the id of the snapshot it was first copied from,
  // kept through copies of copies, so every repository recognises the snapshot as the same.
  std::optional<crypto::Id> original;
  nlohmann::json summary = nlohmann::json::object();  // counts, sizes, duration
  nlohmann::json extra = nlohmann::json::object();    // kind-specific fields

  nlohmann::json ToJson(bool with_id) const;
  static Result<Snapshot> FromJson(const nlohmann::json& j);
};

// The snapshot's identity across repositories: `original` when it is a copy, else its id.
inline const crypto::Id& OriginalId(const Snapshot& snap) {
  return snap.original ? *snap.original : snap.id;
}

// Sets host (this host's name unless `host` is given) and user (the process's user).
void SetOrigin(Snapshot& snap, const std::string& host = "");

// Writes the snapshot (the last step of a backup: everything it names is already durable).
Result<crypto::Id> SaveSnapshot(Repository& repo, Snapshot& snap);

// Every snapshot, oldest first. Unreadable ones are returned in `damaged` (id + error) when
// given, else they fail the call.
struct DamagedSnapshot {
  std::string id;
  Status error;
};
Result<std::vector<Snapshot>> ListSnapshots(Repository& repo,
                                            std::vector<DamagedSnapshot>* damaged = nullptr);

// Resolves "latest" (newest of all, or of `kind` when given), a full id or a unique prefix.
Result<Snapshot> FindSnapshot(Repository& repo, std::string_view ref, std::string_view kind = "");

}  // namespace lb::repo
