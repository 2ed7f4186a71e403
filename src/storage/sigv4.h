// AWS Signature Version 4 for S3 requests, computed here with OpenSSL (HMAC-SHA256, SHA-256)
// rather than by libcurl, whose CURLOPT_AWS_SIGV4 (7.88) mis-canonicalises encoded paths,
// query strings and continuation tokens. Spec: the S3 API reference, "Authenticating
// Requests (AWS Signature Version 4)", header-based authentication.
#pragma once

#include <chrono>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/bytes.h"

namespace lb::storage {

// The hex SHA-256 of the empty string: the payload hash of every request without a body.
inline constexpr std::string_view kEmptySha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

// An access key. The secret and the session token are never printed (not in messages, logs
// or Location()); the destructor wipes them.
struct AwsCredentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // empty unless temporary credentials

  AwsCredentials() = default;
  AwsCredentials(std::string id, std::string secret, std::string token = {})
      : access_key_id(std::move(id)),
        secret_access_key(std::move(secret)),
        session_token(std::move(token)) {}
  AwsCredentials(const AwsCredentials&) = default;
  AwsCredentials& operator=(const AwsCredentials&) = default;
  ~AwsCredentials();

  bool empty() const { return access_key_id.empty() || secret_access_key.empty(); }
};

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

// Percent-encodes `s` the SigV4 way: the RFC 3986 unreserved characters (A-Z a-z 0-9 - . _ ~)
// stay, every other byte becomes %XX with upper-case hex (a space is %20, never '+').
// With `keep_slash`, '/' stays too (object keys in paths); query names and values encode it.
std::string UriEncode(std::string_view s, bool keep_slash);

// The canonical query string of unencoded (name, value) pairs: each encoded with
// UriEncode(.., false), sorted by encoded name then encoded value, joined as "n=v&n2=" ('='
// also for empty values). This is also the query string the request must carry.
std::string CanonicalQueryString(std::span<const std::pair<std::string, std::string>> params);

// Lower-case hex SHA-256 of `data`.
std::string Sha256Hex(ByteSpan data);

// "20130524T000000Z" for `t` in UTC.
std::string AmzDate(std::chrono::system_clock::time_point t);

struct SigningInput {
  std::string_view method = {};           // "GET", "PUT", ...
  std::string_view canonical_uri = {};    // encoded path exactly as sent, e.g. "/bucket/a%20b"
  std::string_view canonical_query = {};  // from CanonicalQueryString, exactly as sent
  // Every header to sign, including host and x-amz-date; names in any case (they are
  // lower-cased), values trimmed with inner runs of spaces collapsed, as the spec says.
  HttpHeaders headers = {};
  std::string_view payload_sha256 = {};  // hex SHA-256 of the body (kEmptySha256 for none)
  std::string_view amz_date = {};        // the x-amz-date value, "YYYYMMDDTHHMMSSZ"
  std::string_view region = {};          // "us-east-1"
  std::string_view service = "s3";
};

// The steps of the signature, exposed for tests against the published examples.
std::string CanonicalRequest(const SigningInput& in);
std::string SignedHeaderNames(const SigningInput& in);  // "host;x-amz-content-sha256;..."
std::string StringToSign(const SigningInput& in);
std::string Signature(const SigningInput& in, std::string_view secret_access_key);

// The Authorization header value:
// "AWS4-HMAC-SHA256 Credential=ID/DATE/REGION/SERVICE/aws4_request,SignedHeaders=...,
// Signature=...". Contains the access key id, never the secret.
std::string AuthorizationHeader(const SigningInput& in, const AwsCredentials& credentials);

}  // namespace lb::storage
