#include "ops/daemon.h"

#include <fmt/format.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "ops/child.h"
#include "ops/dashboard.h"
#include "ops/history.h"
#include "ops/http.h"
#include "ops/job_record.h"
#include "ops/job_runner.h"
#include "ops/metrics.h"
#include "ops/recovery_points.h"
#include "ops/scheduler.h"
#include "ops/status.h"
#include "util/log.h"

namespace lb::ops {

namespace {

using nlohmann::json;

constexpr const char* kDefaultListen = "127.0.0.1:9187";
// A repository that does not answer within this is reported unreadable for this round.
constexpr int64_t kObserveTimeout = 120;

double Now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

void Say(const std::string& line) {
  static std::mutex mu;
  std::lock_guard<std::mutex> l(mu);
  std::fprintf(stderr, "%s lifeboat daemon: %s\n",
               plan::FormatUtc(plan::UnixSeconds(Now())).c_str(), line.c_str());
  std::fflush(stderr);
}

void SayProblems(const plan::LoadedPlan& lp) {
  for (const auto& p : lp.problems)
    if (p.severity == plan::Severity::kError) Say(p.ToString());
}

Result<std::string> ReadToken(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Err(Code::kNotFound, "cannot read daemon.token_file '{}'", path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string t = ss.str();
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
  if (t.empty()) return Err(Code::kInvalidArgument, "daemon.token_file '{}' is empty", path);
  return t;
}

SchedulerOptions OptionsOf(const plan::Plan& p) {
  return {.retries = p.daemon.retries,
          .retry_delay = p.daemon.retry_delay,
          .max_parallel = p.daemon.max_parallel};
}

class Daemon {
 public:
  Daemon(DaemonOptions opts, std::string program)
      : opts_(std::move(opts)), program_(std::move(program)), sched_(SchedulerOptions{}) {}

  int Run();

 private:
  struct Running {
    JobTicket ticket;
    int64_t history_id = 0;
    double started = 0;
    std::thread thread;
    bool done = false;
    JobRunOutcome outcome;
    double ended = 0;
  };

  void SignalLoop(sigset_t set);
  void ObserveLoop();
  void StartRun(const JobTicket& t, double now);  // REQUIRES mu_
  void Reap(double now);                          // REQUIRES mu_
  void Reload(double now);                        // REQUIRES mu_
  StatusReport Report();
  HttpResponse Handle(const HttpRequest& req);

  DaemonOptions opts_;
  std::string program_;
  std::unique_ptr<History> history_;
  std::mutex mu_;
  std::condition_variable cv_;
  // Shared, not unique: a run keeps the plan it started with when SIGHUP replaces it.
  std::shared_ptr<const plan::Plan> plan_;  // guarded by mu_
  Scheduler sched_;                         // guarded by mu_
  std::map<uint64_t, Running> running_;     // guarded by mu_
  bool stop_requested_ = false;             // guarded by mu_
  bool reload_requested_ = false;           // guarded by mu_
  bool shutting_down_ = false;              // guarded by mu_
  bool observe_now_ = true;                 // guarded by mu_
  Observation observation_;                 // guarded by mu_
  std::atomic<bool> stop_children_{false};
  std::atomic<bool> observe_stop_{false};
};

void Daemon::SignalLoop(sigset_t set) {
  while (true) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    std::lock_guard<std::mutex> l(mu_);
    if (sig == SIGUSR1 && shutting_down_) return;
    if (sig == SIGTERM || sig == SIGINT) stop_requested_ = true;
    if (sig == SIGHUP) reload_requested_ = true;
    cv_.notify_all();
  }
}

void Daemon::ObserveLoop() {
  std::unique_lock<std::mutex> l(mu_);
  while (!shutting_down_) {
    cv_.wait_for(l, std::chrono::seconds(opts_.observe_interval),
                 [&] { return observe_now_ || shutting_down_; });
    if (shutting_down_) return;
    observe_now_ = false;
    auto plan = plan_;
    l.unlock();
    Observation o = ObserveRepositories(*plan, program_, kObserveTimeout, &observe_stop_);
    l.lock();
    if (shutting_down_) return;
    // Each problem once, not at every read.
    for (const auto& e : o.errors)
      if (std::find(observation_.errors.begin(), observation_.errors.end(), e) ==
          observation_.errors.end())
        Say("status: " + e);
    observation_ = std::move(o);
  }
}

void Daemon::StartRun(const JobTicket& t, double now) {
  const plan::JobPlan* job = plan_->FindJob(t.job);
  if (job == nullptr) {
    sched_.Finished(t.id, true, plan::UnixSeconds(now));
    return;
  }
  auto id = history_->Begin(t.job, t.scheduled, now, t.attempt);
  if (!id.ok()) Say(fmt::format("job '{}': {}", t.job, id.status().ToString()));
  Running& r = running_[t.id];
  r.ticket = t;
  r.history_id = id.ok() ? *id : 0;
  r.started = now;
  Say(fmt::format("job '{}' started ({}{}slot {})", t.job, job->schedule_text,
                  t.attempt > 1 ? fmt::format(", attempt {}, ", t.attempt)
                                : (t.missed ? ", missed while down, " : ", "),
                  plan::FormatUtc(t.scheduled)));
  auto plan = plan_;
  JobRunOptions ro{
      .program = program_, .timeout_seconds = plan->daemon.job_timeout, .stop = &stop_children_};
  uint64_t key = t.id;
  r.thread = std::thread([this, plan, job, ro, key] {
    JobRunOutcome out = RunJob(*plan, *job, ro);
    std::lock_guard<std::mutex> l(mu_);
    Running& me = running_[key];
    me.outcome = std::move(out);
    me.ended = Now();
    me.done = true;
    cv_.notify_all();
  });
}

void Daemon::Reap(double now) {
  for (auto it = running_.begin(); it != running_.end();) {
    Running& r = it->second;
    if (!r.done) {
      ++it;
      continue;
    }
    r.thread.join();
    const plan::JobPlan* job = plan_->FindJob(r.ticket.job);
    JobRunRecord rec{.history_id = r.history_id,
                     .job = r.ticket.job,
                     .kind = job ? std::string(plan::JobKindName(job->kind)) : "",
                     .scheduled = r.ticket.scheduled,
                     .attempt = r.ticket.attempt,
                     .started = r.started,
                     .ended = r.ended,
                     .outcome = r.outcome};
    if (r.history_id != 0) {
      Status s = RecordJobRun(*history_, rec);
      if (!s.ok()) Say(fmt::format("job '{}': {}", r.ticket.job, s.ToString()));
    }
    const auto& o = r.outcome;
    if (o.result == RunResult::kOk)
      Say(fmt::format("job '{}' ok in {:.1f} s{}{}", r.ticket.job, o.seconds,
                      o.snapshot.empty() ? "" : ", snapshot " + o.snapshot.substr(0, 8),
                      o.bytes ? ", " + HumanBytes(o.bytes) : ""));
    else
      Say(fmt::format("job '{}' {} (attempt {}, exit {}): {}", r.ticket.job,
                      RunResultName(o.result), r.ticket.attempt, o.exit_code, o.error));
    sched_.Finished(r.ticket.id, o.result == RunResult::kOk, plan::UnixSeconds(now));
    it = running_.erase(it);
    observe_now_ = true;
  }
}

void Daemon::Reload(double now) {
  auto lp = plan::LoadPlanFile(opts_.plan_path);
  if (!lp.ok()) {
    Say(fmt::format("reload refused, keeping the running plan: {}", lp.status().ToString()));
    return;
  }
  if (!lp->ok()) {
    Say(fmt::format("reload refused, keeping the running plan: {} has {} error(s):",
                    opts_.plan_path, lp->ErrorCount()));
    SayProblems(*lp);
    return;
  }
  auto fresh = std::make_shared<const plan::Plan>(std::move(lp->plan));
  if (fresh->daemon.listen != plan_->daemon.listen ||
      fresh->daemon.history != plan_->daemon.history ||
      fresh->daemon.token_file != plan_->daemon.token_file)
    Say("daemon.listen, daemon.token_file and daemon.history take effect at the next start");
  plan_ = fresh;
  sched_.SetOptions(OptionsOf(*plan_));
  sched_.SetPlan(*plan_, plan::UnixSeconds(now));
  observe_now_ = true;
  Say(fmt::format("plan {} reloaded: {} jobs", opts_.plan_path, plan_->jobs.size()));
}

StatusReport Daemon::Report() {
  std::shared_ptr<const plan::Plan> plan;
  Observation obs;
  std::map<std::string, JobLive> live;
  {
    std::lock_guard<std::mutex> l(mu_);
    plan = plan_;
    obs = observation_;
    for (const auto& j : plan->jobs)
      live[j.name] = {.next_run = sched_.NextRun(j.name), .running = sched_.IsRunning(j.name)};
  }
  std::map<std::string, JobStats> stats;
  std::vector<std::string> errors = obs.errors;
  for (const auto& j : plan->jobs) {
    auto s = history_->Stats(j.name);
    if (s.ok())
      stats[j.name] = *s;
    else
      errors.push_back(s.status().ToString());
  }
  std::vector<RunRecord> failures;
  if (auto f = history_->RecentFailures(10); f.ok()) failures = *f;
  if (obs.taken_at == 0) errors.push_back("the repositories have not been read yet");
  return ComputeStatus(*plan, obs.repositories, stats, live, std::move(failures), std::move(errors),
                       Now());
}

HttpResponse Daemon::Handle(const HttpRequest& req) {
  HttpResponse resp;
  if (req.path == "/") {
    resp.content_type = "text/html; charset=utf-8";
    resp.body = std::string(DashboardHtml());
  } else if (req.path == "/status") {
    resp.content_type = "application/json";
    resp.body = StatusToJson(Report()).dump(2) + "\n";
  } else if (req.path == "/metrics") {
    resp.content_type = "text/plain; version=0.0.4; charset=utf-8";
    resp.body = RenderMetrics(Report());
  } else if (req.path == "/history") {
    size_t limit = 500;
    if (std::string l = QueryValue(req.query, "limit"); !l.empty())
      limit = size_t(std::clamp(std::atol(l.c_str()), 1L, 10000L));
    auto runs = history_->Recent(QueryValue(req.query, "job"), limit);
    if (!runs.ok()) {
      resp.status = 500;
      resp.body = runs.status().ToString() + "\n";
      return resp;
    }
    json out = json::array();
    for (auto it = runs->rbegin(); it != runs->rend(); ++it) {
      const RunRecord& r = *it;
      out.push_back({{"id", r.id},
                     {"job", r.job},
                     {"scheduled", r.scheduled},
                     {"started", r.started},
                     {"ended", r.ended},
                     {"duration_seconds", r.ended > 0 ? r.ended - r.started : 0.0},
                     {"result", RunResultName(r.result)},
                     {"exit_code", r.exit_code},
                     {"bytes", r.bytes},
                     {"snapshot", r.snapshot},
                     {"error", r.error},
                     {"attempt", r.attempt}});
    }
    resp.content_type = "application/json";
    resp.body = out.dump() + "\n";
  } else if (req.path == "/healthz") {
    resp.body = "ok\n";
  } else {
    resp.status = 404;
    resp.body = "not found; try /, /status, /metrics, /history\n";
  }
  return resp;
}

int Daemon::Run() {
  auto lp = plan::LoadPlanFile(opts_.plan_path);
  if (!lp.ok()) {
    Say(lp.status().ToString());
    return ExitCodeFor(lp.status().code());
  }
  if (!lp->ok()) {
    Say(fmt::format("{} has {} error(s); run 'lifeboat plan check {}'", opts_.plan_path,
                    lp->ErrorCount(), opts_.plan_path));
    SayProblems(*lp);
    return 2;
  }
  plan_ = std::make_shared<const plan::Plan>(std::move(lp->plan));
  const plan::DaemonPlan& d = plan_->daemon;

  std::string listen = !opts_.listen.empty() ? opts_.listen
                       : !d.listen.empty()   ? d.listen
                                             : kDefaultListen;
  auto la = ParseListenAddress(listen);
  if (!la.ok()) {
    Say(la.status().ToString());
    return 2;
  }
  std::string token;
  if (!d.token_file.empty()) {
    auto t = ReadToken(d.token_file);
    if (!t.ok()) {
      Say(t.status().ToString());
      return ExitCodeFor(t.status().code());
    }
    token = *t;
  }
  if (!IsLoopbackHost(la->host) && token.empty()) {
    Say(
        fmt::format("refusing to listen on '{}' without a bearer token: anyone who reaches it "
                    "could read the status of every backup\n  hint: set daemon.token_file, or "
                    "listen on 127.0.0.1",
                    listen));
    return 2;
  }

  std::string history_path = !opts_.history.empty() ? opts_.history : DefaultHistoryPath(*plan_);
  auto h = History::Open(history_path, true);
  if (!h.ok()) {
    Say(h.status().ToString());
    return ExitCodeFor(h.status().code());
  }
  history_ = std::move(*h);
  auto slots = history_->LastSlots();
  if (!slots.ok()) {
    Say(slots.status().ToString());
    return ExitCodeFor(slots.status().code());
  }

  // Signals go to the signal thread only; children get a clean mask (ops/child.cc).
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGUSR1}) sigaddset(&set, s);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  auto server =
      HttpServer::Listen(listen, token, [this](const HttpRequest& r) { return Handle(r); });
  if (!server.ok()) {
    Say(server.status().ToString());
    return ExitCodeFor(server.status().code());
  }
  (*server)->Start();
  Say(fmt::format("running plan {} ({} jobs); history {}; http://{}/", opts_.plan_path,
                  plan_->jobs.size(), history_path, (*server)->address()));

  std::thread signals([this, set] { SignalLoop(set); });
  {
    std::lock_guard<std::mutex> l(mu_);
    sched_.SetOptions(OptionsOf(*plan_));
    sched_.SetPlan(*plan_, plan::UnixSeconds(Now()), *slots);
  }
  std::thread observer([this] { ObserveLoop(); });

  std::unique_lock<std::mutex> l(mu_);
  std::optional<double> stop_deadline;
  while (true) {
    double now = Now();
    Reap(now);
    if (reload_requested_) {
      reload_requested_ = false;
      Reload(now);
    }
    if (stop_requested_ && !stop_deadline) {
      sched_.Stop();
      stop_deadline = now + double(plan_->daemon.stop_grace);
      Say(fmt::format("stopping: no new jobs; {} running job(s) get {} s to finish",
                      running_.size(), plan_->daemon.stop_grace));
    }
    if (stop_deadline) {
      if (running_.empty()) break;
      if (now >= *stop_deadline && !stop_children_) {
        Say("stop grace period over: stopping the running jobs");
        stop_children_ = true;
      }
    }
    for (const auto& t : sched_.Poll(plan::UnixSeconds(now))) StartRun(t, now);
    for (const auto& [job, slot] : sched_.TakeSlotUpdates()) {
      Status s = history_->SetLastSlot(job, slot);
      if (!s.ok()) Say(s.ToString());
    }
    double wake = now + 30;
    if (auto w = sched_.NextWakeup(plan::UnixSeconds(now))) wake = std::min(wake, double(*w));
    if (stop_deadline && !stop_children_) wake = std::min(wake, *stop_deadline);
    if (stop_deadline) wake = std::min(wake, now + 0.5);
    bool any_done = false;
    for (const auto& [id, r] : running_) any_done |= r.done;
    if (any_done || stop_requested_ != stop_deadline.has_value() || reload_requested_) continue;
    cv_.wait_for(l, std::chrono::duration<double>(std::max(0.01, wake - Now())), [&] {
      bool done = false;
      for (const auto& [id, r] : running_) done |= r.done;
      return done || reload_requested_ || (stop_requested_ && !stop_deadline);
    });
  }
  shutting_down_ = true;
  observe_stop_ = true;
  cv_.notify_all();
  l.unlock();
  observer.join();
  (*server)->Stop();
  pthread_kill(signals.native_handle(), SIGUSR1);
  signals.join();
  Say("stopped");
  return 0;
}

}  // namespace

int RunDaemon(const DaemonOptions& opts) {
  std::string program = opts.program;
  if (program.empty()) {
    auto self = SelfExe();
    if (!self.ok()) {
      Say(self.status().ToString());
      return 1;
    }
    program = *self;
  }
  Daemon d(opts, program);
  return d.Run();
}

}  // namespace lb::ops
