// A one-line progress display on a terminal: files, bytes, rate and ETA, redrawn a few times
// a second by its own thread. Shown only when stderr is a terminal.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace lb::cli {

struct ProgressSample {
  uint64_t files_done, files_total, bytes_done, bytes_total;
  bool totals_final;
};

class ProgressBar {
 public:
  ProgressBar(const char* verb, std::function<ProgressSample()> sample);
  ~ProgressBar();  // clears the line

 private:
  void Loop();
  const char* verb_;
  std::function<ProgressSample()> sample_;
  std::chrono::steady_clock::time_point start_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace lb::cli
