#include "source/stream_backup.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>
#include <future>
#include <set>

#include "chunk/fastcdc.h"
#include "util/log.h"
#include "util/thread_pool.h"

extern char** environ;

namespace lb::source {

using repo::Node;
using repo::NodeType;

namespace {

void CloseFd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

std::string JoinArgv(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) out += (out.empty() ? "" : " ") + a;
  return out;
}

// Appends "; no snapshot was written" to a failure of a stream backup, keeping code and hint.
Status NoSnapshot(const Status& s) {
  Status out(s.code(), s.message() + "; no snapshot was written", s.retryable());
  return s.hint().empty() ? out : out.WithHint(s.hint());
}

size_t DefaultStreamThreads() { return std::min<size_t>(4, ThreadPool::DefaultThreads()); }

int64_t NowNs() {
  struct timespec ts {};
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

Status WriteAll(int fd, ByteSpan data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "write");
    }
    off += size_t(n);
  }
  return Status::Ok();
}

}  // namespace

// ---- ChildProcess ----

Result<std::unique_ptr<ChildProcess>> ChildProcess::Start(const std::vector<std::string>& argv,
                                                          ChildOptions opts) {
  if (argv.empty() || argv[0].empty()) return Err(Code::kInvalidArgument, "no command given");
  std::unique_ptr<ChildProcess> c(new ChildProcess());
  c->display_ = opts.display.empty() ? JoinArgv(argv) : opts.display;
  c->keep_ = std::max<size_t>(opts.stderr_keep, 1);

  // Every descriptor is close-on-exec on our side; posix_spawn's dup2 clears the flag on the
  // child's copies 0-2, and closefrom(3) drops whatever else another thread opened without it.
  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1}, wake[2] = {-1, -1};
  auto close_all = [&] {
    for (int* p : {in, out, err, wake}) {
      CloseFd(p[0]);
      CloseFd(p[1]);
    }
  };
  if (pipe2(err, O_CLOEXEC) != 0 || pipe2(wake, O_CLOEXEC) != 0 ||
      (opts.stdin_mode == ChildOptions::Input::kPipe && pipe2(in, O_CLOEXEC) != 0) ||
      (opts.stdout_mode == ChildOptions::Output::kPipe && pipe2(out, O_CLOEXEC) != 0)) {
    Status s = ErrnoStatus(errno, "create pipes");
    close_all();
    return s;
  }
  // Larger pipe buffers mean fewer context switches between the child and the chunker; a
  // failure (limit for unprivileged users) only costs speed.
  if (out[0] >= 0) (void)fcntl(out[0], F_SETPIPE_SZ, 1 << 20);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (opts.stdin_mode == ChildOptions::Input::kPipe)
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  else
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  switch (opts.stdout_mode) {
    case ChildOptions::Output::kPipe: posix_spawn_file_actions_adddup2(&fa, out[1], 1); break;
    case ChildOptions::Output::kNull:
      posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
      break;
    case ChildOptions::Output::kStderr: posix_spawn_file_actions_adddup2(&fa, err[1], 1); break;
  }
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);

  // Default dispositions for every signal (we ignore SIGPIPE; a child that inherited that
  // would see EPIPE errors instead of ending quietly) and nothing blocked.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, cargv[0], &fa, &attr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    close_all();
    return Err(Code::kFailedPrecondition, "cannot run command '{}': {}", c->display_,
               std::strerror(rc));
  }
  c->pid_ = pid;
  CloseFd(in[0]);
  CloseFd(out[1]);
  CloseFd(err[1]);
  c->stdin_fd_ = in[1];
  c->stdout_fd_ = out[0];
  c->stderr_fd_ = err[0];
  c->wake_write_fd_ = wake[1];
  c->wake_read_fd_ = wake[0];
  ChildProcess* self = c.get();
  c->stderr_reader_ = std::thread([self] { self->ReadStderr(); });
  return c;
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && !waited_) {
    Kill(SIGKILL);
    (void)Wait();
  }
}

void ChildProcess::CloseStdin() { CloseFd(stdin_fd_); }
void ChildProcess::CloseStdout() { CloseFd(stdout_fd_); }

void ChildProcess::Kill(int sig) {
  if (pid_ > 0 && !waited_) ::kill(pid_, sig);
}

void ChildProcess::ReadStderr() {
  char buf[16384];
  bool draining = false;
  for (;;) {
    if (!draining) {
      struct pollfd fds[2] = {{stderr_fd_, POLLIN, 0}, {wake_read_fd_, POLLIN, 0}};
      if (poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        break;
      }
      if (fds[1].revents) {
        // The child has ended. What it wrote is in the pipe; a grandchild that still holds
        // the pipe open must not keep us waiting.
        draining = true;
        fcntl(stderr_fd_, F_SETFL, fcntl(stderr_fd_, F_GETFL) | O_NONBLOCK);
      } else if (!fds[0].revents) {
        continue;
      }
    }
    ssize_t n = ::read(stderr_fd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    std::lock_guard lock(mu_);
    tail_.append(buf, size_t(n));
    // Trimmed in steps so appends stay amortized O(1).
    if (tail_.size() > 2 * keep_) tail_.erase(0, tail_.size() - keep_);
  }
}

Status ChildProcess::Wait() {
  if (waited_) return exit_status_;
  if (pid_ <= 0) return Err(Code::kInternal, "command '{}' was never started", display_);
  CloseStdin();
  CloseStdout();
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid_, &status, 0);
  } while (r < 0 && errno == EINTR);
  waited_ = true;
  // The read end stays open until the reader is joined, so this write cannot raise SIGPIPE.
  if (wake_write_fd_ >= 0) {
    ssize_t ignored = ::write(wake_write_fd_, "x", 1);
    (void)ignored;
  }
  if (stderr_reader_.joinable()) stderr_reader_.join();
  CloseFd(wake_write_fd_);
  CloseFd(wake_read_fd_);
  CloseFd(stderr_fd_);
  if (r < 0) {
    exit_status_ = ErrnoStatus(errno, fmt::format("wait for command '{}'", display_));
  } else if (WIFEXITED(status)) {
    exit_code_ = WEXITSTATUS(status);
    if (exit_code_ != 0)
      exit_status_ = Err(Code::kFailedPrecondition, "command '{}' exited with status {}",
                         display_, exit_code_);
  } else if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    const char* abbrev = sigabbrev_np(sig);
    exit_status_ = Err(Code::kFailedPrecondition, "command '{}' was killed by signal {}{}",
                       display_, sig, abbrev ? fmt::format(" (SIG{})", abbrev) : "");
  } else {
    exit_status_ = Err(Code::kInternal, "command '{}' ended with wait status {}", display_, status);
  }
  return exit_status_;
}

std::string ChildProcess::StderrTail() {
  std::lock_guard lock(mu_);
  return tail_.size() > keep_ ? tail_.substr(tail_.size() - keep_) : tail_;
}

std::string LastLines(const std::string& text, size_t max_lines) {
  std::vector<std::string_view> lines;
  std::string_view rest(text);
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    if (nl == std::string_view::npos) break;
    rest.remove_prefix(nl + 1);
  }
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  size_t first = lines.size() > max_lines ? lines.size() - max_lines : 0;
  std::string out;
  for (size_t i = first; i < lines.size(); ++i)
    out += (out.empty() ? "  " : "\n  ") + std::string(lines[i]);
  return out;
}

// ---- StreamBackup ----

class StreamBackup::Impl {
 public:
  Impl(repo::Repository& r, size_t threads)
      : repo(r), chunker(r.config().chunker), writer(r),
        // The queue holds as many chunks as there are workers: with the chunks being
        // compressed that bounds the copies in flight to 2 * threads.
        pool(threads ? threads : DefaultStreamThreads(), threads ? threads : DefaultStreamThreads()) {}

  void SetError(const Status& s) {
    std::lock_guard lock(mu);
    if (error.ok()) error = s;
  }
  Status GetError() {
    std::lock_guard lock(mu);
    return error;
  }

  repo::Repository& repo;
  chunk::Chunker chunker;
  repo::BlobWriter writer;
  std::mutex mu;
  Status error;                    // guarded by mu: the first failed Save
  std::unique_ptr<uint8_t[]> buf;  // 2 * max chunk size, uninitialized, made on first use
  ThreadPool pool;                 // last: joined before the writer goes
};

StreamBackup::StreamBackup(repo::Repository& repo, size_t threads)
    : impl_(std::make_unique<Impl>(repo, threads)) {}
StreamBackup::~StreamBackup() = default;

Result<Node> StreamBackup::SaveStream(const std::string& name, int fd,
                                      std::atomic<uint64_t>* bytes_done) {
  Impl& m = *impl_;
  const size_t max = m.chunker.max_size();
  const size_t cap = 2 * max;
  if (!m.buf) m.buf.reset(new uint8_t[cap]);
  uint8_t* buf = m.buf.get();
  int64_t started_ns = NowNs();

  // Workers write each chunk's id into its slot; a deque keeps slots in place as it grows.
  std::deque<crypto::Id> ids;
  struct WaitForWorkers {
    ThreadPool& pool;
    ~WaitForWorkers() { pool.Wait(); }  // the tasks point into `ids`
  } wait_for_workers{m.pool};

  auto submit = [&](ByteSpan chunk) {
    crypto::Id* slot = &ids.emplace_back();
    Bytes data(chunk.begin(), chunk.end());
    m.pool.Submit([&m, slot, data = std::move(data)] {
      if (!m.GetError().ok()) return;
      *slot = m.repo.BlobId(data);
      auto saved = m.writer.Save(repo::BlobType::kData, *slot, data);
      if (!saved.ok()) m.SetError(saved.status());
    });
  };

  // The same loop as a file read (files_backup.cc): the chunker sees at least max bytes
  // or the rest of the stream.
  size_t start = 0, end = 0;
  bool eof = false;
  uint64_t total = 0;
  while (true) {
    while (!eof && end < cap) {
      ssize_t n = ::read(fd, buf + end, cap - end);
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus(errno, fmt::format("read the stream of '{}'", PrintableName(name)));
      }
      if (n == 0) eof = true;
      end += size_t(n);
      total += uint64_t(n);
      if (end - start >= max) break;
    }
    LB_RETURN_IF_ERROR(m.GetError());
    if (start == end) break;
    size_t avail = end - start;
    if (!eof && avail < max) {
      std::memmove(buf, buf + start, avail);
      start = 0;
      end = avail;
      continue;
    }
    size_t len = m.chunker.Cut({buf + start, avail});
    submit({buf + start, len});
    if (bytes_done) *bytes_done += len;
    start += len;
    if (start == end) {
      start = end = 0;
      if (eof) break;
    } else if (!eof && end - start < max) {
      std::memmove(buf, buf + start, end - start);
      end -= start;
      start = 0;
    }
  }
  m.pool.Wait();
  LB_RETURN_IF_ERROR(m.GetError());

  Node n;
  n.name = name;
  n.type = NodeType::kFile;
  n.mode = 0600;
  n.uid = geteuid();
  n.gid = getegid();
  n.size = total;
  n.mtime_ns = started_ns;
  n.ctime_ns = started_ns;
  n.content.assign(ids.begin(), ids.end());
  return n;
}

Result<crypto::Id> StreamBackup::SaveTree(std::vector<Node> nodes) {
  Bytes tree = repo::EncodeTree(nodes);
  crypto::Id id = impl_->repo.BlobId(tree);
  LB_RETURN_IF_ERROR(impl_->writer.Save(repo::BlobType::kTree, id, tree).status());
  return id;
}

Status StreamBackup::Finish() {
  impl_->pool.Wait();
  LB_RETURN_IF_ERROR(impl_->GetError());
  return impl_->writer.Flush();
}

repo::WriterStats StreamBackup::stats() { return impl_->writer.stats(); }

// ---- BackupCommands ----

Result<StreamBackupResult> BackupCommands(repo::Repository& repo,
                                          const StreamBackupOptions& opts) {
  if (opts.streams.empty()) return Err(Code::kInvalidArgument, "no command to back up");
  std::set<std::string> names;
  for (const auto& s : opts.streams) {
    if (s.name.empty() || s.name == "." || s.name == ".." ||
        s.name.find_first_of(std::string("/\0", 2)) != std::string::npos)
      return Err(Code::kInvalidArgument, "'{}' is not a valid file name for a stream",
                 PrintableName(s.name));
    if (!names.insert(s.name).second)
      return Err(Code::kInvalidArgument, "two streams are named '{}'", PrintableName(s.name));
    if (s.argv.empty() || s.argv[0].empty())
      return Err(Code::kInvalidArgument, "no command given for '{}'", PrintableName(s.name));
  }
  LB_RETURN_IF_ERROR(repo.index().status());
  auto t0 = std::chrono::steady_clock::now();
  StreamBackup sb(repo, opts.threads);
  StreamBackupResult res;
  std::vector<Node> nodes;
  nlohmann::json streams = nlohmann::json::array();
  for (const auto& s : opts.streams) {
    ChildOptions co;
    co.display = s.display;
    auto child = ChildProcess::Start(s.argv, co);
    if (!child.ok()) return NoSnapshot(child.status());
    ChildProcess& c = **child;
    LogInfo("running '{}' into '{}'", c.display(), PrintableName(s.name));
    auto node = sb.SaveStream(s.name, c.stdout_fd(),
                              opts.progress ? &opts.progress->bytes_done : nullptr);
    if (!node.ok()) {
      c.Kill(SIGKILL);
      (void)c.Wait();
      return NoSnapshot(
          node.status().WithContext(fmt::format("store the output of command '{}'", c.display())));
    }
    Status exit = c.Wait();
    std::string tail = c.StderrTail();
    if (!exit.ok()) {
      Status failed = NoSnapshot(exit);
      if (tail.find_first_not_of(" \t\r\n") == std::string::npos) return failed;
      return Status(failed.code(), failed.message() + "; its last lines on stderr:\n" +
                                       LastLines(tail, 20));
    }
    if (opts.progress) opts.progress->files_done++;
    res.bytes_total += node->size;
    res.streams.push_back({s.name, c.display(), node->size, tail});
    streams.push_back({{"name", s.name}, {"command", c.display()}, {"bytes", node->size}});
    nodes.push_back(std::move(*node));
  }
  auto tree = sb.SaveTree(nodes);
  if (!tree.ok()) return NoSnapshot(tree.status());
  if (Status s = sb.Finish(); !s.ok()) return NoSnapshot(s);
  res.writer = sb.stats();
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  repo::Snapshot& snap = res.snapshot;
  repo::SetOrigin(snap, opts.host);
  snap.tags = opts.tags;
  snap.kind = opts.kind;
  snap.source = opts.source;
  for (const auto& s : opts.streams) snap.paths.push_back("/" + s.name);
  snap.tree = *tree;
  snap.extra = opts.extra.is_object() ? opts.extra : nlohmann::json::object();
  snap.extra["streams"] = streams;
  snap.summary = {{"files", res.streams.size()},
                  {"bytes_total", res.bytes_total},
                  {"bytes_read", res.bytes_total},
                  {"blobs_new", res.writer.blobs_new},
                  {"bytes_new", res.writer.bytes_new_raw},
                  {"bytes_stored", res.writer.bytes_new_stored},
                  {"seconds", res.seconds}};
  // Last: every pack and index the snapshot depends on is durable by now.
  LB_RETURN_IF_ERROR(repo::SaveSnapshot(repo, snap).status());
  return res;
}

// ---- Reading back ----

Result<Node> FindSnapshotFile(repo::Repository& repo, const repo::Snapshot& snap,
                              const std::string& path) {
  std::vector<std::string> parts;
  for (size_t i = 0; i <= path.size();) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    if (j > i) parts.push_back(path.substr(i, j - i));
    i = j + 1;
  }
  crypto::Id tree = snap.tree;
  std::string walked;
  for (size_t depth = 0;; ++depth) {
    LB_ASSIGN_OR_RETURN(Bytes blob, repo.LoadBlob(tree));
    LB_ASSIGN_OR_RETURN(std::vector<Node> nodes, repo::DecodeTree(blob));
    if (parts.empty()) {
      if (nodes.size() == 1 && nodes[0].type == NodeType::kFile) return std::move(nodes[0]);
      std::string list;
      for (const auto& n : nodes) list += (list.empty() ? "'" : ", '") + PrintableName(n.name) + "'";
      return Status(Code::kInvalidArgument,
                    fmt::format("snapshot {} holds {} entries ({}); name the file", snap.id.Short(),
                                nodes.size(), list));
    }
    const std::string& want = parts[depth];
    auto it = std::find_if(nodes.begin(), nodes.end(),
                           [&](const Node& n) { return n.name == want; });
    walked += "/" + want;
    if (it == nodes.end()) {
      std::string list;
      for (const auto& n : nodes) list += (list.empty() ? "'" : ", '") + PrintableName(n.name) + "'";
      return Status(Code::kNotFound, fmt::format("snapshot {} has no '{}'", snap.id.Short(),
                                                 PrintableName(walked)))
          .WithHint(depth == 0 ? fmt::format("its root holds {}", list) : "see 'lifeboat ls'");
    }
    if (depth + 1 == parts.size()) {
      if (it->type != NodeType::kFile)
        return Err(Code::kInvalidArgument, "'{}' in snapshot {} is a {}, not a file",
                   PrintableName(walked), snap.id.Short(), repo::NodeTypeName(it->type));
      return std::move(*it);
    }
    if (it->type != NodeType::kDir)
      return Err(Code::kNotFound, "'{}' in snapshot {} is not a directory", PrintableName(walked),
                 snap.id.Short());
    tree = it->subtree;
  }
}

Result<uint64_t> WriteFileContent(repo::Repository& repo, const Node& node, int fd,
                                  size_t threads) {
  LB_RETURN_IF_ERROR(repo.index().status());
  size_t ahead = threads ? threads : DefaultStreamThreads();
  // Each blob is fetched by a worker; the promise is shared because the pool's task must be
  // copyable and the future's side must outlive an early return.
  std::deque<std::future<Result<Bytes>>> pending;
  ThreadPool pool(ahead, ahead);  // after `pending`: joined first on every return
  size_t next = 0;
  auto fetch_next = [&] {
    auto p = std::make_shared<std::promise<Result<Bytes>>>();
    pending.push_back(p->get_future());
    crypto::Id id = node.content[next++];
    pool.Submit([&repo, id, p] { p->set_value(repo.LoadBlob(id)); });
  };
  while (next < node.content.size() && pending.size() < ahead) fetch_next();
  uint64_t written = 0;
  for (size_t i = 0; i < node.content.size(); ++i) {
    Result<Bytes> blob = pending.front().get();
    pending.pop_front();
    if (next < node.content.size()) fetch_next();
    if (!blob.ok())
      return blob.status().WithContext(fmt::format("'{}' at offset {}", PrintableName(node.name),
                                                   written));
    LB_RETURN_IF_ERROR(WriteAll(fd, *blob));
    written += blob->size();
  }
  if (written != node.size)
    return Err(Code::kCorruption, "'{}': {} bytes stored, the tree says {}",
               PrintableName(node.name), written, node.size);
  return written;
}

}  // namespace lb::source
