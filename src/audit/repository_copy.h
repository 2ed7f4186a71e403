// The audit log's copy in a repository: every record, as written to the file, stored sealed
// under "audit/<log id>/<seq>" (docs/repository-format.md, 13), and the comparison of a
// local log with that copy, which finds what the file alone cannot show: a removed tail.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "audit/audit_log.h"
#include "repo/repository.h"

namespace lb::audit {

// "audit/<log id>/<seq as 20 decimal digits>": names sort in record order.
std::string CopyName(std::string_view log_id, uint64_t seq);

// Stores the record under CopyName, exclusively. The same bytes already there are success (a
// retry). Other bytes under the name are kCorruption: this log's file lost records that the
// repository has (it was truncated or put back from an old copy), and its seq numbers are
// being reused. Storage errors come back with context. Needs no lock: names are unique, and
// prune and forget never remove audit objects.
Status PutCopy(repo::Repository& repo, const AppendedRecord& rec);

struct CopyComparison {
  uint64_t copies = 0;         // records of this log in the repository
  uint64_t last_copy_seq = 0;  // the highest of them
  // The first disagreement: kTruncated (the repository has records after the file's end),
  // kRemoved (a copy whose record is missing from the file) or kDiffersFromCopy.
  std::optional<Problem> problem;
  uint64_t not_copied = 0;        // records of the file with no copy (copying failed, or init)
  uint64_t first_not_copied = 0;  // the lowest such seq
  std::map<std::string, uint64_t> other_logs;  // log id -> records, of other logs
};

// Compares the records of `local` (VerifyLog's result for the file) with the repository's
// copy of the same log id: each copy is read, checked against its own hash (when `key` is
// given or the copy is unkeyed) and against the file's record of the same seq. With an empty
// local log id only `other_logs` is filled. Errors: storage errors, kCorruption for a copy
// that does not open.
Result<CopyComparison> CompareWithCopy(repo::Repository& repo, const VerifyResult& local,
                                       const ChainKey* key = nullptr);

}  // namespace lb::audit
