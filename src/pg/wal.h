// The WAL archive: segment names and LSN arithmetic, and pushing/fetching WAL files as
// sealed objects of their own (one read per wal-get; no index involved), under
// wal/<source>/<timeline+log>/<segment> and wal/<source>/meta/<history|backup|partial>.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "repo/repository.h"

namespace lb::pg {

struct SegmentName {
  uint32_t tli = 0, log = 0, seg = 0;
  auto operator<=>(const SegmentName&) const = default;
};

inline constexpr uint64_t kDefaultSegmentSize = 16u << 20;

bool ParseSegmentName(std::string_view name, SegmentName& out);
std::string FormatSegmentName(const SegmentName& s);
uint64_t SegmentsPerLog(uint64_t seg_size);  // 0x100000000 / seg_size
SegmentName NextSegment(const SegmentName& s, uint64_t seg_size);
SegmentName SegmentOfLsn(uint32_t tli, uint64_t lsn, uint64_t seg_size);
uint64_t SegmentStartLsn(const SegmentName& s, uint64_t seg_size);
// "16/B374D848" <-> 64-bit LSN.
bool ParseLsn(std::string_view text, uint64_t& lsn);
std::string FormatLsn(uint64_t lsn);

// What the repository knows of a cluster (stored at pg/<source>/cluster, sealed JSON).
struct ClusterInfo {
  uint64_t system_id = 0;
  uint32_t segment_size = 0;
  int version = 0;  // server_version_num / 100 (e.g. 1500), 0 when only WAL was seen
};
Result<std::optional<ClusterInfo>> LoadClusterInfo(repo::Repository& repo,
                                                   const std::string& source);
// Records the cluster on first use; later calls check the system identifier matches and
// fill in a missing version. kFailedPrecondition on a different system identifier.
Status RegisterCluster(repo::Repository& repo, const std::string& source, ClusterInfo info);

std::string WalObjectName(const std::string& source, const std::string& file_name);

struct PushResult {
  bool already_there = false;  // same content was archived before
  uint64_t bytes = 0, stored = 0;
};
// Archives the WAL file at `path` (as PostgreSQL's %p) under its base name. Segments are
// checked for the cluster's system identifier first; a name already archived with the same
// content succeeds, with different content fails with kAlreadyExists.
Result<PushResult> PushWal(repo::Repository& repo, const std::string& source,
                           const std::string& path, int level);

// Fetches WAL file `name` into `dest` (written to a temp name, fsynced, renamed).
// kNotFound when the archive does not have it.
Status GetWal(repo::Repository& repo, const std::string& source, const std::string& name,
              const std::string& dest);

// Fetches up to `count` segments after `after` (same timeline) into `spool_dir`, two at a
// time, stopping at the first one the archive lacks. Segments already spooled are skipped.
// Returns how many were fetched. Meant to run in a background process started by wal-get.
Result<int> PrefetchWal(repo::Repository& repo, const std::string& source,
                        const std::string& after, const std::string& spool_dir, int count,
                        uint64_t seg_size);

struct ArchivedWal {
  std::string name;   // file name
  uint64_t size = 0;  // stored size
  int64_t mtime = 0;  // when archived (seconds)
};
// Every archived WAL file of `source`, sorted by name.
Result<std::vector<ArchivedWal>> ListWal(repo::Repository& repo, const std::string& source);

// Segment header facts (XLogLongPageHeaderData at the start of every segment).
struct SegmentHeader {
  uint32_t tli = 0;
  uint64_t pageaddr = 0;
  uint64_t system_id = 0;
  uint32_t segment_size = 0;
};
Result<SegmentHeader> ReadSegmentHeader(ByteSpan segment);

}  // namespace lb::pg
