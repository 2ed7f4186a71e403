#include "storage/s3_storage.h"

#include <openssl/evp.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <random>
#include <thread>

#include "storage/object_name.h"
#include "storage/sigv4.h"
#include "util/log.h"

namespace lb::storage {
namespace {

using Clock = std::chrono::steady_clock;

// S3's limits: 10,000 parts per upload, 5 GiB per PUT.
constexpr uint64_t kMaxParts = 10'000;
constexpr uint64_t kMaxSinglePut = 5ull << 30;

bool Ok2xx(long status) { return status >= 200 && status < 300; }

std::mt19937_64& Rng() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng;
}

std::string RandomHex() { return fmt::format("{:016x}", Rng()()); }

std::string Md5Hex(ByteSpan data) {
  std::array<uint8_t, 16> out{};
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_md5(), nullptr) != 1 ||
      len != out.size()) {
    std::abort();
  }
  return HexEncode(out);
}

bool IsMd5Hex(std::string_view s) {
  return s.size() == 32 && s.find_first_not_of("0123456789abcdefABCDEF") == std::string_view::npos;
}

// The form x-amz-content-sha256 takes: 64 lower-case hex digits.
bool IsSha256Hex(std::string_view s) {
  return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

std::string Unquote(std::string_view etag) {
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);
  }
  std::string out(etag);
  for (char& c : out) {
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// Server text for a message: one line, printable, at most 300 bytes.
std::string Clean(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 300)) {
    out.push_back(static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? ' ' : c);
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// Answers worth another attempt: the server was busy or broken for a moment, or the bytes
// were damaged in transit.
bool RetryableAnswer(long status, std::string_view code) {
  if (status == 501) return false;  // NotImplemented: it will not be implemented next time
  if (status >= 500 || status == 429) return true;
  if (code == "SlowDown" || code == "RequestTimeout" || code == "InternalError" ||
      code == "ServiceUnavailable" || code == "BadDigest" || code == "IncompleteBody" ||
      code == "XAmzContentSHA256Mismatch" || code == "ConditionalRequestConflict" ||
      code == "OperationAborted") {
    return true;
  }
  return false;
}

Status AsRetryable(const Status& s) {
  return Status(s.code(), s.message(), true).WithHint(s.hint());
}

std::optional<uint64_t> ParseU64(std::string_view s) {
  uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// The total size from a Content-Range header ("bytes 0-9/1234" or "bytes */1234").
std::optional<uint64_t> RangeTotal(const std::string* content_range) {
  if (content_range == nullptr) return std::nullopt;
  const size_t slash = content_range->rfind('/');
  if (slash == std::string::npos) return std::nullopt;
  return ParseU64(std::string_view(*content_range).substr(slash + 1));
}

}  // namespace

struct S3Storage::Call {
  // Every member has a default member initializer: g++ 12 warns about members without one
  // that a designated initializer leaves out.
  std::string op = {};  // what the caller was doing, for messages: "put", "get", ...
  std::string_view method = {};
  std::string key = {};      // the full key; empty for requests on the bucket
  std::string display = {};  // the s3:// url shown in messages
  std::vector<std::pair<std::string, std::string>> query = {};
  HttpHeaders headers = {};  // besides the signed host/x-amz-date/x-amz-content-sha256
  ByteSpan body = {};
  std::string payload_sha256 = {};  // of body; empty for no body
  uint64_t expected_response_bytes = 0;
  bool error_in_ok = false;       // a 200 may carry an <Error> (CompleteMultipartUpload)
  bool fresh_connection = false;  // see HttpRequest::fresh_connection
};

struct S3Storage::Reply {
  HttpResponse response;
  int attempts = 1;
};

S3Storage::S3Storage(S3Options options, S3Endpoint endpoint, std::unique_ptr<HttpClient> http)
    : options_(std::move(options)),
      endpoint_(std::move(endpoint)),
      location_(S3Location(options_)),
      key_prefix_(options_.prefix.empty() ? "" : options_.prefix + "/"),
      http_(std::move(http)) {}

S3Storage::~S3Storage() = default;

Result<std::unique_ptr<S3Storage>> S3Storage::Open(S3Options options) {
  if (options.endpoint.empty()) {
    options.endpoint = fmt::format("https://s3.{}.amazonaws.com", options.region);
  }
  LB_RETURN_IF_ERROR(ValidateS3Options(options));
  LB_ASSIGN_OR_RETURN(S3Endpoint endpoint, ParseS3Endpoint(options.endpoint));
  if (options.style == S3AddressingStyle::kAuto) {
    options.style = endpoint.aws ? S3AddressingStyle::kVirtualHost : S3AddressingStyle::kPath;
  }
  LB_ASSIGN_OR_RETURN(std::unique_ptr<HttpClient> http, HttpClient::Create(options.http));
  return std::unique_ptr<S3Storage>(
      new S3Storage(std::move(options), std::move(endpoint), std::move(http)));
}

std::string S3Storage::KeyOf(std::string_view name) const {
  return key_prefix_ + std::string(name);
}

std::string S3Storage::UrlOf(const std::string& key) const {
  return fmt::format("s3://{}/{}", options_.bucket, key);
}

HttpHeaders S3Storage::NewObjectHeaders() const {
  HttpHeaders h;
  if (!options_.storage_class.empty())
    h.emplace_back("x-amz-storage-class", options_.storage_class);
  if (!options_.sse.empty()) h.emplace_back("x-amz-server-side-encryption", options_.sse);
  if (!options_.sse_kms_key_id.empty()) {
    h.emplace_back("x-amz-server-side-encryption-aws-kms-key-id", options_.sse_kms_key_id);
  }
  return h;
}

Result<S3Storage::Reply> S3Storage::Execute(const Call& call) const {
  const bool virtual_host = options_.style == S3AddressingStyle::kVirtualHost;
  const std::string host = virtual_host ? fmt::format("{}.{}", options_.bucket, endpoint_.authority)
                                        : endpoint_.authority;
  std::string path;
  if (virtual_host) {
    path = "/" + UriEncode(call.key, true);
  } else {
    path = "/" + UriEncode(options_.bucket, false);
    if (!call.key.empty()) path += "/" + UriEncode(call.key, true);
  }
  const std::string query = CanonicalQueryString(call.query);
  const std::string url =
      fmt::format("{}://{}{}{}{}", endpoint_.scheme, host, path, query.empty() ? "" : "?", query);
  const std::string_view payload_sha256 =
      call.payload_sha256.empty() ? kEmptySha256 : std::string_view(call.payload_sha256);
  const std::string what = fmt::format("{} '{}'", call.op, call.display);

  const auto start = Clock::now();
  const S3RetryPolicy& retry = options_.retry;
  Status failure;
  bool answered = false;  // the last failure was an HTTP answer, not a transport failure
  int attempt = 0;
  while (true) {
    ++attempt;
    const bool reached = reached_.load(std::memory_order_relaxed);
    const std::string amz_date = AmzDate(std::chrono::system_clock::now());
    SigningInput in{.method = call.method,
                    .canonical_uri = path,
                    .canonical_query = query,
                    .headers = {{"host", host},
                                {"x-amz-content-sha256", std::string(payload_sha256)},
                                {"x-amz-date", amz_date}},
                    .payload_sha256 = payload_sha256,
                    .amz_date = amz_date,
                    .region = options_.region};
    if (!options_.credentials.session_token.empty()) {
      in.headers.emplace_back("x-amz-security-token", options_.credentials.session_token);
    }
    HttpRequest request{.method = call.method,
                        .url = url,
                        .headers = {},
                        .body = call.body,
                        .expected_response_bytes = call.expected_response_bytes,
                        .fresh_connection = call.fresh_connection};
    if (!reached && retry.unreached_connect_timeout < options_.http.connect_timeout) {
      request.connect_timeout = retry.unreached_connect_timeout;
    }
    for (const auto& h : call.headers) {
      // Every x-amz-* header must be signed; the others (Range, If-None-Match) need not be.
      (h.first.starts_with("x-amz-") ? in.headers : request.headers).push_back(h);
    }
    request.headers.insert(request.headers.end(), in.headers.begin(), in.headers.end());
    request.headers.emplace_back("Authorization", AuthorizationHeader(in, options_.credentials));

    Result<HttpResponse> sent = http_->Send(request);
    answered = sent.ok();
    if (!sent.ok()) {
      if (!sent.status().retryable()) return sent.status().WithContext(what);
      failure = sent.status().WithContext(what);
    } else {
      reached_.store(true, std::memory_order_relaxed);
      const long status = sent->status;
      std::optional<S3ErrorBody> error_body;
      if (!Ok2xx(status) || call.error_in_ok) error_body = ParseS3Error(AsString(sent->body));
      if (Ok2xx(status) && !error_body) return Reply{std::move(sent).value(), attempt};
      const std::string code = error_body ? error_body->code : "";
      if (!RetryableAnswer(Ok2xx(status) ? 500 : status, code)) {
        if (Ok2xx(status)) return ResponseError(call, status, sent->headers, sent->body);
        return Reply{std::move(sent).value(), attempt};
      }
      failure = AsRetryable(ResponseError(call, status, sent->headers, sent->body));
    }

    // A server that has never answered gets the (smaller) unreached budget; one that has
    // answered, to this request or an earlier one, the full budget.
    const bool unreached = !reached_.load(std::memory_order_relaxed);
    const int max_attempts =
        unreached ? std::min(retry.max_attempts, retry.unreached_max_attempts) : retry.max_attempts;
    const auto max_total =
        unreached ? std::min(retry.max_total, retry.unreached_max_total) : retry.max_total;
    const auto elapsed = Clock::now() - start;
    std::chrono::milliseconds sleep{0};
    if (attempt < max_attempts) {
      const int64_t cap = std::min<int64_t>(retry.max_delay.count(),
                                            retry.base_delay.count() << std::min(attempt - 1, 20));
      if (cap > 0)
        sleep =
            std::chrono::milliseconds(std::uniform_int_distribution<int64_t>(0, cap - 1)(Rng()));
    }
    if (attempt >= max_attempts || elapsed + sleep >= max_total) {
      const double secs = std::chrono::duration<double>(elapsed).count();
      std::string hint = failure.hint();
      if (hint.empty()) {
        hint = answered ? fmt::format("the S3 server at {} kept failing; try again later",
                                      options_.endpoint)
                        : fmt::format(
                              "the S3 endpoint {} cannot be reached{}; check that the server "
                              "is up and reachable from this host, and the endpoint",
                              options_.endpoint, unreached ? " (it never answered)" : "");
      }
      return Status(failure.code(),
                    fmt::format("{} (gave up after {} attempt{} in {:.1f} s)", failure.message(),
                                attempt, attempt == 1 ? "" : "s", secs),
                    true)
          .WithHint(hint);
    }
    LogDebug("s3: {} (attempt {} of {}); retrying in {} ms", failure.message(), attempt,
             max_attempts, sleep.count());
    std::this_thread::sleep_for(sleep);
  }
}

Status S3Storage::ResponseError(const Call& call, long status, const HttpHeaders& headers,
                                ByteSpan body) const {
  const std::optional<S3ErrorBody> err = ParseS3Error(AsString(body));
  const std::string code = err ? Clean(err->code) : "";
  const std::string message = err ? Clean(err->message) : "";
  std::string detail = fmt::format("HTTP {}", status);
  if (!code.empty()) detail += " " + code;
  if (!message.empty()) detail += ": " + message;
  const std::string what = fmt::format("{} '{}'", call.op, call.display);
  auto header = [&](std::string_view name) -> std::string {
    for (const auto& [n, v] : headers) {
      if (n == name) return v;
    }
    return {};
  };
  const std::string& source = options_.credentials_source;

  if (status == 404) {
    if (code == "NoSuchBucket") {
      return Status(Code::kFailedPrecondition, fmt::format("{}: bucket '{}' does not exist ({})",
                                                           what, options_.bucket, detail))
          .WithHint(fmt::format(
              "create the bucket first (e.g. `aws s3 mb s3://{}`), or check the bucket name and "
              "the endpoint ({})",
              options_.bucket, options_.endpoint));
    }
    return Err(Code::kNotFound, "{}: no such object ({})", what, detail);
  }
  if (status == 403) {
    Status s(Code::kPermissionDenied, fmt::format("{}: {}", what, detail));
    if (code == "SignatureDoesNotMatch") {
      return s.WithHint(fmt::format(
          "the secret access key does not match the access key id (credentials from {}); "
          "check AWS_SECRET_ACCESS_KEY or the profile's aws_secret_access_key",
          source));
    }
    if (code == "InvalidAccessKeyId") {
      return s.WithHint(fmt::format(
          "the server does not know the access key id (credentials from {}); check "
          "AWS_ACCESS_KEY_ID or the profile, and that the endpoint ({}) is the right server",
          source, options_.endpoint));
    }
    if (code == "RequestTimeTooSkewed") {
      return s.WithHint("this host's clock is more than 15 minutes off the server's; fix it (NTP)");
    }
    if (code == "ExpiredToken" || code == "InvalidToken" || code == "TokenRefreshRequired") {
      return s.WithHint(fmt::format(
          "the session token (from {}) has expired or is invalid; get fresh credentials", source));
    }
    return s.WithHint(fmt::format(
        "the credentials (from {}) are not allowed this on bucket '{}'; check the bucket "
        "policy and the user's permissions{}",
        source, options_.bucket,
        call.method == "HEAD" ? " (a HEAD answer carries no reason; a GET would show it)" : ""));
  }
  if (status == 301 || status == 307 || status == 308 || code == "AuthorizationHeaderMalformed" ||
      code == "PermanentRedirect") {
    std::string region = header("x-amz-bucket-region");
    if (region.empty() && err) region = Clean(err->region);
    Status s(Code::kFailedPrecondition, fmt::format("{}: {}", what, detail));
    if (!region.empty()) {
      return s.WithHint(fmt::format("bucket '{}' is in region '{}': set region={} (or AWS_REGION)",
                                    options_.bucket, region, region));
    }
    return s.WithHint("the endpoint or region does not match the bucket's; check both");
  }
  if (status == 412) return Err(Code::kAlreadyExists, "{}: already exists ({})", what, detail);
  if (status == 416) return Err(Code::kCorruption, "{}: short object ({})", what, detail);
  if (status == 400 && code == "InvalidBucketName") {
    return Err(Code::kInvalidArgument, "{}: {}", what, detail);
  }
  if (status == 501) {
    return Status(Code::kFailedPrecondition, fmt::format("{}: {}", what, detail))
        .WithHint("the server does not implement this request; is it S3-compatible?");
  }
  if (RetryableAnswer(Ok2xx(status) ? 500 : status, code)) {
    return ErrRetryable(Code::kUnavailable, "{}: {}", what, detail);
  }
  return Err(Code::kIo, "{}: {}", what, detail);
}

// ---------------------------------------------------------------------------------------
// Put.

Status S3Storage::Put(std::string_view name, ByteSpan data, PutOptions opts) {
  LB_RETURN_IF_ERROR(ValidateObjectName(name));
  if (!opts.exclusive && data.size() > options_.multipart_threshold) {
    return PutMultipart(name, data);
  }
  return PutSingle(name, data, opts.exclusive, opts.sha256_hex);
}

Status S3Storage::PutSingle(std::string_view name, ByteSpan data, bool exclusive,
                            std::string_view sha256_hex) {
  const std::string key = KeyOf(name);
  if (data.size() > kMaxSinglePut) {
    return Err(Code::kInvalidArgument, "put '{}': {} bytes is more than one S3 PUT takes (5 GiB){}",
               UrlOf(key), data.size(),
               exclusive ? "; exclusive objects cannot be uploaded in parts" : "");
  }
  if (exclusive) {
    LB_ASSIGN_OR_RETURN(const bool atomic, ConditionalPutWorks());
    if (!atomic) {
      // The server would overwrite: look first. Two writers can both find the name free
      // here; caps().atomic_exclusive_put is false to say so.
      auto existing = Stat(name);
      if (existing.ok()) return Err(Code::kAlreadyExists, "put '{}': already exists", UrlOf(key));
      if (existing.status().code() != Code::kNotFound) return existing.status();
    }
  }
  Call call{.op = "put",
            .method = "PUT",
            .key = key,
            .display = UrlOf(key),
            .headers = NewObjectHeaders(),
            .body = data,
            .payload_sha256 = IsSha256Hex(sha256_hex) ? std::string(sha256_hex)
                                                      : Sha256Hex(data)};
  if (exclusive) {
    call.headers.emplace_back("If-None-Match", "*");
    // So that a 412 on the first attempt cannot be the answer to a resend of our own put.
    call.fresh_connection = true;
  }
  LB_ASSIGN_OR_RETURN(Reply reply, Execute(call));
  const long status = reply.response.status;
  if (Ok2xx(status)) return Status::Ok();
  if (exclusive && status == 412 && reply.attempts > 1) return ConfirmOurExclusivePut(name, data);
  return ResponseError(call, status, reply.response.headers, reply.response.body);
}

// An exclusive put got 412 after an attempt that failed without an answer: that attempt may
// have stored the object before the connection broke. If what is stored is exactly `data`,
// the put succeeded. Every object lifeboat writes carries a random nonce, so identical bytes
// mean this writer's bytes; and were they another writer's, identical content makes the
// difference invisible.
Status S3Storage::ConfirmOurExclusivePut(std::string_view name, ByteSpan data) {
  const std::string key = KeyOf(name);
  const Status lost = Err(Code::kAlreadyExists, "put '{}': already exists (HTTP 412)", UrlOf(key));
  Call head{.op = "put (check after retry)", .method = "HEAD", .key = key, .display = UrlOf(key)};
  LB_ASSIGN_OR_RETURN(Reply reply, Execute(head));
  if (reply.response.status == 404) return lost;
  if (!Ok2xx(reply.response.status)) {
    return ResponseError(head, reply.response.status, reply.response.headers, reply.response.body);
  }
  const std::string* length = reply.response.Header("content-length");
  if (length == nullptr || ParseU64(*length) != data.size()) return lost;
  const std::string* etag = reply.response.Header("etag");
  bool same = false;
  if (etag != nullptr && IsMd5Hex(Unquote(*etag)) && options_.sse != "aws:kms") {
    // A single PUT's ETag is the MD5 of its bytes (not so under SSE-KMS).
    same = Unquote(*etag) == Md5Hex(data);
  } else {
    auto stored = Get(name);
    if (!stored.ok()) return stored.status().code() == Code::kNotFound ? lost : stored.status();
    same = std::equal(stored->begin(), stored->end(), data.begin(), data.end());
  }
  if (!same) return lost;
  LogDebug("s3: put '{}': an earlier attempt stored it; the retry's 412 is our own", UrlOf(key));
  return Status::Ok();
}

Result<bool> S3Storage::ConditionalPutWorks() const {
  switch (options_.conditional_put) {
    case S3ConditionalPut::kOn: return true;
    case S3ConditionalPut::kOff: return false;
    case S3ConditionalPut::kAuto: break;
  }
  // AWS S3 has honoured If-None-Match on PUT since August 2024.
  if (endpoint_.aws) return true;
  std::lock_guard lock(probe_mu_);
  if (conditional_put_works_) return *conditional_put_works_;
  LB_ASSIGN_OR_RETURN(const bool works, ProbeConditionalPut());
  conditional_put_works_ = works;
  return works;
}

// Writes a probe object twice with If-None-Match: *; a server that honours the header
// refuses the second. The probe's name starts with ".tmp-", which no object name may, so
// List never shows it even if deleting it fails.
Result<bool> S3Storage::ProbeConditionalPut() const {
  const std::string key = key_prefix_ + ".tmp-probe-" + RandomHex();
  static constexpr std::string_view kBody = "lifeboat: If-None-Match probe; safe to delete\n";
  Call put{.op = "probe conditional put",
           .method = "PUT",
           .key = key,
           .display = UrlOf(key),
           .headers = {{"If-None-Match", "*"}},
           .body = AsBytes(kBody),
           .payload_sha256 = Sha256Hex(AsBytes(kBody))};
  put.fresh_connection = true;
  std::optional<bool> works;
  LB_ASSIGN_OR_RETURN(Reply first, Execute(put));
  if (first.response.status == 412) {
    works = true;  // a fresh random name: only our own earlier attempt can have created it
  } else if (!Ok2xx(first.response.status)) {
    return ResponseError(put, first.response.status, first.response.headers, first.response.body);
  } else {
    LB_ASSIGN_OR_RETURN(Reply second, Execute(put));
    if (second.response.status == 412) {
      works = true;
    } else if (Ok2xx(second.response.status)) {
      works = false;
    } else {
      return ResponseError(put, second.response.status, second.response.headers,
                           second.response.body);
    }
  }
  Call del{.op = "remove probe", .method = "DELETE", .key = key, .display = UrlOf(key)};
  auto removed = Execute(del);
  if (!removed.ok() || !Ok2xx(removed->response.status)) {
    LogDebug("s3: could not remove the probe object '{}'; it is harmless", UrlOf(key));
  }
  if (!*works) {
    LogWarning(
        "{}: the server ignores If-None-Match on PUT; exclusive puts fall back to HEAD then "
        "PUT, which two writers can pass at once (url option conditional_put=off skips this "
        "check)",
        location_);
  }
  return *works;
}

Status S3Storage::PutMultipart(std::string_view name, ByteSpan data) {
  const std::string key = KeyOf(name);
  const std::string url = UrlOf(key);
  const uint64_t part_size = options_.part_size;
  const uint64_t parts = (data.size() + part_size - 1) / part_size;
  if (parts > kMaxParts) {
    return Err(Code::kInvalidArgument,
               "put '{}': {} bytes in parts of {} would be {} parts, more than S3's 10000; "
               "raise part_size",
               url, data.size(), part_size, parts);
  }

  Call init{.op = "start upload of",
            .method = "POST",
            .key = key,
            .display = url,
            .query = {{"uploads", ""}},
            .headers = NewObjectHeaders()};
  LB_ASSIGN_OR_RETURN(Reply started, Execute(init));
  if (!Ok2xx(started.response.status)) {
    return ResponseError(init, started.response.status, started.response.headers,
                         started.response.body);
  }
  auto upload_id = ParseInitiateMultipartUpload(AsString(started.response.body));
  if (!upload_id.ok()) return upload_id.status().WithContext(fmt::format("put '{}'", url));

  // Every failure from here on aborts the upload, so no parts are left holding storage.
  auto fail = [&](const Status& cause) {
    Status aborted = AbortMultipart(key, *upload_id);
    if (aborted.ok()) return cause;
    return Status(cause.code(),
                  fmt::format("{}; aborting the upload failed too, so its parts stay until "
                              "aborted (upload id '{}'): {}",
                              cause.message(), *upload_id, aborted.message()),
                  cause.retryable())
        .WithHint(cause.hint());
  };

  std::vector<std::string> etags(parts);
  std::atomic<uint64_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex error_mu;
  Status first_error;
  auto upload_parts = [&] {
    while (!failed.load()) {
      const uint64_t i = next.fetch_add(1);
      if (i >= parts) return;
      const ByteSpan slice =
          data.subspan(i * part_size, std::min(part_size, data.size() - i * part_size));
      Call part{.op = fmt::format("put part {} of {} of", i + 1, parts),
                .method = "PUT",
                .key = key,
                .display = url,
                .query = {{"partNumber", std::to_string(i + 1)}, {"uploadId", *upload_id}},
                .body = slice,
                .payload_sha256 = Sha256Hex(slice)};
      Status s;
      auto reply = Execute(part);
      if (!reply.ok()) {
        s = reply.status();
      } else if (!Ok2xx(reply->response.status)) {
        s = ResponseError(part, reply->response.status, reply->response.headers,
                          reply->response.body);
      } else if (const std::string* etag = reply->response.Header("etag"); etag == nullptr) {
        s = Err(Code::kIo, "{} '{}': the answer has no ETag", part.op, url);
      } else {
        etags[i] = *etag;
      }
      if (!s.ok()) {
        std::lock_guard lock(error_mu);
        if (!failed.exchange(true)) first_error = s;
        return;
      }
    }
  };
  {
    const uint64_t helpers =
        std::min<uint64_t>(static_cast<uint64_t>(options_.upload_concurrency), parts) - 1;
    std::vector<std::jthread> threads;
    for (uint64_t t = 0; t < helpers; ++t) threads.emplace_back(upload_parts);
    upload_parts();
  }
  if (failed.load()) return fail(first_error);

  std::vector<std::pair<int, std::string>> numbered;
  for (uint64_t i = 0; i < parts; ++i) numbered.emplace_back(static_cast<int>(i + 1), etags[i]);
  const std::string xml = CompleteMultipartUploadBody(numbered);
  Call complete{.op = "complete upload of",
                .method = "POST",
                .key = key,
                .display = url,
                .query = {{"uploadId", *upload_id}},
                .body = AsBytes(xml),
                .payload_sha256 = Sha256Hex(AsBytes(xml)),
                .error_in_ok = true};
  auto done = Execute(complete);
  if (!done.ok()) return fail(done.status());
  const long status = done->response.status;
  if (Ok2xx(status)) return Status::Ok();

  if (status == 404) {
    // An earlier attempt of the completion (ours, or libcurl's silent resend on a reused
    // connection that died) may have succeeded before its answer was lost;
    // then the upload is gone and the object is there with the multipart ETag, the MD5 of
    // the parts' binary MD5s followed by "-N".
    std::string md5s;
    bool computable = true;
    for (const std::string& etag : etags) {
      Bytes bin;
      if (!IsMd5Hex(Unquote(etag)) || !HexDecode(Unquote(etag), bin)) computable = false;
      md5s.append(bin.begin(), bin.end());
    }
    auto head = Execute(
        Call{.op = "put (check after retry)", .method = "HEAD", .key = key, .display = url});
    if (computable && head.ok() && Ok2xx(head->response.status)) {
      const std::string* etag = head->response.Header("etag");
      const std::string want = fmt::format("{}-{}", Md5Hex(AsBytes(md5s)), parts);
      if (etag != nullptr && Unquote(*etag) == want) return Status::Ok();
    }
  }
  return fail(ResponseError(complete, status, done->response.headers, done->response.body));
}

Status S3Storage::AbortMultipart(const std::string& key, const std::string& upload_id) const {
  Call abort{.op = "abort upload of",
             .method = "DELETE",
             .key = key,
             .display = UrlOf(key),
             .query = {{"uploadId", upload_id}}};
  LB_ASSIGN_OR_RETURN(Reply reply, Execute(abort));
  if (Ok2xx(reply.response.status) || reply.response.status == 404) return Status::Ok();
  return ResponseError(abort, reply.response.status, reply.response.headers, reply.response.body);
}

// ---------------------------------------------------------------------------------------
// Reads.

Result<Bytes> S3Storage::Get(std::string_view name) {
  LB_RETURN_IF_ERROR(ValidateObjectName(name));
  const std::string key = KeyOf(name);
  Call call{.op = "get", .method = "GET", .key = key, .display = UrlOf(key)};
  LB_ASSIGN_OR_RETURN(Reply reply, Execute(call));
  if (!Ok2xx(reply.response.status)) {
    return ResponseError(call, reply.response.status, reply.response.headers, reply.response.body);
  }
  return std::move(reply.response.body);
}

Result<Bytes> S3Storage::GetRange(std::string_view name, uint64_t offset, uint64_t length) {
  LB_RETURN_IF_ERROR(ValidateObjectName(name));
  const std::string key = KeyOf(name);
  const std::string what = fmt::format("get '{}' at {}+{}", UrlOf(key), offset, length);
  if (length == 0 || length > UINT64_MAX - offset) {
    // HTTP has no empty range, and no object is 2^64 bytes long: decide from the size.
    LB_ASSIGN_OR_RETURN(const ObjectInfo info, Stat(name));
    if (length == 0 && offset <= info.size) return Bytes();
    return Err(Code::kCorruption, "{}: short object ({} bytes)", what, info.size);
  }
  Call call{.op = fmt::format("get bytes {}+{} of", offset, length),
            .method = "GET",
            .key = key,
            .display = UrlOf(key),
            .headers = {{"Range", fmt::format("bytes={}-{}", offset, offset + length - 1)}},
            .expected_response_bytes = length};
  LB_ASSIGN_OR_RETURN(Reply reply, Execute(call));
  HttpResponse& r = reply.response;
  if (r.status == 416) {
    const std::optional<uint64_t> total = RangeTotal(r.Header("content-range"));
    if (total) return Err(Code::kCorruption, "{}: short object ({} bytes)", what, *total);
    return Err(Code::kCorruption, "{}: short object", what);
  }
  if (r.status == 200) {
    // The server ignored Range and sent the whole object.
    if (offset > r.body.size() || length > r.body.size() - offset) {
      return Err(Code::kCorruption, "{}: short object ({} bytes)", what, r.body.size());
    }
    return Bytes(r.body.begin() + static_cast<ptrdiff_t>(offset),
                 r.body.begin() + static_cast<ptrdiff_t>(offset + length));
  }
  if (r.status != 206) return ResponseError(call, r.status, r.headers, r.body);
  if (r.body.size() != length) {
    // S3 cuts a range that runs past the end to what is there.
    const std::optional<uint64_t> total = RangeTotal(r.Header("content-range"));
    return Err(Code::kCorruption, "{}: short object ({} bytes)", what,
               total.value_or(offset + r.body.size()));
  }
  return std::move(r.body);
}

Result<ObjectInfo> S3Storage::Stat(std::string_view name) {
  LB_RETURN_IF_ERROR(ValidateObjectName(name));
  const std::string key = KeyOf(name);
  Call call{.op = "stat", .method = "HEAD", .key = key, .display = UrlOf(key)};
  LB_ASSIGN_OR_RETURN(Reply reply, Execute(call));
  const HttpResponse& r = reply.response;
  if (r.status == 404) return ResponseError(call, r.status, r.headers, r.body);
  if (!Ok2xx(r.status)) return HeadRefused(call, r);
  const std::string* length = r.Header("content-length");
  const std::optional<uint64_t> size = length ? ParseU64(*length) : std::nullopt;
  if (!size) return Err(Code::kIo, "stat '{}': the answer has no Content-Length", UrlOf(key));
  int64_t mtime = 0;
  if (const std::string* modified = r.Header("last-modified")) {
    mtime = ParseHttpDate(*modified).value_or(0);
  }
  return ObjectInfo{.name = std::string(name), .size = *size, .mtime_unix = mtime};
}

// A HEAD answer has no body, so a refusal (403, 400, a redirect) comes without S3's error
// code, and "wrong secret" cannot be told from "not allowed". The same request as a GET of the
// first byte carries the code; it costs one request, and only on this failure path. (404 is
// left alone: it is the common answer for a missing object and needs no explaining.)
Status S3Storage::HeadRefused(const Call& head, const HttpResponse& refused) const {
  Call get = head;
  get.method = "GET";
  get.headers = {{"Range", "bytes=0-0"}};
  get.expected_response_bytes = 1;
  Result<Reply> again = Execute(get);
  if (again.ok() && again->response.status == refused.status) {
    const HttpResponse& r = again->response;
    if (ParseS3Error(AsString(r.body))) return ResponseError(get, r.status, r.headers, r.body);
  }
  return ResponseError(head, refused.status, refused.headers, refused.body);
}

Status S3Storage::List(std::string_view prefix,
                       const std::function<Status(const ObjectInfo&)>& fn) {
  LB_RETURN_IF_ERROR(ValidateListPrefix(prefix));
  const std::string full_prefix = key_prefix_ + std::string(prefix);
  std::string token;
  while (true) {
    Call call{.op = "list",
              .method = "GET",
              .key = "",
              .display = UrlOf(full_prefix),
              .query = {{"list-type", "2"},
                        {"prefix", full_prefix},
                        {"max-keys", std::to_string(options_.max_keys)}}};
    if (!token.empty()) call.query.emplace_back("continuation-token", token);
    LB_ASSIGN_OR_RETURN(Reply reply, Execute(call));
    const HttpResponse& r = reply.response;
    if (!Ok2xx(r.status)) return ResponseError(call, r.status, r.headers, r.body);
    auto page = ParseListObjectsV2(AsString(r.body));
    if (!page.ok()) return page.status().WithContext(fmt::format("list '{}'", UrlOf(full_prefix)));
    for (S3ListedObject& obj : page->objects) {
      if (!obj.key.starts_with(key_prefix_)) continue;
      std::string name = obj.key.substr(key_prefix_.size());
      // Keys that are no object name: "folder/" markers made by consoles, probe objects.
      if (!ValidateObjectName(name).ok()) continue;
      LB_RETURN_IF_ERROR(
          fn(ObjectInfo{.name = std::move(name), .size = obj.size, .mtime_unix = obj.mtime_unix}));
    }
    if (!page->truncated) return Status::Ok();
    if (page->next_continuation_token == token) {
      return Err(Code::kIo, "list '{}': the server repeated its continuation token",
                 UrlOf(full_prefix));
    }
    token = std::move(page->next_continuation_token);
  }
}

Status S3Storage::Remove(std::string_view name) {
  LB_RETURN_IF_ERROR(ValidateObjectName(name));
  const std::string key = KeyOf(name);
  // S3's DELETE succeeds for missing keys too; the contract wants kNotFound for those.
  LB_RETURN_IF_ERROR(Stat(name).status());
  Call call{.op = "remove", .method = "DELETE", .key = key, .display = UrlOf(key)};
  LB_ASSIGN_OR_RETURN(Reply reply, Execute(call));
  if (Ok2xx(reply.response.status)) return Status::Ok();
  return ResponseError(call, reply.response.status, reply.response.headers, reply.response.body);
}

Capabilities S3Storage::caps() const {
  auto works = ConditionalPutWorks();
  return {.atomic_exclusive_put = works.ok() && *works, .local = false};
}

Result<std::vector<S3Upload>> S3Storage::ListUploads() {
  std::vector<S3Upload> out;
  std::string key_marker;
  std::string id_marker;
  while (true) {
    Call call{.op = "list uploads in",
              .method = "GET",
              .key = "",
              .display = UrlOf(key_prefix_),
              .query = {{"uploads", ""}, {"prefix", key_prefix_}}};
    if (!key_marker.empty()) call.query.emplace_back("key-marker", key_marker);
    if (!id_marker.empty()) call.query.emplace_back("upload-id-marker", id_marker);
    LB_ASSIGN_OR_RETURN(Reply reply, Execute(call));
    const HttpResponse& r = reply.response;
    if (!Ok2xx(r.status)) return ResponseError(call, r.status, r.headers, r.body);
    LB_ASSIGN_OR_RETURN(ListUploadsPage page, ParseListMultipartUploads(AsString(r.body)));
    for (S3Upload& u : page.uploads) {
      if (u.key.starts_with(key_prefix_)) out.push_back(std::move(u));
    }
    if (!page.truncated) return out;
    if (page.next_key_marker == key_marker && page.next_upload_id_marker == id_marker) {
      return Err(Code::kIo, "list uploads in '{}': the server repeated its marker",
                 UrlOf(key_prefix_));
    }
    key_marker = page.next_key_marker;
    id_marker = page.next_upload_id_marker;
  }
}

Status S3Storage::AbortUpload(const S3Upload& upload) {
  if (!upload.key.starts_with(key_prefix_)) {
    return Err(Code::kInvalidArgument, "upload of '{}' is outside '{}'", UrlOf(upload.key),
               location_);
  }
  return AbortMultipart(upload.key, upload.upload_id);
}

}  // namespace lb::storage
