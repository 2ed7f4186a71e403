#include "chunk/fastcdc.h"

#include <algorithm>

namespace lb::chunk {

namespace {
uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// A mask with `bits` one-bits spread over the high 48 bits of the fingerprint: FastCDC's
// "zero padding" makes the effective window 48 bytes wide instead of 64 - bits.
uint64_t SpreadMask(uint32_t bits) {
  uint64_t mask = 0;
  uint32_t placed = 0;
  for (int pos = 63; pos >= 16 && placed < bits; pos -= 2, ++placed) mask |= 1ull << pos;
  for (int pos = 62; pos >= 16 && placed < bits; pos -= 2, ++placed) mask |= 1ull << pos;
  return mask;
}
}  // namespace

Chunker::Chunker(const ChunkerParams& params) : params_(params) {
  uint64_t state = params.seed ^ 0x6c696665626f6174ull;  // "lifeboat"
  for (auto& g : gear_) g = SplitMix64(state);
  mask_s_ = SpreadMask(params.avg_bits + 2);
  mask_l_ = SpreadMask(params.avg_bits - 2);
}

size_t Chunker::Cut(ByteSpan data) const {
  size_t n = data.size();
  if (n <= params_.min_size) return n;
  if (n > params_.max_size) n = params_.max_size;
  size_t normal = std::min<size_t>(size_t{1} << params_.avg_bits, n);
  uint64_t fp = 0;
  size_t i = params_.min_size;
  const uint8_t* p = data.data();
  // Warm the fingerprint over the 64 bytes before min_size so the cut decision at min_size
  // already depends on a full window.
  for (size_t j = i - 64; j < i; ++j) fp = (fp << 1) + gear_[p[j]];
  for (; i < normal; ++i) {
    fp = (fp << 1) + gear_[p[i]];
    if ((fp & mask_s_) == 0) return i + 1;
  }
  for (; i < n; ++i) {
    fp = (fp << 1) + gear_[p[i]];
    if ((fp & mask_l_) == 0) return i + 1;
  }
  return n;
}

}  // namespace lb::chunk
