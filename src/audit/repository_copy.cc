#include "audit/repository_copy.h"

#include <algorithm>
#include <cstdlib>
#include <vector>

namespace lb::audit {

std::string CopyName(std::string_view log_id, uint64_t seq) {
  return fmt::format("audit/{}/{:020d}", log_id, seq);
}

Status PutCopy(repo::Repository& repo, const AppendedRecord& rec) {
  const std::string name = CopyName(rec.log_id, rec.seq);
  // Records are small and alike; level 3 roughly halves them.
  Status s = repo.PutNamed(name, AsBytes(rec.line), 3, /*exclusive=*/true);
  if (s.code() != Code::kAlreadyExists) return s;
  auto there = repo.GetNamed(name);
  if (!there.ok()) return there.status();
  if (AsString(*there) == rec.line) return Status::Ok();
  return Status(Code::kCorruption,
                fmt::format("the repository already holds another record {} of audit log {}: "
                            "the log file lost records that the repository has",
                            rec.seq, rec.log_id.substr(0, 8)))
      .WithHint("run 'lifeboat audit verify' with this repository");
}

namespace {

// "audit/<log>/<seq>" -> log and seq; false for other names.
bool ParseCopyName(std::string_view name, std::string& log, uint64_t& seq) {
  constexpr std::string_view kPrefix = "audit/";
  if (!name.starts_with(kPrefix)) return false;
  name.remove_prefix(kPrefix.size());
  const size_t slash = name.find('/');
  if (slash != 32) return false;
  const std::string_view digits = name.substr(slash + 1);
  if (digits.size() != 20 || digits.find_first_not_of("0123456789") != std::string_view::npos)
    return false;
  log = std::string(name.substr(0, slash));
  seq = std::strtoull(std::string(digits).c_str(), nullptr, 10);
  return seq > 0;
}

}  // namespace

Result<CopyComparison> CompareWithCopy(repo::Repository& repo, const VerifyResult& local,
                                       const ChainKey* key) {
  CopyComparison out;
  std::vector<uint64_t> seqs;
  LB_RETURN_IF_ERROR(repo.storage().List("audit/", [&](const storage::ObjectInfo& info) {
    std::string log;
    uint64_t seq = 0;
    if (!ParseCopyName(info.name, log, seq)) return Status::Ok();
    if (log == local.log_id) seqs.push_back(seq);
    else ++out.other_logs[log];
    return Status::Ok();
  }));
  std::sort(seqs.begin(), seqs.end());
  out.copies = seqs.size();
  if (!seqs.empty()) out.last_copy_seq = seqs.back();
  if (local.log_id.empty()) return out;

  for (uint64_t seq : seqs) {
    const std::string name = CopyName(local.log_id, seq);
    LB_ASSIGN_OR_RETURN(Bytes text, repo.GetNamed(name));
    auto copy = ParseRecord(AsString(text));
    bool self_ok = copy.ok() && copy->log == local.log_id && copy->seq == seq;
    if (self_ok && copy->alg == kAlgSha256) self_ok = RecordHash(copy->record, nullptr) == copy->hash;
    if (self_ok && copy->alg == kAlgHmac && key && key->id == copy->key_id)
      self_ok = RecordHash(copy->record, key) == copy->hash;
    if (!self_ok)
      return Err(Code::kCorruption, "the repository copy '{}' is not a valid record", name);
    auto it = local.hashes.find(seq);
    if (it == local.hashes.end()) {
      if (seq > local.last_seq) {
        out.problem = Problem{ProblemKind::kTruncated, 0, seq,
                              fmt::format("log truncated: the repository copy has records up to "
                                          "{} but the file ends at {}",
                                          out.last_copy_seq, local.last_seq)};
      } else {
        out.problem = Problem{ProblemKind::kRemoved, 0, seq,
                              fmt::format("record {} is in the repository copy but not in the "
                                          "file: it was removed",
                                          seq)};
      }
      break;
    }
    if (it->second != copy->hash) {
      out.problem = Problem{ProblemKind::kDiffersFromCopy, 0, seq,
                            fmt::format("record {} differs from its repository copy: the record "
                                        "in the file was replaced or rewritten",
                                        seq)};
      break;
    }
  }
  for (const auto& [seq, hash] : local.hashes) {
    if (std::binary_search(seqs.begin(), seqs.end(), seq)) continue;
    if (out.not_copied++ == 0) out.first_not_copied = seq;
  }
  return out;
}

}  // namespace lb::audit
