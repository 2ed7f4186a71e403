// Content-defined chunking for file data (FastCDC with normalized chunking, level 2).
// Boundaries depend only on content and on a per-repository gear seed, so shifted data
// deduplicates while boundaries do not fingerprint plaintext across repositories.
#pragma once

#include <array>
#include <cstdint>

#include "util/bytes.h"

namespace lb::chunk {

struct ChunkerParams {
  uint32_t min_size = 512u << 10;   // no cut before this many bytes
  uint32_t avg_bits = 20;           // normal size 2^avg_bits = 1 MiB
  uint32_t max_size = 8u << 20;     // forced cut
  uint64_t seed = 0;                // per repository, from the encrypted config
};

class Chunker {
 public:
  explicit Chunker(const ChunkerParams& params);

  // Returns the length of the chunk that starts at data[0]. The caller passes either at least
  // max_size() bytes or the whole rest of the stream; the result is then <= data.size().
  size_t Cut(ByteSpan data) const;

  uint32_t max_size() const { return params_.max_size; }
  uint32_t min_size() const { return params_.min_size; }

 private:
  ChunkerParams params_;
  uint64_t mask_s_;  // harder mask, used before the normal size
  uint64_t mask_l_;  // easier mask, used after it
  std::array<uint64_t, 256> gear_;
};

}  // namespace lb::chunk
