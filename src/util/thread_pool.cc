#include "util/thread_pool.h"

#include <cstdlib>
#include <string>

namespace lb {

ThreadPool::ThreadPool(size_t threads, size_t queue_limit)
    : queue_limit_(queue_limit ? queue_limit : 4 * (threads ? threads : 1)) {
  if (threads == 0) threads = 1;
  for (size_t i = 0; i < threads; ++i) workers_.emplace_back([this] { Run(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  has_work_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::Submit(std::function<void()> task) {
  std::unique_lock lock(mu_);
  has_room_.wait(lock, [&] { return queue_.size() < queue_limit_; });
  queue_.push_back(std::move(task));
  has_work_.notify_one();
}

void ThreadPool::Wait() {
  std::unique_lock lock(mu_);
  idle_.wait(lock, [&] { return queue_.empty() && running_ == 0; });
}

void ThreadPool::Run() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock lock(mu_);
      has_work_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stop_ and drained
      task = std::move(queue_.front());
      queue_.pop_front();
      ++running_;
      has_room_.notify_one();
    }
    task();
    {
      std::lock_guard lock(mu_);
      --running_;
      if (queue_.empty() && running_ == 0) idle_.notify_all();
    }
  }
}

size_t ThreadPool::DefaultThreads() {
  if (const char* env = std::getenv("LIFEBOAT_THREADS")) {
    long n = std::strtol(env, nullptr, 10);
    if (n > 0 && n < 1024) return size_t(n);
  }
  unsigned n = std::thread::hardware_concurrency();
  return n ? n : 1;
}

}  // namespace lb
