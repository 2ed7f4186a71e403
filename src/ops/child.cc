#include "ops/child.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

extern char** environ;

namespace lb::ops {

namespace {

using Clock = std::chrono::steady_clock;

// How long a child gets between SIGTERM and SIGKILL: enough for a backup to remove its
// temporary files and release its locks.
constexpr auto kKillGrace = std::chrono::seconds(10);

bool Unwanted(const std::string& name, const ChildRequest& req) {
  for (const auto& u : req.unset)
    if (name == u) return true;
  for (const auto& p : req.unset_prefixes)
    if (name.rfind(p, 0) == 0) return true;
  return req.env.count(name) > 0;
}

std::vector<std::string> BuildEnv(const ChildRequest& req) {
  std::vector<std::string> out;
  for (char** e = environ; e && *e; ++e) {
    std::string kv = *e;
    std::string name = kv.substr(0, kv.find('='));
    if (!Unwanted(name, req)) out.push_back(std::move(kv));
  }
  for (const auto& [k, v] : req.env) out.push_back(k + "=" + v);
  return out;
}

void CloseFd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

}  // namespace

Result<std::string> SelfExe() {
  char buf[4096] = {};
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ErrnoStatus(errno, "find this program's path (/proc/self/exe)");
  return std::string(buf, size_t(n));
}

std::string FirstLine(const std::string& text) {
  size_t i = 0;
  while (i < text.size()) {
    size_t nl = text.find('\n', i);
    if (nl == std::string::npos) nl = text.size();
    std::string line = text.substr(i, nl - i);
    size_t a = line.find_first_not_of(" \t\r");
    if (a != std::string::npos) {
      size_t b = line.find_last_not_of(" \t\r");
      return line.substr(a, b - a + 1);
    }
    i = nl + 1;
  }
  return "";
}

Result<ChildOutcome> RunChild(const ChildRequest& req) {
  if (req.argv.empty()) return Err(Code::kInvalidArgument, "empty command");
  // Everything the child needs is prepared before fork: after it, only async-signal-safe
  // calls are allowed (other threads may hold the allocator's lock).
  std::vector<std::string> env = BuildEnv(req);
  std::vector<char*> envp, argv;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = req.argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  int out_pipe[2], err_pipe[2], exec_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe");
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    int e = errno;
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    return ErrnoStatus(e, "pipe");
  }
  if (::pipe2(exec_pipe, O_CLOEXEC) != 0) {
    int e = errno;
    for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]}) ::close(fd);
    return ErrnoStatus(e, "pipe");
  }
  auto start = Clock::now();
  pid_t pid = ::fork();
  if (pid < 0) {
    int e = errno;
    for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1], exec_pipe[0], exec_pipe[1]})
      ::close(fd);
    return ErrnoStatus(e, "fork");
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int s : {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD}) ::signal(s, SIG_DFL);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::dup2(out_pipe[1], 1);
    ::dup2(err_pipe[1], 2);
    execvpe(argv[0], argv.data(), envp.data());
    int e = errno;
    ssize_t w = ::write(exec_pipe[1], &e, sizeof e);
    (void)w;
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // also here: no race with a kill before the child ran setpgid
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  ::close(exec_pipe[1]);
  int exec_errno = 0;
  ssize_t n;
  do {
    n = ::read(exec_pipe[0], &exec_errno, sizeof exec_errno);
  } while (n < 0 && errno == EINTR);
  ::close(exec_pipe[0]);
  if (n == sizeof exec_errno) {
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    ::waitpid(pid, nullptr, 0);
    return Status(Code::kFailedPrecondition,
                  fmt::format("cannot run '{}': {}", req.argv[0], std::strerror(exec_errno)));
  }

  ChildOutcome out;
  int fds[2] = {out_pipe[0], err_pipe[0]};
  std::optional<Clock::time_point> deadline;
  if (req.timeout_seconds > 0) deadline = start + std::chrono::seconds(req.timeout_seconds);
  std::optional<Clock::time_point> term_sent;
  bool killed = false;
  bool exited = false;
  int wstatus = 0;
  auto signal_group = [&](int sig) { ::kill(-pid, sig); };
  char buf[65536];
  while (true) {
    auto now = Clock::now();
    if (!term_sent) {
      bool stop = req.stop && req.stop->load();
      bool late = deadline && now >= *deadline;
      if (stop || late) {
        out.stopped = stop && !late;
        out.timed_out = late;
        signal_group(SIGTERM);
        term_sent = now;
      }
    } else if (!killed && now - *term_sent >= kKillGrace) {
      signal_group(SIGKILL);
      killed = true;
    }
    if (fds[0] < 0 && fds[1] < 0) {
      pid_t w = ::waitpid(pid, &wstatus, WNOHANG);
      if (w == pid) {
        exited = true;
        break;
      }
      ::usleep(50000);
      continue;
    }
    pollfd p[2];
    int np = 0;
    for (int fd : fds)
      if (fd >= 0) p[np++] = {fd, POLLIN, 0};
    int r = ::poll(p, nfds_t(np), 100);
    if (r < 0 && errno != EINTR) break;
    for (int i = 0; i < np && r > 0; ++i) {
      if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t got = ::read(p[i].fd, buf, sizeof buf);
      if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (got <= 0) {
        for (int& fd : fds)
          if (fd == p[i].fd) CloseFd(fd);
        continue;
      }
      if (p[i].fd == fds[0]) {
        size_t room = req.stdout_limit > out.out.size() ? req.stdout_limit - out.out.size() : 0;
        out.out.append(buf, std::min(room, size_t(got)));
      } else {
        out.err.append(buf, size_t(got));
        if (out.err.size() > 2 * req.stderr_keep)
          out.err.erase(0, out.err.size() - req.stderr_keep);
      }
    }
  }
  for (int& fd : fds) CloseFd(fd);
  if (!exited) ::waitpid(pid, &wstatus, 0);
  if (out.err.size() > req.stderr_keep) out.err.erase(0, out.err.size() - req.stderr_keep);
  out.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (WIFEXITED(wstatus)) {
    out.exit_code = WEXITSTATUS(wstatus);
  } else if (WIFSIGNALED(wstatus)) {
    out.exit_code = -1;
    out.signal = WTERMSIG(wstatus);
  }
  // Grandchildren left behind by a stopped child (pg_dump under pg dump) go too.
  if (term_sent) signal_group(SIGKILL);
  return out;
}

}  // namespace lb::ops
