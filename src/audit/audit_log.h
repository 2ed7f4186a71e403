// The audit trail: an append-only, hash-chained file of JSON lines, one record per operation
// lifeboat carried out, and its verification. The record format and the chain are specified
// in docs/repository-format.md, section 13; docs/user-guide.md, "Audit trail", is the guide.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/crypto.h"
#include "util/status.h"

namespace lb::audit {

inline constexpr int kRecordVersion = 1;
inline constexpr std::string_view kAlgSha256 = "sha256";
inline constexpr std::string_view kAlgHmac = "hmac-sha256";
// A record's command line is cut (with a note of how many arguments were left out) so that a
// record stays below this size: appends read the last record back, and must find it quickly.
inline constexpr size_t kMaxRecordBytes = 64 * 1024;

// The key of a keyed chain (HMAC-SHA256 instead of SHA-256), so that whoever can edit the
// file but does not hold the key cannot compute a valid chain.
struct ChainKey {
  crypto::Key key;
  std::string id;  // 16 hex digits, HMAC(key, "lifeboat-audit-key-id"): names the key

  // From a key file's contents (one trailing newline removed): 64 hex digits are the key;
  // any other text of at least 16 bytes is hashed (SHA-256) into one. kInvalidArgument when
  // shorter.
  static Result<ChainKey> FromContents(std::string_view contents);
};
// Reads a key file. Errors of reading it (kNotFound, kPermissionDenied, kIo) or FromContents.
Result<ChainKey> LoadChainKey(const std::string& path);

// The default place of the log: $XDG_STATE_HOME/lifeboat/audit.log, else
// $HOME/.local/state/lifeboat/audit.log, else the same under the account's home directory;
// empty when none of those is known.
std::string DefaultLogPath();

// What one operation did. The log adds the log id, seq, prev and hash.
struct Event {
  int64_t time_ns = 0;  // when the operation started, Unix time in ns
  std::string user;     // the effective user's name (the uid when it has none)
  int64_t uid = -1;
  std::string host;
  int64_t pid = 0;
  std::string operation;                  // "backup files", "pg wal-get", "daemon start", ...
  std::vector<std::string> argv;          // already redacted (audit/redact.h)
  std::vector<std::string> repositories;  // already without credentials
  int exit_code = 0;
  std::string result;  // "ok", or the first line of the error
  int64_t duration_ms = 0;
};
// Sets user, uid, host and pid from this process.
void SetProcessFields(Event& e);

// A record as appended.
struct AppendedRecord {
  std::string log_id;  // 32 hex digits, random, the same in every record of one log
  uint64_t seq = 0;    // 1, 2, 3, ... within the log
  std::string hash;    // 64 hex digits
  std::string line;    // the record's JSON text as written, without the newline
  std::string repair;  // what was done to a damaged end of the file first; usually empty
};

// The members of a record line that the chain depends on.
struct ChainFields {
  nlohmann::json record;  // the whole record
  std::string log;        // 32 hex digits
  uint64_t seq = 0;
  std::string prev, hash, alg, key_id;
};
// Parses one line and checks the chain members for presence and type (not the hash).
// kCorruption saying what is wrong: "not JSON", "no 'seq'", ...
Result<ChainFields> ParseRecord(std::string_view line);

// The hash of a record: over its canonical form (every member except "hash", as
// nlohmann::json::dump() writes it: keys sorted, no white space), SHA-256 or, with `key`,
// HMAC-SHA256. 64 hex digits.
std::string RecordHash(const nlohmann::json& record, const ChainKey* key);
// The "prev" of a log's first record: hex SHA-256 of "lifeboat-audit-genesis\n" + log id.
std::string GenesisHash(std::string_view log_id);

// An audit log open for appending. Thread-safe, and any number of processes may append to
// the same file at once: each append holds an exclusive flock(2) on the file while it reads
// the last record and writes its own.
class AuditLog {
 public:
  // Opens `path` for appending, creating the file (mode 0600) and missing directories (0700).
  // Reads nothing yet. Errors: ErrnoStatus of mkdir/open (kPermissionDenied, kNotFound,
  // kIo); kInvalidArgument for an empty path.
  static Result<std::unique_ptr<AuditLog>> Open(const std::string& path,
                                                std::optional<ChainKey> key = std::nullopt);
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Appends the record of `e`, chained to the last complete record, and fsyncs it. A final
  // line without its newline (a write cut off by a crash) is dealt with first, under the
  // same lock: when it is a whole record that chains, its newline is added; otherwise it is
  // truncated away. Either way the new record says so in "repair". When the last line is
  // not a valid record the record still goes in, after it, and "repair" says that too.
  // Errors: kIo / kPermissionDenied / kNotFound (the file was removed meanwhile is not
  // noticed: the record goes into the unlinked file) from the system calls.
  Result<AppendedRecord> Append(const Event& e);

  const std::string& path() const { return path_; }

 private:
  AuditLog(std::string path, int fd, std::optional<ChainKey> key)
      : path_(std::move(path)), fd_(fd), key_(std::move(key)) {}
  Result<AppendedRecord> AppendLocked(const Event& e);

  std::string path_;
  int fd_;  // O_APPEND; appends through it are guarded by mu_
  std::optional<ChainKey> key_;
  std::mutex mu_;  // one append at a time within the process; flock orders the processes
};

enum class ProblemKind {
  kNotARecord,       // a line that is not a well-formed record
  kEdited,           // a record whose hash does not match its content
  kRemoved,          // a gap in the sequence that no later line fills
  kReordered,        // a record before one it should follow
  kBrokenLink,       // prev does not match the record before
  kForeignLog,       // a record of another log
  kUnkeyed,          // a key was given, but the record is a plain SHA-256 one
  kWrongKey,         // the record was keyed with another key
  kTruncated,        // the repository copy has records the file does not
  kDiffersFromCopy,  // a record differs from its repository copy
  kIncomplete,       // a final line without its newline that is no whole record
};

struct Problem {
  ProblemKind kind = ProblemKind::kNotARecord;
  uint64_t line = 0;  // 1-based line of the file; 0 when not about one line
  uint64_t seq = 0;
  std::string message;  // says where and what, e.g. "record 18 follows record 16: ..."
};

struct VerifyResult {
  std::string log_id;
  uint64_t lines = 0;    // complete lines read
  uint64_t records = 0;  // well-formed records among them
  uint64_t last_seq = 0;  // highest seq of a well-formed record
  std::string last_hash;  // hash of the last record of an intact log
  bool keyed = false;     // some record is keyed
  // Keyed records were found but no key was given: their hashes could not be checked (the
  // chain's order and links were).
  bool key_needed = false;
  std::optional<Problem> problem;     // the first sign of tampering; none when intact
  std::optional<Problem> incomplete;  // a cut-off final line (kIncomplete)
  std::string note;                   // e.g. "the final record has no newline"
  // seq -> hash of every well-formed record, also after a problem (for CompareWithCopy).
  std::map<uint64_t, std::string> hashes;
};

// Walks the whole chain of the log at `path` and reports the first problem precisely (which
// record, which line, what happened). `key`: the chain key when the log is keyed. Reads the
// file as it was when called (its size is taken under a shared flock, so an append in
// progress is not mistaken for a cut-off record). Errors: kNotFound when the file does not
// exist; kIo on read errors. Tampering is not an error: it is `problem`.
Result<VerifyResult> VerifyLog(const std::string& path, const ChainKey* key = nullptr);

// One line of a log, for display.
struct LogLine {
  uint64_t line = 0;
  std::optional<nlohmann::json> record;  // none when the line is not valid JSON
  std::string text;                      // the raw line
};
// Reads the last `last` lines (0: all) of the log without verifying them. kNotFound, kIo.
Result<std::vector<LogLine>> ReadLog(const std::string& path, size_t last = 0);

}  // namespace lb::audit
