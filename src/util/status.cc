#include "util/status.h"

#include <cerrno>
#include <cstring>

namespace lb {

std::string_view CodeName(Code code) {
  switch (code) {
    case Code::kOk: return "ok";
    case Code::kNotFound: return "not found";
    case Code::kAlreadyExists: return "already exists";
    case Code::kCorruption: return "corruption";
    case Code::kInvalidArgument: return "invalid argument";
    case Code::kFailedPrecondition: return "failed precondition";
    case Code::kPermissionDenied: return "permission denied";
    case Code::kIo: return "i/o error";
    case Code::kUnavailable: return "unavailable";
    case Code::kCancelled: return "cancelled";
    case Code::kInternal: return "internal error";
    case Code::kWrongKey: return "wrong key";
    case Code::kIncomplete: return "incomplete";
  }
  return "unknown";
}

int ExitCodeFor(Code code) {
  switch (code) {
    case Code::kOk: return 0;
    case Code::kInternal: return 1;
    case Code::kInvalidArgument: return 2;
    case Code::kIncomplete: return 3;
    case Code::kWrongKey: return 4;
    case Code::kNotFound: return 5;
    case Code::kCorruption: return 6;
    case Code::kFailedPrecondition: return 7;  // also: locked, not a repository, newer format
    case Code::kAlreadyExists: return 8;
    case Code::kPermissionDenied: return 9;
    case Code::kIo: return 10;
    case Code::kUnavailable: return 11;
    case Code::kCancelled: return 130;
  }
  return 1;
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  Status s = *this;
  s.message_ = fmt::format("{}: {}", context, message_);
  return s;
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  std::string out = message_;
  if (!hint_.empty()) out += "\nhint: " + hint_;
  return out;
}

Status ErrnoStatus(int err, std::string_view what) {
  Code code = Code::kIo;
  bool retry = false;
  switch (err) {
    case ENOENT: code = Code::kNotFound; break;
    case EEXIST: code = Code::kAlreadyExists; break;
    case EACCES:
    case EPERM: code = Code::kPermissionDenied; break;
    case EINTR:
    case EAGAIN:
    case ETIMEDOUT: retry = true; break;
    default: break;
  }
  Status s(code, fmt::format("{}: {}", what, std::strerror(err)), retry);
  if (err == ENOSPC) s = s.WithHint("the disk is full; free space and run the command again");
  return s;
}

}  // namespace lb
