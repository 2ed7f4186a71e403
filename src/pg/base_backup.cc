#include "pg/base_backup.h"

#include <unistd.h>

#include <chrono>
#include <mutex>
#include <thread>

#include "pg/checksum.h"
#include "pg/session.h"
#include "pg/wal.h"
#include "repo/names.h"
#include "source/tree_walk.h"
#include "util/log.h"

namespace lb::pg {

using nlohmann::json;
using source::FileBackupOptions;

namespace {

// What PostgreSQL's documentation ("Making a Base Backup Using the Low Level API") says a
// base backup should leave out. Directories in kEmptyDirs are kept, without their contents.
const char* const kEmptyDirs[] = {"pg_wal",    "pg_replslot", "pg_dynshmem", "pg_notify",
                                  "pg_serial", "pg_snapshots", "pg_stat_tmp", "pg_subtrans"};
const char* const kSkipFiles[] = {"postmaster.pid", "postmaster.opts", "backup_label",
                                  "tablespace_map", "recovery.signal", "standby.signal",
                                  "recovery.conf", "postgresql.auto.conf.tmp", "lifeboat-spool",
                                  "lifeboat-recovery.log"};

FileBackupOptions::Select SelectEntry(const std::string& rel, bool is_dir) {
  using Sel = FileBackupOptions::Select;
  size_t slash = rel.rfind('/');
  std::string name = slash == std::string::npos ? rel : rel.substr(slash + 1);
  if (name == "pg_internal.init" || name.rfind("pgsql_tmp", 0) == 0) return Sel::kSkip;
  if (slash == std::string::npos) {  // top level of the data directory
    for (const char* d : kEmptyDirs)
      if (is_dir && name == d) return Sel::kEmpty;
    for (const char* f : kSkipFiles)
      if (name == f) return Sel::kSkip;
  }
  return Sel::kInclude;
}

std::string Now() { return repo::NowRfc3339(); }

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Waits until every segment from `first` to `last` is archived.
Status WaitForWal(repo::Repository& repo, const std::string& source, SegmentName first,
                  SegmentName last, uint64_t seg_size, int timeout_s) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  SegmentName s = first;
  int delay_ms = 50;
  while (true) {
    std::string name = FormatSegmentName(s);
    auto st = repo.storage().Stat(WalObjectName(source, name));
    if (st.ok()) {
      if (s == last) return Status::Ok();
      s = NextSegment(s, seg_size);
      continue;
    }
    if (st.status().code() != Code::kNotFound) return st.status();
    if (std::chrono::steady_clock::now() > deadline)
      return Status(Code::kUnavailable,
                    fmt::format("WAL segment {} did not reach the archive within {} s; the "
                                "backup is not complete and no snapshot was written",
                                name, timeout_s))
          .WithHint("check archive_mode=on and archive_command = 'lifeboat ... pg wal-push %p' "
                    "(and the server log for archiver failures)");
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    delay_ms = std::min(delay_ms * 2, 1000);
  }
}

}  // namespace

Result<std::vector<repo::Snapshot>> ListBaseBackups(repo::Repository& repo,
                                                    const std::string& source) {
  std::vector<repo::DamagedSnapshot> damaged;
  LB_ASSIGN_OR_RETURN(auto all, repo::ListSnapshots(repo, &damaged));
  std::vector<repo::Snapshot> out;
  for (auto& s : all)
    if (s.kind == kBaseKind && s.source == source) out.push_back(std::move(s));
  return out;
}

Result<BaseBackupResult> BackupCluster(repo::Repository& repo, const BaseBackupOptions& opts) {
  auto t0 = std::chrono::steady_clock::now();
  if (opts.block_size == 0 || opts.block_size % kPageSize != 0)
    return Err(Code::kInvalidArgument, "block size must be a multiple of 8192");
  LB_ASSIGN_OR_RETURN(auto session, Session::Connect(opts.conninfo));
  int version = session->server_version();
  if (version < 120000)
    return Err(Code::kFailedPrecondition, "PostgreSQL {} is too old (12 or newer is needed)",
               version);
  LB_ASSIGN_OR_RETURN(auto facts, session->Query(
      "SELECT (SELECT system_identifier FROM pg_control_system())::text,"
      " current_setting('data_directory'), current_setting('data_checksums'),"
      " (SELECT setting FROM pg_settings WHERE name = 'wal_segment_size'),"
      " current_setting('archive_mode'), pg_is_in_recovery()::text,"
      " (SELECT sum(pg_database_size(oid)) FROM pg_database)::text"));
  const Row& f = facts.at(0);
  ClusterInfo info;
  info.system_id = std::stoull(f[0]);
  info.segment_size = uint32_t(std::stoul(f[3]));
  info.version = version / 100;
  std::string pgdata = opts.pgdata.empty() ? f[1] : opts.pgdata;
  bool checksums = f[2] == "on";
  if (f[4] == "off")
    return Status(Code::kFailedPrecondition, "archive_mode is off: a base backup without its WAL "
                                             "cannot be restored")
        .WithHint("set archive_mode = on and archive_command = 'lifeboat ... pg wal-push %p'");
  if (f[5] == "true")
    return Err(Code::kFailedPrecondition, "backups from a standby are not supported yet; "
                                          "run this against the primary");
  uint64_t db_size = f[6].empty() ? 0 : std::stoull(f[6]);
  LB_RETURN_IF_ERROR(RegisterCluster(repo, opts.source, info));

  // The parent: newest base backup of this cluster.
  std::optional<repo::Snapshot> parent;
  {
    LB_ASSIGN_OR_RETURN(auto backups, ListBaseBackups(repo, opts.source));
    for (auto it = backups.rbegin(); it != backups.rend(); ++it)
      if (it->extra.value("system_identifier", "") == std::to_string(info.system_id)) {
        parent = *it;
        break;
      }
  }
  LB_ASSIGN_OR_RETURN(auto tablespaces, session->Query(
      "SELECT oid::text, pg_tablespace_location(oid) FROM pg_tablespace "
      "WHERE spcname NOT IN ('pg_default', 'pg_global') ORDER BY oid"));

  std::string label = "lifeboat " + Now();
  std::string start_sql = version >= 150000
      ? "SELECT pg_backup_start($1, true)::text"
      : "SELECT pg_start_backup($1, true, false)::text";
  std::string start_time = Now();
  int64_t start_ns = NowNs();
  LB_ASSIGN_OR_RETURN(auto start_rows, session->Query(start_sql, {label}));
  uint64_t start_lsn = 0;
  if (!ParseLsn(start_rows.at(0).at(0), start_lsn))
    return Err(Code::kInternal, "unexpected backup start LSN '{}'", start_rows[0][0]);
  // From here on the backup must be stopped on every path, or the session's end does it.
  auto stop_sql = version >= 150000
      ? "SELECT lsn::text, labelfile, spcmapfile FROM pg_backup_stop(false)"
      : "SELECT lsn::text, labelfile, spcmapfile FROM pg_stop_backup(false, false)";

  FileBackupOptions fo;
  fo.rooted = true;
  fo.threads = opts.threads;
  fo.progress = opts.progress;
  fo.allow_changes = true;
  fo.force_read = opts.full;
  fo.select = SelectEntry;
  uint32_t block = opts.block_size;
  fo.fixed_chunk = [block](const std::string& rel) -> uint32_t {
    return IsRelationFile(rel) ? block : 0;
  };
  // Same-granularity guard: a file is trusted unchanged only if its timestamps are older
  // than one second before the parent started.
  if (parent) {
    int64_t parent_start = 0;
    if (repo::ParseRfc3339(parent->extra.value("start_time", ""), parent_start))
      fo.trust_unchanged_before_ns = parent_start - 1000000000;
    else
      fo.force_read = true;
  }
  std::mutex bad_mu;
  std::vector<std::string> bad_pages;
  uint64_t pages_checked = 0;
  if (checksums) {
    fo.inspect = [&](const std::string& rel, uint64_t offset, ByteSpan data) {
      uint32_t segno = 0;
      if (!IsRelationFile(rel, &segno) || offset % kPageSize != 0) return;
      uint64_t n = data.size() / kPageSize, checked = 0;
      std::vector<std::string> found;
      for (uint64_t i = 0; i < n; ++i) {
        uint32_t blkno = uint32_t(uint64_t(segno) * kRelSegBlocks + offset / kPageSize + i);
        uint16_t want = 0, got = 0;
        auto v = VerifyPage(data.data() + i * kPageSize, blkno, start_lsn, &want, &got);
        if (v == PageVerdict::kOk) ++checked;
        if (v == PageVerdict::kBad)
          found.push_back(fmt::format("{} block {}: checksum {:#06x}, expected {:#06x}", rel,
                                      blkno, got, want));
      }
      std::lock_guard lock(bad_mu);
      pages_checked += checked;
      for (auto& b : found) bad_pages.push_back(std::move(b));
    };
  }

  source::TreeBackup tb(repo, fo);
  auto stop_backup = [&]() -> Result<std::vector<Row>> { return session->Query(stop_sql); };

  std::optional<crypto::Id> parent_tree;
  std::map<std::string, crypto::Id> parent_spc;
  if (parent) {
    parent_tree = parent->tree;
    auto nodes = repo.LoadBlob(parent->tree);
    if (nodes.ok()) {
      auto decoded = repo::DecodeTree(*nodes);
      if (decoded.ok())
        for (const auto& n : *decoded)
          if (n.name == kTablespaceDir && n.type == repo::NodeType::kDir) {
            auto spc = repo.LoadBlob(n.subtree);
            auto spc_nodes = spc.ok() ? repo::DecodeTree(*spc) : Result<std::vector<repo::Node>>(spc.status());
            if (spc_nodes.ok())
              for (const auto& t : *spc_nodes) parent_spc[t.name] = t.subtree;
          }
    }
  }
  auto data_tree = tb.BackupDir(pgdata, parent_tree);
  if (!data_tree.ok()) {
    (void)stop_backup();
    return data_tree.status().WithContext("back up data directory");
  }
  std::vector<repo::Node> spc_nodes;
  json spc_json = json::array();
  for (const auto& row : tablespaces) {
    std::optional<crypto::Id> old;
    if (parent_spc.count(row[0])) old = parent_spc[row[0]];
    auto t = tb.BackupDir(row[1], old);
    if (!t.ok()) {
      (void)stop_backup();
      return t.status().WithContext(fmt::format("back up tablespace {} at '{}'", row[0], row[1]));
    }
    repo::Node n;
    n.type = repo::NodeType::kDir;
    n.name = row[0];
    n.mode = 0700;
    n.subtree = *t;
    spc_nodes.push_back(n);
    spc_json.push_back({{"oid", row[0]}, {"location", row[1]}});
  }

  LB_ASSIGN_OR_RETURN(auto stop_rows, stop_backup());
  std::string stop_time = Now();
  const Row& sr = stop_rows.at(0);
  uint64_t stop_lsn = 0;
  if (!ParseLsn(sr.at(0), stop_lsn)) return Err(Code::kInternal, "unexpected stop LSN '{}'", sr[0]);
  const std::string& labelfile = sr.at(1);
  const std::string& spcmap = sr.at(2);
  uint32_t tli = 0;
  if (size_t p = labelfile.find("START TIMELINE: "); p != std::string::npos)
    tli = uint32_t(std::stoul(labelfile.substr(p + 16)));
  if (tli == 0) return Err(Code::kInternal, "backup_label without START TIMELINE");

  // Complete only when the WAL from start to stop is archived.
  SegmentName first = SegmentOfLsn(tli, start_lsn, info.segment_size);
  SegmentName last = SegmentOfLsn(tli, stop_lsn > 0 ? stop_lsn - 1 : 0, info.segment_size);
  if (last < first) last = first;
  LB_RETURN_IF_ERROR(
      WaitForWal(repo, opts.source, first, last, info.segment_size, opts.wal_timeout_seconds));

  // The snapshot root: the data directory's entries, backup_label, tablespace_map, and the
  // tablespaces under .lifeboat-tablespaces/<oid>.
  LB_RETURN_IF_ERROR(tb.Finish());  // the data directory's tree must be readable back
  LB_ASSIGN_OR_RETURN(Bytes root_blob, repo.LoadBlob(*data_tree));
  LB_ASSIGN_OR_RETURN(auto root_nodes, repo::DecodeTree(root_blob));
  LB_ASSIGN_OR_RETURN(repo::Node label_node, tb.SaveFileContent("backup_label", AsBytes(labelfile)));
  root_nodes.push_back(label_node);
  if (!spcmap.empty()) {
    LB_ASSIGN_OR_RETURN(repo::Node map_node, tb.SaveFileContent("tablespace_map", AsBytes(spcmap)));
    root_nodes.push_back(map_node);
  }
  if (!spc_nodes.empty()) {
    LB_ASSIGN_OR_RETURN(crypto::Id spc_tree, tb.SaveTree(spc_nodes));
    repo::Node d;
    d.type = repo::NodeType::kDir;
    d.name = kTablespaceDir;
    d.mode = 0700;
    d.subtree = spc_tree;
    root_nodes.push_back(d);
  }
  // The owner of the data directory owns the extra files too.
  for (auto& n : root_nodes)
    if (n.name == "backup_label" || n.name == "tablespace_map") {
      for (const auto& m : root_nodes)
        if (m.name == "PG_VERSION") {
          n.uid = m.uid;
          n.gid = m.gid;
        }
    }
  LB_ASSIGN_OR_RETURN(crypto::Id root, tb.SaveTree(root_nodes));
  LB_RETURN_IF_ERROR(tb.Finish());

  BaseBackupResult res;
  res.files = tb.Stats();
  res.bad_pages = bad_pages;
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  repo::Snapshot& s = res.snapshot;
  repo::SetOrigin(s);
  s.kind = kBaseKind;
  s.source = opts.source;
  s.tags = opts.tags;
  s.paths = {pgdata};
  s.tree = root;
  if (parent) s.parent = parent->id;
  bool incremental = parent && !opts.full;
  s.extra = {{"type", incremental ? "incr" : "full"},
             {"start_lsn", FormatLsn(start_lsn)},
             {"stop_lsn", FormatLsn(stop_lsn)},
             {"timeline", tli},
             {"system_identifier", std::to_string(info.system_id)},
             {"pg_version", version},
             {"wal_segment_size", info.segment_size},
             {"start_time", start_time},
             {"stop_time", stop_time},
             {"start_segment", FormatSegmentName(first)},
             {"stop_segment", FormatSegmentName(last)},
             {"database_size", db_size},
             {"data_checksums", checksums},
             {"pages_checked", pages_checked},
             {"bad_pages", bad_pages.size()},
             {"block_size", opts.block_size},
             {"tablespaces", spc_json}};
  s.summary = {{"files", res.files.files},
               {"dirs", res.files.dirs},
               {"files_unchanged", res.files.files_unchanged},
               {"bytes_total", res.files.bytes_total},
               {"bytes_read", res.files.bytes_read},
               {"blobs_new", res.files.writer.blobs_new},
               {"bytes_new", res.files.writer.bytes_new_raw},
               {"bytes_stored", res.files.writer.bytes_new_stored},
               {"seconds", res.seconds}};
  (void)start_ns;
  LB_RETURN_IF_ERROR(repo::SaveSnapshot(repo, s).status());
  return res;
}

}  // namespace lb::pg
