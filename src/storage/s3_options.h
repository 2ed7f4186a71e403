// How an s3 repository is reached: bucket, prefix, endpoint, region, credentials and tuning,
// as a plain struct (a plan file may fill it directly) and as resolved from an
// "s3://bucket/prefix?option=value" url plus the environment and the AWS shared config files,
// the way the AWS tools resolve them. Syntax: docs/user-guide.md, "S3 repositories".
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "storage/http_client.h"
#include "storage/sigv4.h"
#include "util/status.h"

namespace lb::storage {

enum class S3AddressingStyle {
  kAuto,         // virtual-host for AWS endpoints and DNS-safe bucket names, else path
  kPath,         // https://endpoint/bucket/key
  kVirtualHost,  // https://bucket.endpoint/key
};

enum class S3ConditionalPut {
  kAuto,  // trust AWS endpoints; elsewhere probe once, at the first exclusive put
  kOn,    // the server honours If-None-Match: * on PUT
  kOff,   // it does not: exclusive puts are HEAD then PUT (racy)
};

struct S3RetryPolicy {
  int max_attempts = 8;  // attempts per request, the first included
  // Full jitter: before attempt n+1 sleep uniformly in [0, min(max_delay, base_delay * 2^n)).
  std::chrono::milliseconds base_delay{200};
  std::chrono::milliseconds max_delay{20'000};
  // No new attempt starts when this much time has passed since the first one began.
  std::chrono::milliseconds max_total{300'000};
  // Until the server has given any answer to any request of this S3Storage, a request gets
  // these instead: at most unreached_max_attempts attempts, none started after
  // unreached_max_total, each connection attempt cut after unreached_connect_timeout. The
  // defaults change nothing; a caller with another repository to turn to sets small values
  // (FallbackRetryPolicy), so that a server that is gone costs seconds, not minutes. Once the
  // server has answered, a failure is a blip worth the full budget above.
  int unreached_max_attempts = 8;
  std::chrono::milliseconds unreached_max_total{300'000};
  std::chrono::milliseconds unreached_connect_timeout{10'000};
};

// The budget for a repository that has a fallback (several --repo): a server that answers
// nothing is given up after 3 attempts, none started after 2 s, 3 s to connect each.
void UseFallbackRetryPolicy(S3RetryPolicy& policy);

struct S3Options {
  std::string bucket = {};
  std::string prefix = {};    // key prefix of the repository, without leading or trailing '/'
  std::string endpoint = {};  // "https://host[:port]"; empty: https://s3.REGION.amazonaws.com
  std::string region = "us-east-1";
  S3AddressingStyle style = S3AddressingStyle::kAuto;
  bool allow_http = false;  // plain http to a host that is not loopback
  AwsCredentials credentials = {};
  // Where the credentials came from, for messages ("environment", "profile 'x' in FILE").
  std::string credentials_source = "options";
  // x-amz-storage-class of new objects; empty: the bucket's default.
  std::string storage_class = {};
  std::string sse = {};             // x-amz-server-side-encryption: "", "AES256" or "aws:kms"
  std::string sse_kms_key_id = {};  // with sse = "aws:kms"; empty: the account's default key
  S3ConditionalPut conditional_put = S3ConditionalPut::kAuto;
  // Non-exclusive objects larger than this go up in parts (exclusive ones never do: a single
  // PUT is the only atomic create-if-absent).
  uint64_t multipart_threshold = 16ull << 20;
  uint64_t part_size = 8ull << 20;  // S3 wants at least 5 MiB for every part but the last
  int upload_concurrency = 4;       // parts of one object in flight at once
  int max_keys = 1000;              // listing page size
  S3RetryPolicy retry = {};
  HttpClientOptions http = {};  // timeouts; http.ca_file is the TLS trust anchor
};

// Reads an environment variable; nullopt when unset. Empty values count as unset.
using EnvLookup = std::function<std::optional<std::string>(std::string_view)>;
// The process environment.
std::optional<std::string> ProcessEnv(std::string_view name);

// Resolves "s3://bucket[/prefix][?option=value&...]". Precedence, as in the AWS CLI:
// url options, then AWS_* variables, then the profile in the shared config and credentials
// files, then defaults. Credentials are never taken from the url. Reads files, makes no
// request. kInvalidArgument naming the problem for a malformed url, an unknown option, a
// missing profile or missing credentials (hint: which variables to set).
Result<S3Options> S3OptionsFromUrl(std::string_view url, const EnvLookup& env = ProcessEnv);

// Checks the options of an S3Options built by hand (S3OptionsFromUrl's result passes):
// bucket and prefix shape, endpoint scheme and host, http only to loopback unless allowed,
// sizes and counts in range. kInvalidArgument otherwise.
Status ValidateS3Options(const S3Options& options);

// An endpoint url taken apart: "http://127.0.0.1:7480" has scheme "http", host "127.0.0.1"
// and authority "127.0.0.1:7480" (what the Host header carries).
struct S3Endpoint {
  std::string scheme;
  std::string host;       // without port; an IPv6 address keeps its brackets
  std::string authority;  // host[:port] exactly as written
  bool loopback = false;  // localhost, 127.0.0.0/8 or [::1]
  bool aws = false;       // a host under amazonaws.com
};
// kInvalidArgument unless `url` is http(s)://host[:port] with at most a trailing '/'.
Result<S3Endpoint> ParseS3Endpoint(std::string_view url);

// "s3://bucket/prefix" (or "s3://bucket"): the repository's location for messages.
std::string S3Location(const S3Options& options);

}  // namespace lb::storage
