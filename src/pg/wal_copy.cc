#include "pg/wal_copy.h"

#include <algorithm>
#include <cstdint>

#include "pg/base_backup.h"
#include "pg/wal.h"

namespace lb::pg {

Result<std::vector<std::string>> ListWalSources(repo::Repository& repo) {
  std::vector<std::string> out;
  constexpr std::string_view kSuffix = "/cluster";
  LB_RETURN_IF_ERROR(repo.storage().List("pg/", [&](const storage::ObjectInfo& o) {
    std::string_view n = o.name;
    if (n.size() > 3 + kSuffix.size() && n.substr(n.size() - kSuffix.size()) == kSuffix)
      out.emplace_back(n.substr(3, n.size() - 3 - kSuffix.size()));
    return Status::Ok();
  }));
  std::sort(out.begin(), out.end());
  return out;
}

Result<repo::NamedCopyResult> CopyWalArchive(repo::Repository& from, repo::Repository& to,
                                             const std::string& source,
                                             const WalCopyOptions& opts) {
  LB_ASSIGN_OR_RETURN(auto info, LoadClusterInfo(from, source));
  if (info && !opts.dry_run) LB_RETURN_IF_ERROR(RegisterCluster(to, source, *info));
  uint64_t seg_size = info && info->segment_size ? info->segment_size : kDefaultSegmentSize;

  // WAL from the start of the target's oldest base backup on, as `pg wal-expire` keeps it.
  LB_ASSIGN_OR_RETURN(auto backups, ListBaseBackups(to, source));
  for (const auto& b : opts.incoming_backups)
    if (b.kind == kBaseKind && b.source == source) backups.push_back(b);
  uint64_t keep_from = 0;
  bool anchored = false;
  for (const auto& b : backups) {
    uint64_t lsn = 0;
    if (!ParseLsn(b.extra.value("start_lsn", ""), lsn)) continue;
    keep_from = anchored ? std::min(keep_from, lsn) : lsn;
    anchored = true;
  }

  std::string prefix = "wal/" + source + "/";
  repo::NamedCopyOptions nopts;
  nopts.dry_run = opts.dry_run;
  nopts.threads = opts.threads;
  nopts.progress = opts.progress;
  nopts.select = [&](const std::string& name) {
    // wal/<source>/<dir>/<file>: a deeper name belongs to another source ("<source>/x").
    std::string_view rest = std::string_view(name).substr(prefix.size());
    size_t slash = rest.find('/');
    if (slash == std::string_view::npos || rest.find('/', slash + 1) != std::string_view::npos)
      return false;
    SegmentName s;
    if (!anchored || !ParseSegmentName(rest.substr(slash + 1), s)) return true;
    return SegmentStartLsn(s, seg_size) + seg_size > keep_from;
  };
  return repo::CopyNamedObjects(from, to, prefix, nopts);
}

}  // namespace lb::pg
