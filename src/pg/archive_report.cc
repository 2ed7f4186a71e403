#include "pg/archive_report.h"

#include <ctime>
#include <map>

#include "pg/base_backup.h"
#include "pg/wal.h"
#include "repo/names.h"

namespace lb::pg {

bool ArchiveReport::ok() const {
  for (const auto& t : timelines)
    if (!t.gaps.empty()) return false;
  for (const auto& b : backups)
    if (!b.wal_complete) return false;
  return true;
}

Result<ArchiveReport> VerifyArchive(repo::Repository& repo, const std::string& source) {
  ArchiveReport rep;
  LB_ASSIGN_OR_RETURN(auto info, LoadClusterInfo(repo, source));
  uint64_t seg_size = info ? info->segment_size : kDefaultSegmentSize;
  LB_ASSIGN_OR_RETURN(auto wal, ListWal(repo, source));
  // Segments by timeline, in order; archive times by name.
  std::map<uint32_t, std::vector<SegmentName>> by_tli;
  std::map<std::string, int64_t> archived_at;
  for (const auto& w : wal) {
    SegmentName s;
    if (ParseSegmentName(w.name, s)) {
      by_tli[s.tli].push_back(s);
      archived_at[w.name] = w.mtime;
    } else {
      rep.other_files.push_back(w.name);
    }
  }
  for (auto& [tli, segs] : by_tli) {
    TimelineReport t;
    t.timeline = tli;
    t.segments = segs.size();
    t.first = FormatSegmentName(segs.front());
    t.last = FormatSegmentName(segs.back());
    for (size_t i = 1; i < segs.size(); ++i) {
      SegmentName expect = NextSegment(segs[i - 1], seg_size);
      if (expect != segs[i]) {
        // The gap is [expect, the segment before segs[i]].
        SegmentName before = segs[i - 1];
        SegmentName walk = expect;
        while (NextSegment(walk, seg_size) < segs[i]) walk = NextSegment(walk, seg_size);
        (void)before;
        t.gaps.emplace_back(FormatSegmentName(expect), FormatSegmentName(walk));
      }
    }
    rep.timelines.push_back(std::move(t));
  }
  LB_ASSIGN_OR_RETURN(auto backups, ListBaseBackups(repo, source));
  for (auto& b : backups) {
    BackupWindow w;
    SegmentName start, stop;
    if (!ParseSegmentName(b.extra.value("start_segment", ""), start) ||
        !ParseSegmentName(b.extra.value("stop_segment", ""), stop)) {
      w.backup = std::move(b);
      w.missing = "(backup has no WAL range)";
      rep.backups.push_back(std::move(w));
      continue;
    }
    w.earliest = b.extra.value("stop_time", "");
    SegmentName s = start;
    w.wal_complete = true;
    std::string last;
    while (true) {
      std::string name = FormatSegmentName(s);
      if (!archived_at.count(name)) {
        if (s <= stop) {
          w.wal_complete = false;
          w.missing = name;
        }
        break;
      }
      last = name;
      s = NextSegment(s, seg_size);
    }
    w.last_segment = last;
    if (!last.empty() && w.wal_complete)
      w.latest = repo::FormatRfc3339(archived_at[last] * 1000000000);
    w.backup = std::move(b);
    rep.backups.push_back(std::move(w));
  }
  return rep;
}

Result<WalExpireResult> ExpireWal(repo::Repository& repo, const std::string& source,
                                  int64_t retention_seconds, bool dry_run) {
  WalExpireResult res;
  LB_ASSIGN_OR_RETURN(auto info, LoadClusterInfo(repo, source));
  uint64_t seg_size = info ? info->segment_size : kDefaultSegmentSize;
  LB_ASSIGN_OR_RETURN(auto backups, ListBaseBackups(repo, source));
  if (backups.empty()) return res;  // nothing could replay older WAL, but nothing to anchor on
  // The oldest backup by start LSN: WAL from its start onwards stays.
  uint64_t keep_from = UINT64_MAX;
  for (const auto& b : backups) {
    uint64_t lsn = 0;
    if (!ParseLsn(b.extra.value("start_lsn", ""), lsn)) continue;
    if (lsn < keep_from) {
      keep_from = lsn;
      res.oldest_backup = b.id.Hex();
    }
  }
  if (keep_from == UINT64_MAX) return res;
  int64_t cutoff = int64_t(time(nullptr)) - retention_seconds;
  LB_ASSIGN_OR_RETURN(auto wal, ListWal(repo, source));
  for (const auto& w : wal) {
    SegmentName s;
    if (!ParseSegmentName(w.name, s)) continue;  // history and backup-history files stay
    bool before_backup = SegmentStartLsn(s, seg_size) + seg_size <= keep_from;
    if (!before_backup || w.mtime >= cutoff) {
      res.segments_kept++;
      if (res.first_kept.empty() || w.name.substr(8) < res.first_kept.substr(8))
        res.first_kept = w.name;
      continue;
    }
    if (!dry_run) {
      Status st = repo.storage().Remove(WalObjectName(source, w.name));
      if (!st.ok() && st.code() != Code::kNotFound) return st.WithContext("remove WAL " + w.name);
    }
    res.segments_removed++;
    res.bytes_removed += w.size;
  }
  return res;
}

}  // namespace lb::pg
