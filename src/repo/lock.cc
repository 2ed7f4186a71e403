#include "repo/lock.h"

#include <nlohmann/json.hpp>
#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <ctime>

#include "crypto/crypto.h"
#include "repo/names.h"
#include "util/log.h"

namespace lb::repo {

using nlohmann::json;

namespace {
std::string Host() {
  char buf[256] = {};
  gethostname(buf, sizeof buf - 1);
  return buf;
}

Result<LockInfo> ReadLock(storage::Storage& st, const std::string& name) {
  LB_ASSIGN_OR_RETURN(Bytes b, st.Get(name));
  LockInfo li;
  li.id = name.substr(6);
  try {
    json j = json::parse(AsString(b));
    li.host = j.value("host", "");
    li.user = j.value("user", "");
    li.pid = j.value("pid", int64_t{0});
    li.time_unix = j.value("time", int64_t{0});
    li.exclusive = j.value("exclusive", false);
    li.purpose = j.value("purpose", "");
    li.started_unix_ns = j.value("started_ns", li.time_unix * int64_t{1000000000});
  } catch (const std::exception&) {
    li.stale = true;
    li.stale_reason = "unreadable lock";
    return li;
  }
  int64_t now = int64_t(time(nullptr));
  if (li.host == Host() && li.pid > 0 && kill(pid_t(li.pid), 0) != 0 && errno == ESRCH) {
    li.stale = true;
    li.stale_reason = fmt::format("process {} on this host is gone", li.pid);
  } else if (now - li.time_unix > kLockStaleSeconds) {
    li.stale = true;
    li.stale_reason = fmt::format("not refreshed for {} s", now - li.time_unix);
  }
  return li;
}

std::string Describe(const LockInfo& l) {
  return fmt::format("{} lock '{}' by {}@{} pid {} ({}), refreshed {} s ago",
                     l.exclusive ? "an exclusive" : "a", l.id.substr(0, 8), l.user, l.host, l.pid,
                     l.purpose, int64_t(time(nullptr)) - l.time_unix);
}
}  // namespace

Result<std::vector<LockInfo>> ListLocks(storage::Storage& st) {
  std::vector<std::string> names;
  LB_RETURN_IF_ERROR(st.List("locks/", [&](const storage::ObjectInfo& o) {
    names.push_back(o.name);
    return Status::Ok();
  }));
  std::vector<LockInfo> out;
  for (const auto& n : names) {
    auto li = ReadLock(st, n);
    if (!li.ok()) {
      if (li.status().code() == Code::kNotFound) continue;  // released meanwhile
      return li.status();
    }
    out.push_back(std::move(*li));
  }
  return out;
}

Result<int> RemoveLocks(storage::Storage& st, bool all) {
  LB_ASSIGN_OR_RETURN(auto locks, ListLocks(st));
  int n = 0;
  for (const auto& l : locks) {
    if (!all && !l.stale) continue;
    Status s = st.Remove(LockName(l.id));
    if (!s.ok() && s.code() != Code::kNotFound) return s;
    ++n;
  }
  return n;
}

Status RepoLock::Write() {
  uint8_t rnd[16];
  crypto::RandomBytes(rnd);
  std::string id = HexEncode(rnd) + HexEncode(rnd);  // 64 hex digits, like other ids
  const char* user = getenv("USER");
  json j = {{"host", Host()},       {"pid", int64_t(getpid())},
            {"user", user ? user : std::to_string(geteuid())},
            {"time", int64_t(time(nullptr))},
            {"exclusive", exclusive_}, {"purpose", purpose_}, {"started_ns", started_ns_}};
  std::string text = j.dump();
  LB_RETURN_IF_ERROR(st_.Put(LockName(id), AsBytes(text), {.exclusive = true})
                         .WithContext("write lock"));
  std::string old;
  {
    std::lock_guard lock(mu_);
    old = id_;
    id_ = id;
  }
  if (!old.empty()) (void)st_.Remove(LockName(old));
  return Status::Ok();
}

Result<std::unique_ptr<RepoLock>> RepoLock::Acquire(storage::Storage& st, bool exclusive,
                                                    std::string purpose, bool unique_purpose) {
  std::unique_ptr<RepoLock> lock(new RepoLock(st, exclusive, std::move(purpose)));
  lock->started_ns_ = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  LB_RETURN_IF_ERROR(lock->Write());
  // Write first, then look: two racing lockers may both back off, but never both proceed.
  auto locks = ListLocks(st);
  if (!locks.ok()) return locks.status();
  for (const auto& l : *locks) {
    if (l.id == lock->id_) continue;
    if (l.stale) {
      LogWarning("stale {}: {} (remove with 'lifeboat unlock')", Describe(l), l.stale_reason);
      continue;
    }
    if (exclusive || l.exclusive || (unique_purpose && l.purpose == lock->purpose_)) {
      std::string what = Describe(l);
      return Status(Code::kFailedPrecondition, "repository is locked: " + what)
          .WithHint("wait for it to finish; if that process is dead, 'lifeboat unlock' removes "
                    "stale locks");
    }
  }
  lock->refresher_ = std::thread([l = lock.get()] { l->RefreshLoop(); });
  return lock;
}

void RepoLock::RefreshLoop() {
  std::unique_lock lk(mu_);
  while (!stop_) {
    if (cv_.wait_for(lk, std::chrono::seconds(kLockRefreshSeconds), [&] { return stop_; })) break;
    lk.unlock();
    Status s = Write();
    if (!s.ok()) LogWarning("refresh lock: {}", s.ToString());
    lk.lock();
  }
}

RepoLock::~RepoLock() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (refresher_.joinable()) refresher_.join();
  if (!id_.empty()) (void)st_.Remove(LockName(id_));
}

}  // namespace lb::repo
