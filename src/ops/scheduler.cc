#include "ops/scheduler.h"

#include <algorithm>
#include <tuple>

namespace lb::ops {

namespace {

// The newest slot of `s` in (after, now], looking at no more than this many slots (a
// second-granular schedule after a long downtime); past it, the last one looked at.
constexpr int kMaxSlotsWalked = 1000000;

std::optional<UnixSeconds> LatestSlotUpTo(const plan::CronSchedule& s, UnixSeconds after,
                                          UnixSeconds now) {
  std::optional<UnixSeconds> latest;
  if (int64_t every = s.expression().every(); every > 0) {
    UnixSeconds t = now - now % every;
    if (t > after) latest = t;
    return latest;
  }
  UnixSeconds t = after;
  for (int i = 0; i < kMaxSlotsWalked; ++i) {
    auto n = s.NextRun(t);
    if (!n || *n > now) break;
    latest = *n;
    t = *n;
  }
  return latest;
}

}  // namespace

void Scheduler::TakeSlot(const std::string& name, JobState& j, UnixSeconds slot) {
  slot_updates_.emplace_back(name, slot);
  // A slot replaces a retry that waits, and merges with a run that waits already.
  if (!j.waiting || j.waiting->attempt > 1)
    j.waiting = Waiting{.scheduled = slot, .not_before = slot, .attempt = 1, .missed = false};
  else
    j.waiting->scheduled = slot;
}

void Scheduler::SetPlan(const plan::Plan& plan, UnixSeconds now,
                        const std::map<std::string, UnixSeconds>& last_slots) {
  for (auto& [name, j] : jobs_) j.removed = true;
  for (const auto& jp : plan.jobs) {
    std::string key = jp.schedule.expression().text() + "|" + jp.schedule.zone().name();
    auto it = jobs_.find(jp.name);
    if (it != jobs_.end()) {
      JobState& j = it->second;
      j.removed = false;
      j.source = jp.source;
      j.exclusive = jp.kind == plan::JobKind::kPrune;
      if (j.schedule_key != key) {
        j.schedule = jp.schedule;
        j.schedule_key = key;
        j.next_slot = j.schedule.NextRun(now);
      }
      continue;
    }
    JobState j;
    j.source = jp.source;
    j.exclusive = jp.kind == plan::JobKind::kPrune;
    j.schedule = jp.schedule;
    j.schedule_key = key;
    auto last = last_slots.find(jp.name);
    if (last != last_slots.end()) {
      if (auto missed = LatestSlotUpTo(j.schedule, last->second, now)) {
        TakeSlot(jp.name, j, *missed);
        j.waiting->not_before = now;
        j.waiting->missed = true;
      }
    }
    j.next_slot = j.schedule.NextRun(now);
    jobs_.emplace(jp.name, std::move(j));
  }
  for (auto it = jobs_.begin(); it != jobs_.end();) {
    if (it->second.removed && !it->second.ticket)
      it = jobs_.erase(it);
    else
      ++it;
  }
}

std::vector<JobTicket> Scheduler::Poll(UnixSeconds now) {
  std::vector<JobTicket> out;
  if (stopped_) return out;
  for (auto& [name, j] : jobs_) {
    if (j.removed || !j.next_slot || *j.next_slot > now) continue;
    // Every slot up to now merges into one run.
    UnixSeconds slot = *j.next_slot;
    if (auto latest = LatestSlotUpTo(j.schedule, slot, now)) slot = *latest;
    TakeSlot(name, j, slot);
    j.next_slot = j.schedule.NextRun(now);
  }
  // Candidates in order of their slots.
  std::vector<std::tuple<UnixSeconds, std::string>> order;
  for (auto& [name, j] : jobs_)
    if (!j.removed && j.waiting && j.waiting->not_before <= now && !j.ticket)
      order.emplace_back(j.waiting->scheduled, name);
  std::sort(order.begin(), order.end());
  size_t running = RunningCount();
  bool exclusive_running = std::any_of(jobs_.begin(), jobs_.end(), [](const auto& kv) {
    return kv.second.ticket && kv.second.exclusive;
  });
  if (exclusive_running) return out;
  // A prune that is due waits for the running jobs to end, and nothing else starts
  // meanwhile: otherwise a busy plan could keep it waiting forever.
  bool exclusive_due = std::any_of(order.begin(), order.end(),
                                   [&](const auto& o) { return jobs_[std::get<1>(o)].exclusive; });
  for (const auto& [scheduled, name] : order) {
    JobState& j = jobs_[name];
    if (running >= size_t(opts_.max_parallel)) break;
    if (exclusive_due && !j.exclusive) continue;
    if (j.exclusive && running > 0) break;
    if (!j.source.empty()) {
      bool busy = std::any_of(jobs_.begin(), jobs_.end(), [&](const auto& kv) {
        return kv.second.ticket && kv.second.source == j.source;
      });
      if (busy) continue;
    }
    JobTicket t{.id = next_ticket_++,
                .job = name,
                .scheduled = j.waiting->scheduled,
                .attempt = j.waiting->attempt,
                .missed = j.waiting->missed};
    j.ticket = t.id;
    j.running_scheduled = t.scheduled;
    j.running_attempt = t.attempt;
    j.waiting.reset();
    ++running;
    out.push_back(std::move(t));
    if (j.exclusive) break;
  }
  return out;
}

void Scheduler::Finished(uint64_t ticket, bool ok, UnixSeconds now) {
  for (auto it = jobs_.begin(); it != jobs_.end(); ++it) {
    JobState& j = it->second;
    if (!j.ticket || *j.ticket != ticket) continue;
    j.ticket.reset();
    if (j.removed) {
      jobs_.erase(it);
      return;
    }
    if (!ok && !stopped_ && j.running_attempt <= opts_.retries && !j.waiting) {
      int64_t delay = opts_.retry_delay;
      for (int i = 1; i < j.running_attempt && delay < (int64_t(1) << 40); ++i) delay *= 2;
      j.waiting = Waiting{.scheduled = j.running_scheduled,
                          .not_before = now + delay,
                          .attempt = j.running_attempt + 1,
                          .missed = false};
    }
    return;
  }
}

std::optional<UnixSeconds> Scheduler::NextWakeup(UnixSeconds now) const {
  if (stopped_) return std::nullopt;
  std::optional<UnixSeconds> best;
  auto consider = [&](UnixSeconds t) {
    if (!best || t < *best) best = t;
  };
  for (const auto& [name, j] : jobs_) {
    if (j.removed) continue;
    if (j.next_slot) consider(*j.next_slot);
    if (j.waiting && j.waiting->not_before > now) consider(j.waiting->not_before);
  }
  return best;
}

std::optional<UnixSeconds> Scheduler::NextRun(const std::string& job) const {
  auto it = jobs_.find(job);
  if (it == jobs_.end() || it->second.removed) return std::nullopt;
  const JobState& j = it->second;
  if (j.waiting) return j.waiting->not_before;
  return j.next_slot;
}

bool Scheduler::IsRunning(const std::string& job) const {
  auto it = jobs_.find(job);
  return it != jobs_.end() && it->second.ticket.has_value();
}

size_t Scheduler::RunningCount() const {
  return size_t(std::count_if(jobs_.begin(), jobs_.end(),
                              [](const auto& kv) { return kv.second.ticket.has_value(); }));
}

std::vector<std::pair<std::string, UnixSeconds>> Scheduler::TakeSlotUpdates() {
  std::vector<std::pair<std::string, UnixSeconds>> out;
  out.swap(slot_updates_);
  return out;
}

}  // namespace lb::ops
