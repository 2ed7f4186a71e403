// Backs up file trees (uploaded files, generated PDFs, any directory) into a snapshot.
// A pipeline: one walker lists directories, a pool of workers reads, chunks, hashes,
// compresses, encrypts and packs file contents; directory trees are stored bottom-up as soon
// as their last entry is done.
#pragma once

#include <sys/stat.h>

#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "repo/repository.h"
#include "repo/snapshot.h"

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

}  // namespace lb::source
