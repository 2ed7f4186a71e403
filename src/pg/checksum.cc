#include "pg/checksum.h"

#include <cstring>
#include <string>

namespace lb::pg {

namespace {
constexpr uint32_t kFnvPrime = 16777619;
constexpr int kSums = 32;
// Initial states of the 32 sums; fixed by PostgreSQL's on-disk format.
constexpr uint32_t kBase[kSums] = {
    0x5B1F36E9, 0xB8525960, 0x02AB50AA, 0x1DE66D2A, 0x79FF467A, 0x9BB9F8A3, 0x217E7CD2,
    0x83E13D2C, 0xF8D4474F, 0xE39EB970, 0x42C6AE16, 0x993216FA, 0x7B093B5D, 0x98DAFF3C,
    0xF718902A, 0x0B1C9CDB, 0xE58F764B, 0x187636BC, 0x5D7B3BB1, 0xE73DE7DE, 0x92BEC979,
    0xCCA6C0B2, 0x304A0979, 0x85AA43D4, 0x783125BB, 0x6CA8EAA2, 0xE407EAC6, 0x4B5CFC3E,
    0x9FBF8C76, 0x15CA20BE, 0xF2CA9FD3, 0x959BD756};

inline uint32_t Mix(uint32_t sum, uint32_t value) {
  uint32_t t = sum ^ value;
  return t * kFnvPrime ^ (t >> 17);
}
}  // namespace

uint16_t PageChecksum(const uint8_t* page, uint32_t blkno) {
  uint32_t sums[kSums];
  std::memcpy(sums, kBase, sizeof sums);
  uint32_t words[kPageSize / 4];
  std::memcpy(words, page, kPageSize);
  // The checksum field (bytes 8-9 of the header) counts as zero.
  reinterpret_cast<uint8_t*>(words)[8] = 0;
  reinterpret_cast<uint8_t*>(words)[9] = 0;
  for (size_t row = 0; row < kPageSize / 4 / kSums; ++row)
    for (int j = 0; j < kSums; ++j) sums[j] = Mix(sums[j], words[row * kSums + j]);
  for (int round = 0; round < 2; ++round)
    for (int j = 0; j < kSums; ++j) sums[j] = Mix(sums[j], 0);
  uint32_t result = 0;
  for (int j = 0; j < kSums; ++j) result ^= sums[j];
  result ^= blkno;
  return uint16_t(result % 65535 + 1);
}

PageVerdict VerifyPage(const uint8_t* page, uint32_t blkno, uint64_t start_lsn,
                       uint16_t* expected, uint16_t* found) {
  bool zero = true;
  for (size_t i = 0; i < kPageSize; i += 8) {
    uint64_t w;
    std::memcpy(&w, page + i, 8);
    if (w) {
      zero = false;
      break;
    }
  }
  if (zero) return PageVerdict::kNew;
  // pd_lsn: two 32-bit halves, high first, in native (little-endian) order.
  uint32_t hi, lo;
  std::memcpy(&hi, page, 4);
  std::memcpy(&lo, page + 4, 4);
  uint64_t lsn = (uint64_t(hi) << 32) | lo;
  if (lsn >= start_lsn) return PageVerdict::kSkippedLsn;
  uint16_t stored;
  std::memcpy(&stored, page + 8, 2);
  uint16_t want = PageChecksum(page, blkno);
  if (expected) *expected = want;
  if (found) *found = stored;
  return stored == want ? PageVerdict::kOk : PageVerdict::kBad;
}

bool IsRelationFile(const std::string& rel, uint32_t* segno) {
  std::string name;
  if (rel.rfind("base/", 0) == 0) {
    size_t slash = rel.find('/', 5);
    if (slash == std::string::npos) return false;
    name = rel.substr(slash + 1);
  } else if (rel.rfind("global/", 0) == 0) {
    name = rel.substr(7);
  } else if (rel.rfind("pg_tblspc/", 0) == 0 || rel.rfind("PG_", 0) == 0) {
    // pg_tblspc/<oid>/PG_<ver>_<catver>/<db>/<file>, or the same relative to the
    // tablespace's own directory: PG_<ver>_<catver>/<db>/<file>
    size_t last = rel.rfind('/');
    if (last == std::string::npos) return false;
    name = rel.substr(last + 1);
  } else {
    return false;
  }
  if (name.find('/') != std::string::npos || name.empty()) return false;
  size_t i = 0;
  while (i < name.size() && isdigit(static_cast<unsigned char>(name[i]))) ++i;
  if (i == 0) return false;
  std::string rest = name.substr(i);
  if (rest.rfind("_fsm", 0) == 0) rest = rest.substr(4);
  else if (rest.rfind("_vm", 0) == 0) rest = rest.substr(3);
  else if (rest.rfind("_init", 0) == 0) rest = rest.substr(5);
  uint32_t seg = 0;
  if (!rest.empty()) {
    if (rest[0] != '.' || rest.size() < 2) return false;
    for (size_t k = 1; k < rest.size(); ++k) {
      if (!isdigit(static_cast<unsigned char>(rest[k]))) return false;
      seg = seg * 10 + uint32_t(rest[k] - '0');
    }
  }
  if (segno) *segno = seg;
  return true;
}

}  // namespace lb::pg
