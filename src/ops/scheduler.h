// When plan jobs run: the daemon's timer as a state machine driven by the caller's clock
// (no threads, no sleeping), so tests step through days in microseconds.
//
// Rules (docs/user-guide.md, "The daemon"):
// - a job is due at each slot of its schedule (plan::CronSchedule::NextRun);
// - slots that pass while the job waits or runs are merged: a job is queued at most once;
// - two jobs of one source never run at once (the second waits), a prune job runs alone,
//   and at most max_parallel jobs run;
// - a failed run is retried after retry_delay, doubling each time, at most `retries` times;
//   a new slot replaces a waiting retry;
// - after downtime, a job whose slots passed runs once (not once per slot), as soon as the
//   scheduler starts; this needs the last slot taken of every job, persisted by the caller.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "plan/plan.h"

namespace lb::ops {

using plan::UnixSeconds;

struct SchedulerOptions {
  int retries = 3;
  int64_t retry_delay = 60;  // seconds before the first retry
  int max_parallel = 2;
};

// One run to start now.
struct JobTicket {
  uint64_t id = 0;
  std::string job = {};
  UnixSeconds scheduled = 0;  // the slot it is for (retries: the slot of the first attempt)
  int attempt = 1;
  bool missed = false;  // a slot that passed while the daemon was down
};

// Not thread-safe: one thread (the daemon's loop) drives it.
class Scheduler {
 public:
  explicit Scheduler(SchedulerOptions opts) : opts_(opts) {}

  // Loads the jobs of a valid plan, or reloads them: a job kept by name keeps its state (its
  // next slot unless its schedule changed, a waiting run, a retry, a running ticket); a new
  // job's first slot is its next one after `now`, unless `last_slots` has a slot it took
  // before and a later slot has passed by `now`: then it runs once at once (missed). A job
  // no longer in the plan is dropped (a running one ends but is not retried). Options
  // replace the old ones.
  void SetPlan(const plan::Plan& plan, UnixSeconds now,
               const std::map<std::string, UnixSeconds>& last_slots = {});
  void SetOptions(SchedulerOptions opts) { opts_ = opts; }

  // Queues the jobs whose slots have come and returns the runs to start now, in order of
  // their slots (then names). Each returned ticket counts as running until Finished.
  std::vector<JobTicket> Poll(UnixSeconds now);

  // A ticket's run ended. A failure is retried when attempts remain.
  void Finished(uint64_t ticket, bool ok, UnixSeconds now);

  // No more tickets from now on (SIGTERM); running ones may still finish.
  void Stop() { stopped_ = true; }
  bool stopped() const { return stopped_; }

  // The earliest time after `now` when Poll may return something new (a slot or a retry),
  // or nullopt when nothing is scheduled. Runs waiting for a running job are started by the
  // Poll after its Finished, so callers poll after every Finished too.
  std::optional<UnixSeconds> NextWakeup(UnixSeconds now) const;

  // When `job` runs next: a waiting run's time, else its next slot.
  std::optional<UnixSeconds> NextRun(const std::string& job) const;
  bool IsRunning(const std::string& job) const;
  size_t RunningCount() const;

  // Slots taken (job, slot) since the last call, to persist for the missed-run rule.
  std::vector<std::pair<std::string, UnixSeconds>> TakeSlotUpdates();

 private:
  struct Waiting {
    UnixSeconds scheduled = 0;
    UnixSeconds not_before = 0;
    int attempt = 1;
    bool missed = false;
  };
  struct JobState {
    std::string source;  // "" when the job has none
    bool exclusive = false;
    plan::CronSchedule schedule;
    std::string schedule_key;  // expression and zone, to see a change on reload
    std::optional<UnixSeconds> next_slot;
    std::optional<Waiting> waiting;
    std::optional<uint64_t> ticket;  // running
    UnixSeconds running_scheduled = 0;
    int running_attempt = 0;
    bool removed = false;
  };

  void TakeSlot(const std::string& name, JobState& j, UnixSeconds slot);

  SchedulerOptions opts_;
  std::map<std::string, JobState> jobs_;
  uint64_t next_ticket_ = 1;
  bool stopped_ = false;
  std::vector<std::pair<std::string, UnixSeconds>> slot_updates_ = {};
};

}  // namespace lb::ops
