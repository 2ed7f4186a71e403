// Snapshots of byte streams: the output of commands (kubectl, helm, pg_dump ...) stored chunk by
// chunk as it arrives, never staged in a file of the stream's size, one file node per stream in
// the snapshot's root tree; and the way back, a stored file written to a descriptor blob by blob.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "repo/repository.h"
#include "repo/snapshot.h"
#include "repo/tree.h"
#include "source/files_backup.h"

namespace lb::source {

// How a child's standard streams are connected. Its stderr is always read into a bounded
// buffer (the last `stderr_keep` bytes are kept).
struct ChildOptions {
  enum class Input { kNull, kPipe };           // /dev/null, or a pipe: stdin_fd()
  enum class Output { kPipe, kNull, kStderr };  // a pipe: stdout_fd(); /dev/null; into stderr
  Input stdin_mode = Input::kNull;
  Output stdout_mode = Output::kPipe;
  size_t stderr_keep = 64u << 10;
  // How messages name the command. Default: the argv joined by spaces. Callers that put a
  // secret into the argv (a conninfo with a password) must set a display without it.
  std::string display = {};
};

// A child process started from an argv, without a shell: argv[0] is looked up in PATH, the
// environment is inherited (and never logged), signals get their default dispositions (our
// ignored SIGPIPE is not inherited), and no descriptor of ours but 0-2 leaks into it.
// Not thread-safe: one thread drives a child; its stderr is drained by an internal thread.
class ChildProcess {
 public:
  // Starts the child. kInvalidArgument for an empty argv; kFailedPrecondition ("cannot run
  // command 'x': No such file or directory") when it cannot be started.
  static Result<std::unique_ptr<ChildProcess>> Start(const std::vector<std::string>& argv,
                                                     ChildOptions opts = {});
  // A child still running is killed (SIGKILL) and reaped.
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& display() const { return display_; }
  // Our ends of the pipes, -1 when not piped or closed. The descriptors stay owned here.
  int stdout_fd() const { return stdout_fd_; }
  int stdin_fd() const { return stdin_fd_; }
  void CloseStdin();   // the child sees EOF
  void CloseStdout();  // the child gets EPIPE / SIGPIPE on its next write
  void Kill(int sig);

  // Closes our pipe ends, waits for the child to end and stops the stderr reader. Ok for exit
  // status 0; kFailedPrecondition "command 'X' exited with status N" or "command 'X' was
  // killed by signal N (NAME)" otherwise (without stderr: see StderrTail). Idempotent.
  // Read stdout to EOF first if the output matters: a child blocked on a full pipe is only
  // ended by our closing it.
  Status Wait();
  // After Wait: the exit status, or -1 when a signal ended the child.
  int exit_code() const { return exit_code_; }
  // The last `stderr_keep` bytes the child wrote to stderr (complete after Wait).
  std::string StderrTail();

 private:
  ChildProcess() = default;
  void ReadStderr();

  pid_t pid_ = -1;
  std::string display_;
  int stdin_fd_ = -1;
  int stdout_fd_ = -1;
  int stderr_fd_ = -1;
  int wake_write_fd_ = -1;  // written by Wait: the stderr reader drains and ends
  int wake_read_fd_ = -1;
  size_t keep_ = 0;
  bool waited_ = false;
  int exit_code_ = -1;
  Status exit_status_;
  std::mutex mu_;
  std::string tail_;  // guarded by mu_
  std::thread stderr_reader_;
};

// The last `max_lines` lines of `text`, each indented by two spaces, for error messages.
std::string LastLines(const std::string& text, size_t max_lines);

// Stores byte streams as file nodes: reads a descriptor to EOF, cuts it with the repository's
// content-defined chunker (so a stream that changes a little from day to day deduplicates),
// and hashes, compresses, encrypts and packs the chunks on a few worker threads.
// Memory is bounded by the chunker's maximum size: a read buffer of twice it plus about
// 2 * threads chunks in flight, whatever the stream's length. One thread calls SaveStream
// at a time; the rest may be called from any thread.
class StreamBackup {
 public:
  // `threads`: compress/encrypt workers; 0: min(4, DefaultThreads()) (a pipe rarely
  // delivers faster than four zstd workers take it).
  explicit StreamBackup(repo::Repository& repo, size_t threads = 0);
  ~StreamBackup();

  // Reads `fd` to EOF and stores it; returns a file node named `name` (mode 0600, owner and
  // mtime of now, size = bytes read) listing the content blobs. `fd` is not closed.
  // `bytes_done` (optional) grows as chunks are read. Errors: kIo for a failed read, the
  // writer's error for a failed upload; blobs stored until then are debris for prune.
  Result<repo::Node> SaveStream(const std::string& name, int fd,
                                std::atomic<uint64_t>* bytes_done = nullptr);
  // Stores a tree blob listing `nodes`.
  Result<crypto::Id> SaveTree(std::vector<repo::Node> nodes);
  // Writes the remaining packs and the index. Call before saving a snapshot.
  Status Finish();
  repo::WriterStats stats();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// One stream of a snapshot: a file `name` holding the standard output of `argv`.
struct StreamCommand {
  std::string name;               // file name in the snapshot's root tree (no '/')
  std::vector<std::string> argv;  // run without a shell; argv[0] looked up in PATH
  // How messages and the snapshot name the command; default: argv joined. Never put a
  // secret into argv without a display that leaves it out (argv is visible in ps anyway:
  // pass secrets through the environment or files).
  std::string display = {};
};

struct StreamBackupOptions {
  std::vector<StreamCommand> streams;  // run one after the other, in this order
  std::vector<std::string> tags = {};
  std::string host = {};             // default: this host's name
  std::string kind = "command";      // snapshot kind ("command", "pg-dump")
  std::string source = {};           // source name recorded in the snapshot
  nlohmann::json extra = nlohmann::json::object();  // merged into the snapshot's extra
  size_t threads = 0;                // see StreamBackup
  BackupProgress* progress = nullptr;  // files_done / bytes_done
};

struct StreamInfo {
  std::string name;
  std::string display;
  uint64_t bytes = 0;
  std::string stderr_tail;  // what the command wrote to stderr (last 64 KiB)
};

struct StreamBackupResult {
  repo::Snapshot snapshot;
  std::vector<StreamInfo> streams;
  uint64_t bytes_total = 0;
  repo::WriterStats writer;
  double seconds = 0;
};

// Runs the commands and writes a snapshot whose root tree lists one file per stream. Any
// command that fails (non-zero exit, killed by a signal, cannot be started) fails the whole
// backup with kFailedPrecondition and NO snapshot is written: "command 'X' exited with
// status 1; no snapshot was written" followed by the last lines of its stderr. Blobs uploaded
// before the failure are referenced by nothing; prune removes them.
Result<StreamBackupResult> BackupCommands(repo::Repository& repo,
                                          const StreamBackupOptions& opts);

// The file at `path` (in snapshot terms: "/a/b" or "a/b") of the snapshot's tree. An empty
// path names the only file of a snapshot whose root holds exactly one entry, a file.
// kNotFound (listing the root's files) when there is no such file; kInvalidArgument when the
// path is empty and the snapshot holds several entries or names a non-file.
Result<repo::Node> FindSnapshotFile(repo::Repository& repo, const repo::Snapshot& snap,
                                    const std::string& path);

// Writes a file node's content to `fd` blob by blob, each read through the index and
// verified against its keyed id, a few blobs fetched ahead in parallel; memory stays bounded
// by a handful of chunks. Returns the bytes written. kNotFound / kCorruption for a missing
// or damaged blob (what was written before stays written: callers writing to a file should
// write to a temporary name), kIo for a failed write (EPIPE when the reader went away;
// SIGPIPE must be ignored by the process). `fd` is not closed.
Result<uint64_t> WriteFileContent(repo::Repository& repo, const repo::Node& node, int fd,
                                  size_t threads = 0);

}  // namespace lb::source
