// The object-name rules of storage.h, checked in one place so every driver rejects the same
// names (a name the memory store accepts in tests must also work on posix and s3).
#pragma once

#include <string_view>

#include "util/status.h"

namespace lb::storage {

// Components starting with this are reserved for drivers' temporary files (posix writes
// ".tmp-XXXX" next to the object, then renames it), so no object may use it.
inline constexpr std::string_view kTempPrefix = ".tmp-";

// OK when `name` is a valid object name: not empty, no leading or trailing '/', no empty,
// "." or ".." component, no NUL byte, no component starting with kTempPrefix.
// kInvalidArgument naming the rule it breaks otherwise.
Status ValidateObjectName(std::string_view name);

// OK when `prefix` may be passed to Storage::List: empty, or a string whose complete
// components (those followed by '/') obey the object-name rules and whose last, possibly
// partial, component contains no NUL and does not start with '/'.
// kInvalidArgument otherwise.
Status ValidateListPrefix(std::string_view prefix);

}  // namespace lb::storage
