// PostgreSQL data page checksums (the algorithm of storage/checksum_impl.h: 32 interleaved
// FNV-1a-style sums over the page as 32-bit words, folded, mixed with the block number).
#pragma once

#include <cstdint>

#include "util/bytes.h"

namespace lb::pg {

inline constexpr size_t kPageSize = 8192;
inline constexpr uint32_t kRelSegBlocks = 131072;  // blocks in a 1 GiB relation segment

// The checksum PostgreSQL stores in pd_checksum for `page` (8192 bytes) at block `blkno`.
uint16_t PageChecksum(const uint8_t* page, uint32_t blkno);

enum class PageVerdict { kOk, kNew, kSkippedLsn, kBad };
// Verifies one page: all-zero pages are new; pages whose LSN is at or past `start_lsn` are
// being written during the backup and are skipped (WAL replay rewrites them).
PageVerdict VerifyPage(const uint8_t* page, uint32_t blkno, uint64_t start_lsn,
                       uint16_t* expected = nullptr, uint16_t* found = nullptr);

// True for files whose pages carry checksums: base/<db>/<relfilenode>[_fsm|_vm][.N],
// global/<relfilenode>..., and the same below pg_tblspc. `rel_path` is relative to the data
// directory or tablespace root. `segno` gets the .N suffix (0 if none).
bool IsRelationFile(const std::string& rel_path, uint32_t* segno = nullptr);

}  // namespace lb::pg
