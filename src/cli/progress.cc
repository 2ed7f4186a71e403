#include "cli/progress.h"

#include <cstdio>

#include "cli/common.h"
#include "util/log.h"

namespace lb::cli {

ProgressBar::ProgressBar(const char* verb, std::function<ProgressSample()> sample,
                         const char* unit)
    : verb_(verb), unit_(unit), sample_(std::move(sample)),
      start_(std::chrono::steady_clock::now()) {
  thread_ = std::thread([this] { Loop(); });
}

ProgressBar::~ProgressBar() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
}

void ProgressBar::Loop() {
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, std::chrono::milliseconds(250), [&] { return stop_; })) {
    ProgressSample s = sample_();
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    double rate = secs > 0 ? double(s.bytes_done) / secs : 0;
    std::string eta = "--:--";
    if (s.totals_final && rate > 0 && s.bytes_total >= s.bytes_done) {
      int left = int(double(s.bytes_total - s.bytes_done) / rate);
      eta = fmt::format("{}:{:02d}", left / 60, left % 60);
    }
    std::string files = s.files_total ? fmt::format("{}/{}", s.files_done, s.files_total)
                                      : fmt::format("{}", s.files_done);
    std::string bytes = s.bytes_total ? fmt::format("{} / {}", HumanBytes(s.bytes_done),
                                                    HumanBytes(s.bytes_total))
                                      : HumanBytes(s.bytes_done);
    std::fprintf(stderr, "\r\033[K%s %d:%02d  %s %s  %s  %s/s  ETA %s", verb_, int(secs) / 60,
                 int(secs) % 60, unit_, files.c_str(), bytes.c_str(),
                 HumanBytes(uint64_t(rate)).c_str(), eta.c_str());
    std::fflush(stderr);
  }
}

std::unique_ptr<ProgressBar> BackupProgressBar(const char* verb,
                                               const source::BackupProgress& p) {
  if (!ProgressWanted()) return nullptr;
  return std::make_unique<ProgressBar>(verb, [&p] {
    return ProgressSample{p.files_done, p.files_total, p.bytes_done, p.bytes_total, p.scan_done};
  });
}

}  // namespace lb::cli
