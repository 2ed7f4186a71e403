// Status and Result<T>: how every fallible function in lifeboat reports failure.
// No exception crosses a module boundary; each code maps once to a stable exit code.
#pragma once

#include <fmt/core.h>

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace lb {

enum class Code {
  kOk = 0,
  kNotFound,
  kAlreadyExists,
  kCorruption,
  kInvalidArgument,
  kFailedPrecondition,
  kPermissionDenied,
  kIo,
  kUnavailable,
  kCancelled,
  kInternal,
  kWrongKey,        // no key in the repository opens with the given passphrase
  kIncomplete,      // the operation finished but some items were not processed (exit 3)
};

std::string_view CodeName(Code code);

// Exit codes are part of the CLI contract (docs/user-guide.md, "Exit codes").
int ExitCodeFor(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message, bool retryable = false)
      : code_(code), message_(std::move(message)), retryable_(retryable) {}

  static Status Ok() { return {}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  const std::string& hint() const { return hint_; }
  bool retryable() const { return retryable_; }

  // Returns a copy with "context: " prepended to the message.
  Status WithContext(std::string_view context) const;
  Status WithHint(std::string hint) const {
    Status s = *this;
    s.hint_ = std::move(hint);
    return s;
  }
  // "corruption: pack 'ab12': ..." style; hint on its own line if present.
  std::string ToString() const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
  std::string hint_;
  bool retryable_ = false;
};

template <typename... Args>
Status Err(Code code, fmt::format_string<Args...> f, Args&&... args) {
  return Status(code, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
Status ErrRetryable(Code code, fmt::format_string<Args...> f, Args&&... args) {
  return Status(code, fmt::format(f, std::forward<Args>(args)...), true);
}
// An I/O error from errno, retryable when the errno says the condition may pass.
Status ErrnoStatus(int err, std::string_view what);

// Result<T>: a value or a non-ok Status (shaped like std::expected<T, Status>).
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!std::get<Status>(v_).ok());
  }

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Status& status() const {
    static const Status kOkStatus;
    return ok() ? kOkStatus : std::get<1>(v_);
  }

 private:
  std::variant<T, Status> v_;
};

}  // namespace lb

#define LB_CONCAT_INNER(a, b) a##b
#define LB_CONCAT(a, b) LB_CONCAT_INNER(a, b)

// Returns the status from the enclosing function if it is not ok.
#define LB_RETURN_IF_ERROR(expr)          \
  do {                                    \
    ::lb::Status lb_status_ = (expr);     \
    if (!lb_status_.ok()) return lb_status_; \
  } while (0)

// Declares `lhs` from a Result expression or returns its status.
#define LB_ASSIGN_OR_RETURN(lhs, expr) \
  LB_ASSIGN_OR_RETURN_IMPL(LB_CONCAT(lb_result_, __LINE__), lhs, expr)
#define LB_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return tmp.status();            \
  lhs = std::move(tmp).value()
