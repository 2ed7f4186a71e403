// A set of blob ids larger than memory should hold: prune's "every blob some snapshot
// references". Ids are added in any order, sorted in fixed-size batches that spill to
// unnamed temporary files, then merged into one sorted file of unique ids. Memory is the
// batch buffer plus a sparse sample of the result, whatever the number of ids.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "crypto/crypto.h"
#include "util/status.h"

namespace lb::repo {

class IdSpill {
 public:
  // Ids kept in memory before a batch is sorted and written out (32 bytes each).
  static constexpr size_t kDefaultBatch = size_t(1) << 17;  // 4 MiB

  // `dir` holds the temporary files (created if missing). The files are unnamed (O_TMPFILE,
  // or unlinked at once), so nothing is left behind by a killed process.
  static Result<std::unique_ptr<IdSpill>> Create(const std::string& dir,
                                                 size_t batch = kDefaultBatch);
  ~IdSpill();
  IdSpill(const IdSpill&) = delete;
  IdSpill& operator=(const IdSpill&) = delete;

  // Adds an id (duplicates are fine). Only before Finish().
  Status Add(const crypto::Id& id);
  // Sorts, merges and deduplicates. After it, Contains and Scan may be used; Add may not.
  Status Finish();

  // Number of distinct ids (after Finish).
  uint64_t size() const { return count_; }
  // Whether `id` was added: a search of the in-memory sample, then one read of a block.
  Result<bool> Contains(const crypto::Id& id);

  // Reads the ids in ascending order, buffered. Not thread-safe; one scan at a time per
  // IdSpill is not required (each Scan reads with its own offset).
  class Scan {
   public:
    // Next id, or false at the end. Errors of the read come back as a status.
    Result<bool> Next(crypto::Id& out);

   private:
    friend class IdSpill;
    explicit Scan(const IdSpill& s) : spill_(s) {}
    const IdSpill& spill_;
    std::vector<uint8_t> buf_;
    size_t pos_ = 0;        // in buf_
    uint64_t next_ = 0;     // index of the next id to read from the file
  };
  Scan Ids() const { return Scan(*this); }

 private:
  IdSpill() = default;
  Status SpillBatch();
  Result<int> NewTempFile();

  std::string dir_;
  size_t batch_limit_ = kDefaultBatch;
  std::vector<crypto::Id> batch_;
  std::vector<std::pair<int, uint64_t>> runs_;  // fd, id count
  bool finished_ = false;
  // After Finish: either everything fit in memory (`memory_`), or one merged file.
  std::vector<crypto::Id> memory_;
  int fd_ = -1;
  uint64_t count_ = 0;
  std::vector<crypto::Id> sample_;  // every kBlockIds-th id of the file
  std::vector<uint8_t> block_;      // the last block read by Contains
  int64_t block_no_ = -1;
};

}  // namespace lb::repo
