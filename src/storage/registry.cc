// OpenStorage: the one place that maps a repository url to its driver.

#include <optional>
#include <string>
#include <string_view>

#include "storage/memory_storage.h"
#include "storage/posix_storage.h"
#include "storage/s3_options.h"
#include "storage/s3_storage.h"
#include "storage/storage.h"

namespace lb::storage {
namespace {

// The url's scheme (RFC 3986: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) before ':'), or
// nullopt for a plain path. "/a:b" and "./a:b" are paths: a scheme never contains '/'.
std::optional<std::string_view> SchemeOf(std::string_view url) {
  const size_t colon = url.find(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  auto is_alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  if (!is_alpha(url[0])) return std::nullopt;
  for (char c : url.substr(1, colon - 1)) {
    if (!is_alpha(c) && !(c >= '0' && c <= '9') && c != '+' && c != '-' && c != '.') {
      return std::nullopt;
    }
  }
  return url.substr(0, colon);
}

// Decodes %XX escapes of a file url's path ("file:///srv/my%20repo").
Result<std::string> PercentDecode(std::string_view url, std::string_view path) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < path.size(); ++i) {
    if (path[i] != '%') {
      out.push_back(path[i]);
      continue;
    }
    if (i + 2 >= path.size() || hex(path[i + 1]) < 0 || hex(path[i + 2]) < 0) {
      return Err(Code::kInvalidArgument, "repository url '{}': bad %-escape", url);
    }
    out.push_back(static_cast<char>(hex(path[i + 1]) * 16 + hex(path[i + 2])));
    i += 2;
  }
  return out;
}

Result<std::unique_ptr<Storage>> OpenPosix(std::string root, bool create) {
  LB_ASSIGN_OR_RETURN(std::unique_ptr<PosixStorage> posix,
                      PosixStorage::Open(std::move(root), create));
  return std::unique_ptr<Storage>(std::move(posix));
}

}  // namespace

Result<std::unique_ptr<Storage>> OpenStorage(std::string_view url, const OpenOptions& open) {
  const bool create = open.create;
  if (url.empty()) return Err(Code::kInvalidArgument, "repository url is empty");

  const std::optional<std::string_view> scheme = SchemeOf(url);
  if (!scheme) return OpenPosix(std::string(url), create);

  if (*scheme == "mem") {
    const std::string_view name = url.substr(4);
    if (name.empty()) {
      return Err(Code::kInvalidArgument, "repository url '{}': memory storage needs a name", url);
    }
    return std::unique_ptr<Storage>(MemoryStorage::OpenShared(name));
  }
  if (*scheme == "file") {
    constexpr std::string_view kFilePrefix = "file://";
    if (!url.starts_with(kFilePrefix) || url.size() == kFilePrefix.size() ||
        url[kFilePrefix.size()] != '/') {
      return Status(Code::kInvalidArgument,
                    fmt::format("repository url '{}' is not a local file url", url))
          .WithHint("write file:///absolute/path, or give the path itself");
    }
    LB_ASSIGN_OR_RETURN(std::string path, PercentDecode(url, url.substr(kFilePrefix.size())));
    return OpenPosix(std::move(path), create);
  }
  if (*scheme == "s3") {
    // `create` makes no bucket: buckets carry policy (region, versioning, lifecycle, access)
    // that belongs to whoever administers the account, so a missing one is an error that
    // says how to create it.
    LB_ASSIGN_OR_RETURN(S3Options options, S3OptionsFromUrl(url));
    if (open.has_fallback) UseFallbackRetryPolicy(options.retry);
    LB_ASSIGN_OR_RETURN(std::unique_ptr<S3Storage> s3, S3Storage::Open(std::move(options)));
    return std::unique_ptr<Storage>(std::move(s3));
  }
  return Status(Code::kInvalidArgument,
                fmt::format("repository url '{}': unknown scheme '{}'", url, *scheme))
      .WithHint(
          "use a path, file:///path, s3://bucket/prefix or mem:NAME; write a relative path "
          "containing ':' "
          "as ./PATH");
}

}  // namespace lb::storage
