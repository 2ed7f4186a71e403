#include "storage/object_name.h"

namespace lb::storage {
namespace {

// Checks one complete component; returns the rule it breaks, or an empty view when fine.
std::string_view ComponentProblem(std::string_view component) {
  if (component.empty()) return "empty component";
  if (component == "." || component == "..") return "'.' or '..' component";
  if (component.starts_with(kTempPrefix)) return "component uses the reserved '.tmp-' prefix";
  return {};
}

}  // namespace

Status ValidateObjectName(std::string_view name) {
  if (name.empty()) return Err(Code::kInvalidArgument, "invalid object name '': empty");
  if (name.find('\0') != std::string_view::npos) {
    return Err(Code::kInvalidArgument, "invalid object name '{}': contains a NUL byte", name);
  }
  if (name.front() == '/') {
    return Err(Code::kInvalidArgument, "invalid object name '{}': starts with '/'", name);
  }
  size_t start = 0;
  while (true) {
    const size_t slash = name.find('/', start);
    const std::string_view component = name.substr(start, slash - start);
    const std::string_view problem = ComponentProblem(component);
    if (!problem.empty()) {
      return Err(Code::kInvalidArgument, "invalid object name '{}': {}", name, problem);
    }
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return Status::Ok();
}

Status ValidateListPrefix(std::string_view prefix) {
  if (prefix.empty()) return Status::Ok();
  if (prefix.find('\0') != std::string_view::npos) {
    return Err(Code::kInvalidArgument, "invalid list prefix '{}': contains a NUL byte", prefix);
  }
  if (prefix.front() == '/') {
    return Err(Code::kInvalidArgument, "invalid list prefix '{}': starts with '/'", prefix);
  }
  size_t start = 0;
  for (size_t slash = prefix.find('/'); slash != std::string_view::npos;
       slash = prefix.find('/', start)) {
    const std::string_view problem = ComponentProblem(prefix.substr(start, slash - start));
    if (!problem.empty()) {
      return Err(Code::kInvalidArgument, "invalid list prefix '{}': {}", prefix, problem);
    }
    start = slash + 1;
  }
  return Status::Ok();
}

}  // namespace lb::storage
