// Backs up file trees (uploaded files, generated PDFs, any directory) into a snapshot.
// A pipeline: one walker lists directories, a pool of workers reads, chunks, hashes,
// compresses, encrypts and packs file contents; directory trees are stored bottom-up as soon
// as their last entry is done.
#pragma once

#include <sys/stat.h>

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "repo/repository.h"
#include "repo/snapshot.h"
#include "repo/tree.h"

namespace lb::source {

struct BackupProgress {
  std::atomic<uint64_t> files_done{0};
  std::atomic<uint64_t> bytes_done{0};   // bytes of files done, read or unchanged
  std::atomic<uint64_t> files_total{0};  // filled by a scanner running ahead; 0 = unknown
  std::atomic<uint64_t> bytes_total{0};
  std::atomic<bool> scan_done{false};
};

struct FileBackupOptions {
  std::vector<std::string> paths;     // files or directories; made absolute
  std::vector<std::string> excludes;  // fnmatch(3) patterns, matched against the full path
                                      // and against the entry name
  std::vector<std::string> tags;
  std::string host;                   // default: this host's name
  std::string kind = "files";         // snapshot kind ("files", "logs", ...)
  std::string source;                 // source name recorded in the snapshot
  std::optional<std::string> parent;  // snapshot ref; default: newest snapshot of the same kind,
                                      // host and paths
  bool force_read = false;            // read every file even when unchanged
  size_t threads = 0;                 // 0: every core
  BackupProgress* progress = nullptr;
  // Files (absolute paths, raw bytes) to include from the listed directories; empty: all.
  // Used by log archiving to pick files by age.
  std::function<bool(const std::string& path, const struct stat& st)> filter;
  nlohmann::json extra = nlohmann::json::object();

  // For sources that are one directory (a PostgreSQL data directory): the snapshot's tree is
  // that directory's content, and the hooks below get paths relative to it.
  bool rooted = false;
  // Entry selection for rooted walks: kInclude, kSkip (leave out), kEmpty (a directory kept
  // without its contents, e.g. pg_wal).
  enum class Select { kInclude, kSkip, kEmpty };
  std::function<Select(const std::string& rel_path, bool is_dir)> select;
  // Fixed chunk size for a file (e.g. page-aligned blocks of relation files); 0: CDC.
  std::function<uint32_t(const std::string& rel_path)> fixed_chunk;
  // Sees every chunk read (e.g. to verify page checksums). Called from worker threads.
  std::function<void(const std::string& rel_path, uint64_t offset, ByteSpan data)> inspect;
  // A file counts as unchanged from the parent only if its old mtime and ctime are older
  // than this (ns since the epoch): guards against a change within the timestamp granularity
  // right after the parent read it.
  int64_t trust_unchanged_before_ns = INT64_MAX;
  // Files that change or vanish while read are stored as read / left out silently (a
  // database's files change during an online backup; WAL replay repairs them).
  bool allow_changes = false;
};

struct FileBackupResult {
  repo::Snapshot snapshot;
  uint64_t files = 0, dirs = 0, others = 0;
  uint64_t files_unchanged = 0;  // taken from the parent without reading
  uint64_t bytes_total = 0;      // sum of file sizes in the snapshot
  uint64_t bytes_read = 0;       // bytes actually read from disk
  repo::WriterStats writer;
  // Entries that could not be backed up (unreadable, vanished, changed while read): the
  // snapshot is written without them and the command exits with kIncomplete.
  std::vector<std::string> errors;
  double seconds = 0;
  std::vector<std::string> stored_paths;  // absolute paths of files stored (for logs)
};

Result<FileBackupResult> BackupFiles(repo::Repository& repo, const FileBackupOptions& opts);

// Lower level, for sources that assemble a snapshot themselves (PostgreSQL: data directory
// plus tablespaces plus backup_label): walks directories into trees with one shared writer.
class TreeBackup {
 public:
  TreeBackup(repo::Repository& repo, const FileBackupOptions& opts);
  ~TreeBackup();
  // Backs up `dir` as a rooted tree and returns its id; `old_tree` (same directory in the
  // parent snapshot) lets unchanged files be skipped.
  Result<crypto::Id> BackupDir(const std::string& dir, std::optional<crypto::Id> old_tree);
  // Stores a tree blob the caller built.
  Result<crypto::Id> SaveTree(std::vector<repo::Node> nodes);
  // Stores content as a file node's blobs (CDC); returns the node (type file, mode 0600).
  Result<repo::Node> SaveFileContent(const std::string& name, ByteSpan content);
  // Writes the remaining packs and index. Call before saving a snapshot.
  Status Finish();
  // Counters so far (files, dirs, bytes ...); `snapshot` and `seconds` are not filled.
  FileBackupResult Stats();
  std::vector<std::string> Errors();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lb::source
