// A Storage decorator for tests that injects failures: fail the Nth call, tear a write,
// delay a call, or drop a write while reporting success.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "storage/storage.h"

namespace lb::storage {

// The operations of Storage, to count calls and to aim a rule at one kind of call.
enum class StorageOp { kPut, kGet, kGetRange, kStat, kList, kRemove };
inline constexpr size_t kStorageOpCount = 6;

// "put", "get", "get range", "stat", "list", "remove".
std::string_view StorageOpName(StorageOp op);

enum class FaultKind {
  kError,    // return Status(code, ..., retryable) without calling the inner storage
  kTornPut,  // Put only: store the first `torn_bytes` bytes under the name, then return the
             // error, as a non-atomic backend torn by a crash would
  kDelay,    // sleep for `delay`, then call the inner storage normally
  kDrop,     // Put or Remove only: return ok without calling the inner storage
};

// One fault. A call "counts" for a rule when it matches `op` and `name_prefix`; the rule
// fires on counted calls number nth .. nth+times-1 (1-based), e.g. the defaults fail only
// the first call of any kind.
struct FaultRule {
  // Every member has a default member initializer: g++ 12 warns (-Wmissing-field-initializers)
  // about members without one that a designated initializer leaves out.
  std::optional<StorageOp> op = std::nullopt;  // count only this op; nullopt counts every call
  std::string name_prefix = {};  // count only names (List: prefixes) starting with this
  uint64_t nth = 1;              // the first counted call that faults; must be >= 1
  uint64_t times = 1;            // how many counted calls fault from the nth on; 0 = all
  FaultKind kind = FaultKind::kError;
  Code code = Code::kIo;               // kError, kTornPut: the code of the returned error
  bool retryable = false;              // kError, kTornPut: the returned error's retryable()
  size_t torn_bytes = 0;               // kTornPut: bytes stored (at most the whole object)
  std::chrono::milliseconds delay{0};  // kDelay
};

// Wraps `inner`, which must outlive this object. With no rules it is transparent.
// Thread safety: all methods, including AddRule and the counters, may be called
// concurrently; each call is counted exactly once, so "the Nth call" is well defined even
// under concurrency (which thread makes it is not).
class FaultStorage final : public Storage {
 public:
  explicit FaultStorage(Storage& inner) : inner_(inner) {}

  // Adds a rule. Every rule counts each call independently; when several fire on one call,
  // the one added first decides what happens. kInvalidArgument for a rule that cannot fire
  // as described: nth == 0, kTornPut without op == kPut, kDrop without op == kPut/kRemove,
  // or kError/kTornPut with code == kOk.
  [[nodiscard]] Status AddRule(FaultRule rule);
  // Removes every rule; call counters keep counting.
  void ClearRules();

  // Calls made through this object (faulted ones included), per operation and in total.
  uint64_t calls(StorageOp op) const;
  uint64_t total_calls() const;
  // How many calls a rule fired on (errors, torn puts, delays and drops alike).
  uint64_t faults_injected() const;

  Status Put(std::string_view name, ByteSpan data, PutOptions opts = {}) override;
  Result<Bytes> Get(std::string_view name) override;
  Result<Bytes> GetRange(std::string_view name, uint64_t offset, uint64_t length) override;
  Result<ObjectInfo> Stat(std::string_view name) override;
  Status List(std::string_view prefix, const std::function<Status(const ObjectInfo&)>& fn) override;
  Status Remove(std::string_view name) override;

  std::string Location() const override { return inner_.Location(); }
  Capabilities caps() const override { return inner_.caps(); }

 private:
  struct ArmedRule {
    FaultRule rule;
    uint64_t counted = 0;  // calls that matched the rule so far
  };

  // Counts the call and returns the rule that fires on it, if any (a copy, so it can be
  // acted on without holding mu_).
  std::optional<FaultRule> Count(StorageOp op, std::string_view name);
  // The error of a firing kError/kTornPut rule.
  static Status Injected(const FaultRule& rule, StorageOp op, std::string_view name);

  Storage& inner_;
  mutable std::mutex mu_;
  // Guarded by mu_: rules_, calls_, faults_.
  std::vector<ArmedRule> rules_;
  std::array<uint64_t, kStorageOpCount> calls_{};
  uint64_t faults_ = 0;
};

}  // namespace lb::storage
