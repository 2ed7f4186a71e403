#include "repo/id_spill.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <queue>

namespace lb::repo {

namespace {

constexpr size_t kIdBytes = 32;
// Contains() reads one block of this many ids; the sample holds the first id of each
// block, so it costs 32 bytes per 32 KiB of ids.
constexpr uint64_t kBlockIds = 1024;
// Each run being merged is read through a buffer of this many ids.
constexpr size_t kMergeBufferIds = 2048;  // 64 KiB
// At most this many runs are merged at once (open files, buffers).
constexpr size_t kMaxMergeFanIn = 64;

Status WriteAll(int fd, const uint8_t* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "write prune scratch file");
    }
    p += w;
    n -= size_t(w);
  }
  return Status::Ok();
}

// Reads up to n bytes at `off`; returns how many (short only at the end of the file).
Result<size_t> ReadAt(int fd, uint8_t* p, size_t n, uint64_t off) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd, p + done, n - done, off_t(off + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "read prune scratch file");
    }
    if (r == 0) break;
    done += size_t(r);
  }
  return done;
}

// A sequential reader of one sorted run file.
struct RunReader {
  int fd = -1;
  uint64_t count = 0;
  uint64_t next = 0;  // ids consumed from the file
  std::vector<uint8_t> buf;
  size_t pos = 0, len = 0;

  // Points `cur` at the next id, or returns false at the end.
  Result<bool> Advance(const uint8_t*& cur) {
    if (pos == len) {
      if (next == count) return false;
      uint64_t n = std::min<uint64_t>(kMergeBufferIds, count - next);
      buf.resize(n * kIdBytes);
      LB_ASSIGN_OR_RETURN(size_t got, ReadAt(fd, buf.data(), buf.size(), next * kIdBytes));
      if (got != buf.size()) return Err(Code::kIo, "prune scratch file is shorter than written");
      next += n;
      pos = 0;
      len = buf.size();
    }
    cur = buf.data() + pos;
    pos += kIdBytes;
    return true;
  }
};

}  // namespace

Result<std::unique_ptr<IdSpill>> IdSpill::Create(const std::string& dir, size_t batch) {
  std::unique_ptr<IdSpill> s(new IdSpill());
  s->dir_ = dir;
  s->batch_limit_ = std::max<size_t>(batch, 1);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Err(Code::kIo, "cannot create scratch directory '{}': {}", dir, ec.message());
  return s;
}

IdSpill::~IdSpill() {
  for (auto& [fd, n] : runs_) ::close(fd);
  if (fd_ >= 0) ::close(fd_);
}

Result<int> IdSpill::NewTempFile() {
  int fd = ::open(dir_.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0) return fd;
  // Filesystems without O_TMPFILE: a named file, unlinked at once.
  std::string path = dir_ + "/ids-XXXXXX";
  fd = ::mkstemp(path.data());
  if (fd < 0) return ErrnoStatus(errno, "create scratch file in '" + dir_ + "'");
  ::unlink(path.c_str());
  return fd;
}

Status IdSpill::Add(const crypto::Id& id) {
  if (finished_) return Err(Code::kInternal, "IdSpill::Add after Finish");
  if (batch_.capacity() == 0) batch_.reserve(std::min<size_t>(batch_limit_, 4096));
  batch_.push_back(id);
  if (batch_.size() >= batch_limit_) return SpillBatch();
  return Status::Ok();
}

Status IdSpill::SpillBatch() {
  std::sort(batch_.begin(), batch_.end());
  batch_.erase(std::unique(batch_.begin(), batch_.end()), batch_.end());
  LB_ASSIGN_OR_RETURN(int fd, NewTempFile());
  runs_.emplace_back(fd, batch_.size());
  static_assert(sizeof(crypto::Id) == kIdBytes);
  LB_RETURN_IF_ERROR(WriteAll(fd, reinterpret_cast<const uint8_t*>(batch_.data()),
                              batch_.size() * kIdBytes));
  batch_.clear();
  return Status::Ok();
}

Status IdSpill::Finish() {
  if (finished_) return Status::Ok();
  finished_ = true;
  if (runs_.empty()) {
    std::sort(batch_.begin(), batch_.end());
    batch_.erase(std::unique(batch_.begin(), batch_.end()), batch_.end());
    memory_ = std::move(batch_);
    batch_ = {};
    count_ = memory_.size();
    return Status::Ok();
  }
  if (!batch_.empty()) LB_RETURN_IF_ERROR(SpillBatch());
  batch_ = {};  // give the buffer back before merging

  // Merge groups of at most kMaxMergeFanIn runs until one is left, dropping duplicates.
  while (runs_.size() > 1) {
    std::vector<std::pair<int, uint64_t>> next_level;
    for (size_t g = 0; g < runs_.size(); g += kMaxMergeFanIn) {
      size_t end = std::min(runs_.size(), g + kMaxMergeFanIn);
      std::vector<RunReader> readers;
      for (size_t i = g; i < end; ++i) {
        RunReader r;
        r.fd = runs_[i].first;
        r.count = runs_[i].second;
        readers.push_back(std::move(r));
      }
      using Head = std::pair<const uint8_t*, size_t>;  // current id, reader
      auto greater = [](const Head& a, const Head& b) {
        return std::memcmp(a.first, b.first, kIdBytes) > 0;
      };
      std::priority_queue<Head, std::vector<Head>, decltype(greater)> heap(greater);
      for (size_t i = 0; i < readers.size(); ++i) {
        const uint8_t* cur = nullptr;
        LB_ASSIGN_OR_RETURN(bool more, readers[i].Advance(cur));
        if (more) heap.push({cur, i});
      }
      LB_ASSIGN_OR_RETURN(int out, NewTempFile());
      std::vector<uint8_t> obuf;
      obuf.reserve(kMergeBufferIds * kIdBytes);
      uint8_t last[kIdBytes];
      uint64_t written = 0;
      while (!heap.empty()) {
        auto [cur, i] = heap.top();
        heap.pop();
        if (written == 0 || std::memcmp(last, cur, kIdBytes) != 0) {
          std::memcpy(last, cur, kIdBytes);
          obuf.insert(obuf.end(), cur, cur + kIdBytes);
          ++written;
          if (obuf.size() >= kMergeBufferIds * kIdBytes) {
            Status s = WriteAll(out, obuf.data(), obuf.size());
            if (!s.ok()) {
              ::close(out);
              return s;
            }
            obuf.clear();
          }
        }
        const uint8_t* nxt = nullptr;
        LB_ASSIGN_OR_RETURN(bool more, readers[i].Advance(nxt));
        if (more) heap.push({nxt, i});
      }
      Status s = WriteAll(out, obuf.data(), obuf.size());
      if (!s.ok()) {
        ::close(out);
        return s;
      }
      for (size_t i = g; i < end; ++i) ::close(runs_[i].first);
      next_level.emplace_back(out, written);
    }
    runs_ = std::move(next_level);
  }
  fd_ = runs_[0].first;
  count_ = runs_[0].second;
  runs_.clear();

  // The sample: the first id of every block.
  for (uint64_t b = 0; b * kBlockIds < count_; ++b) {
    crypto::Id id;
    LB_ASSIGN_OR_RETURN(size_t got, ReadAt(fd_, id.bytes.data(), kIdBytes, b * kBlockIds * kIdBytes));
    if (got != kIdBytes) return Err(Code::kIo, "prune scratch file is shorter than written");
    sample_.push_back(id);
  }
  return Status::Ok();
}

Result<bool> IdSpill::Contains(const crypto::Id& id) {
  if (!finished_) return Err(Code::kInternal, "IdSpill::Contains before Finish");
  if (fd_ < 0) return std::binary_search(memory_.begin(), memory_.end(), id);
  auto it = std::upper_bound(sample_.begin(), sample_.end(), id);
  if (it == sample_.begin()) return false;
  int64_t block = int64_t(it - sample_.begin()) - 1;
  if (block != block_no_) {
    uint64_t first = uint64_t(block) * kBlockIds;
    uint64_t n = std::min<uint64_t>(kBlockIds, count_ - first);
    block_.resize(n * kIdBytes);
    LB_ASSIGN_OR_RETURN(size_t got, ReadAt(fd_, block_.data(), block_.size(), first * kIdBytes));
    if (got != block_.size()) return Err(Code::kIo, "prune scratch file is shorter than written");
    block_no_ = block;
  }
  const auto* ids = reinterpret_cast<const crypto::Id*>(block_.data());
  return std::binary_search(ids, ids + block_.size() / kIdBytes, id);
}

Result<bool> IdSpill::Scan::Next(crypto::Id& out) {
  if (spill_.fd_ < 0) {
    if (next_ >= spill_.memory_.size()) return false;
    out = spill_.memory_[next_++];
    return true;
  }
  if (pos_ == buf_.size()) {
    if (next_ >= spill_.count_) return false;
    uint64_t n = std::min<uint64_t>(kMergeBufferIds * 4, spill_.count_ - next_);
    buf_.resize(n * kIdBytes);
    LB_ASSIGN_OR_RETURN(size_t got, ReadAt(spill_.fd_, buf_.data(), buf_.size(), next_ * kIdBytes));
    if (got != buf_.size()) return Err(Code::kIo, "prune scratch file is shorter than written");
    next_ += n;
    pos_ = 0;
  }
  std::memcpy(out.bytes.data(), buf_.data() + pos_, kIdBytes);
  pos_ += kIdBytes;
  return true;
}

}  // namespace lb::repo
