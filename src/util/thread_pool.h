// A fixed pool of worker threads with a bounded task queue (Submit blocks when full), so
// producers cannot run ahead of the workers and memory stays bounded.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace lb {

class ThreadPool {
 public:
  // `threads` workers; at most `queue_limit` tasks wait (0 = 4 * threads).
  explicit ThreadPool(size_t threads, size_t queue_limit = 0);
  ~ThreadPool();  // runs every queued task, then joins
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Queues `task`; blocks while the queue is full. Tasks must not throw.
  void Submit(std::function<void()> task);
  // Blocks until the queue is empty and no task runs.
  void Wait();
  size_t size() const { return workers_.size(); }

  // Number of hardware threads, at least 1 (LIFEBOAT_THREADS overrides).
  static size_t DefaultThreads();

 private:
  void Run();

  std::mutex mu_;
  std::condition_variable has_work_;   // signalled when a task is queued or on stop
  std::condition_variable has_room_;   // signalled when a task is taken
  std::condition_variable idle_;       // signalled when running_ drops and queue is empty
  std::deque<std::function<void()>> queue_;  // guarded by mu_
  size_t running_ = 0;                       // guarded by mu_
  bool stop_ = false;                        // guarded by mu_
  size_t queue_limit_;
  std::vector<std::thread> workers_;
};

}  // namespace lb
