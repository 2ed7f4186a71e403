// A one-line progress display on a terminal: files, bytes, rate and ETA, redrawn a few times
// a second by its own thread. Shown only when stderr is a terminal.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "source/files_backup.h"

namespace lb::cli {

struct ProgressSample {
  uint64_t files_done, files_total, bytes_done, bytes_total;
  bool totals_final;
};

class ProgressBar {
 public:
  // `unit` names what files_done counts ("files", "snapshots").
  ProgressBar(const char* verb, std::function<ProgressSample()> sample,
              const char* unit = "files");
  ~ProgressBar();  // clears the line

 private:
  void Loop();
  const char* verb_;
  const char* unit_;
  std::function<ProgressSample()> sample_;
  std::chrono::steady_clock::time_point start_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

// A progress bar over a backup's counters when stderr is a terminal (and neither --quiet nor
// --json), else null. The caller hands `progress` to the backup only when a bar was made.
std::unique_ptr<ProgressBar> BackupProgressBar(const char* verb,
                                               const source::BackupProgress& progress);

}  // namespace lb::cli
