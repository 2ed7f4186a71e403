#include "storage/fault_storage.h"

#include <algorithm>
#include <numeric>
#include <thread>

namespace lb::storage {

std::string_view StorageOpName(StorageOp op) {
  switch (op) {
    case StorageOp::kPut:
      return "put";
    case StorageOp::kGet:
      return "get";
    case StorageOp::kGetRange:
      return "get range";
    case StorageOp::kStat:
      return "stat";
    case StorageOp::kList:
      return "list";
    case StorageOp::kRemove:
      return "remove";
  }
  return "unknown";
}

Status FaultStorage::AddRule(FaultRule rule) {
  if (rule.nth == 0) return Err(Code::kInvalidArgument, "fault rule: nth counts from 1");
  if (rule.kind == FaultKind::kTornPut && rule.op != StorageOp::kPut) {
    return Err(Code::kInvalidArgument, "fault rule: a torn put needs op = kPut");
  }
  if (rule.kind == FaultKind::kDrop && rule.op != StorageOp::kPut &&
      rule.op != StorageOp::kRemove) {
    return Err(Code::kInvalidArgument, "fault rule: a drop needs op = kPut or kRemove");
  }
  if ((rule.kind == FaultKind::kError || rule.kind == FaultKind::kTornPut) &&
      rule.code == Code::kOk) {
    return Err(Code::kInvalidArgument, "fault rule: an injected error needs a non-ok code");
  }
  std::lock_guard lock(mu_);
  rules_.push_back({.rule = std::move(rule)});
  return Status::Ok();
}

void FaultStorage::ClearRules() {
  std::lock_guard lock(mu_);
  rules_.clear();
}

uint64_t FaultStorage::calls(StorageOp op) const {
  std::lock_guard lock(mu_);
  return calls_[static_cast<size_t>(op)];
}

uint64_t FaultStorage::total_calls() const {
  std::lock_guard lock(mu_);
  return std::accumulate(calls_.begin(), calls_.end(), uint64_t{0});
}

uint64_t FaultStorage::faults_injected() const {
  std::lock_guard lock(mu_);
  return faults_;
}

std::optional<FaultRule> FaultStorage::Count(StorageOp op, std::string_view name) {
  std::lock_guard lock(mu_);
  ++calls_[static_cast<size_t>(op)];
  std::optional<FaultRule> firing;
  for (ArmedRule& armed : rules_) {
    const FaultRule& rule = armed.rule;
    if (rule.op && *rule.op != op) continue;
    if (!name.starts_with(rule.name_prefix)) continue;
    const uint64_t n = ++armed.counted;
    const bool in_window = n >= rule.nth && (rule.times == 0 || n - rule.nth < rule.times);
    if (in_window && !firing) firing = rule;
  }
  if (firing) ++faults_;
  return firing;
}

Status FaultStorage::Injected(const FaultRule& rule, StorageOp op, std::string_view name) {
  return Status(rule.code, fmt::format("injected fault: {} '{}'", StorageOpName(op), name),
                rule.retryable);
}

// Each operation below: count, then act on the firing rule outside the lock. kTornPut and
// kDrop only reach the operations AddRule allowed them for.

Status FaultStorage::Put(std::string_view name, ByteSpan data, PutOptions opts) {
  const std::optional<FaultRule> rule = Count(StorageOp::kPut, name);
  if (rule) {
    switch (rule->kind) {
      case FaultKind::kError:
        return Injected(*rule, StorageOp::kPut, name);
      case FaultKind::kTornPut: {
        const ByteSpan head = data.first(std::min(rule->torn_bytes, data.size()));
        LB_RETURN_IF_ERROR(inner_.Put(name, head, opts));
        return Injected(*rule, StorageOp::kPut, name);
      }
      case FaultKind::kDelay:
        std::this_thread::sleep_for(rule->delay);
        break;
      case FaultKind::kDrop:
        return Status::Ok();
    }
  }
  return inner_.Put(name, data, opts);
}

Result<Bytes> FaultStorage::Get(std::string_view name) {
  const std::optional<FaultRule> rule = Count(StorageOp::kGet, name);
  if (rule && rule->kind == FaultKind::kError) return Injected(*rule, StorageOp::kGet, name);
  if (rule && rule->kind == FaultKind::kDelay) std::this_thread::sleep_for(rule->delay);
  return inner_.Get(name);
}

Result<Bytes> FaultStorage::GetRange(std::string_view name, uint64_t offset, uint64_t length) {
  const std::optional<FaultRule> rule = Count(StorageOp::kGetRange, name);
  if (rule && rule->kind == FaultKind::kError) {
    return Injected(*rule, StorageOp::kGetRange, name);
  }
  if (rule && rule->kind == FaultKind::kDelay) std::this_thread::sleep_for(rule->delay);
  return inner_.GetRange(name, offset, length);
}

Result<ObjectInfo> FaultStorage::Stat(std::string_view name) {
  const std::optional<FaultRule> rule = Count(StorageOp::kStat, name);
  if (rule && rule->kind == FaultKind::kError) return Injected(*rule, StorageOp::kStat, name);
  if (rule && rule->kind == FaultKind::kDelay) std::this_thread::sleep_for(rule->delay);
  return inner_.Stat(name);
}

Status FaultStorage::List(std::string_view prefix,
                          const std::function<Status(const ObjectInfo&)>& fn) {
  const std::optional<FaultRule> rule = Count(StorageOp::kList, prefix);
  if (rule && rule->kind == FaultKind::kError) return Injected(*rule, StorageOp::kList, prefix);
  if (rule && rule->kind == FaultKind::kDelay) std::this_thread::sleep_for(rule->delay);
  return inner_.List(prefix, fn);
}

Status FaultStorage::Remove(std::string_view name) {
  const std::optional<FaultRule> rule = Count(StorageOp::kRemove, name);
  if (rule) {
    switch (rule->kind) {
      case FaultKind::kError:
        return Injected(*rule, StorageOp::kRemove, name);
      case FaultKind::kDelay:
        std::this_thread::sleep_for(rule->delay);
        break;
      case FaultKind::kDrop:
        return Status::Ok();
      case FaultKind::kTornPut:
        break;  // rejected by AddRule for Remove
    }
  }
  return inner_.Remove(name);
}

}  // namespace lb::storage
