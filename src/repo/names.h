// Object names inside a repository (docs/repository-format.md, "Layout").
#pragma once

#include <string>
#include <string_view>

#include "crypto/crypto.h"

namespace lb::repo {

inline constexpr std::string_view kConfigName = "config";
inline std::string KeyName(std::string_view id) { return "keys/" + std::string(id); }
inline std::string PackName(const crypto::Id& id) {
  std::string h = id.Hex();
  return "data/" + h.substr(0, 2) + "/" + h;
}
inline std::string IndexName(const crypto::Id& id) { return "index/" + id.Hex(); }
inline std::string SnapshotName(const crypto::Id& id) { return "snapshots/" + id.Hex(); }
inline std::string LockName(std::string_view id) { return "locks/" + std::string(id); }

// Extracts the id from the last path component; false when it is not 64 hex digits.
bool IdFromName(std::string_view name, crypto::Id& out);

// Current UTC time as RFC 3339 with nanoseconds ("2026-11-24T20:17:16.123456789Z").
std::string NowRfc3339();
// Parses the format above (fraction optional); false on malformed input.
bool ParseRfc3339(std::string_view s, int64_t& unix_ns);
std::string FormatRfc3339(int64_t unix_ns);
// Parses an optional ".fffffffff" at text[pos] (any number of digits, nanoseconds kept) into
// `ns`; returns the position after it.
size_t ParseFraction(std::string_view text, size_t pos, int64_t& ns);

}  // namespace lb::repo
