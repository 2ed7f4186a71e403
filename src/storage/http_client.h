// One HTTP/1.1 request at a time per call, many calls at once: a thin layer over libcurl for
// the s3 driver, with connection reuse, timeouts scaled by size, and stall detection.
// It does not retry; the caller decides what is worth another attempt.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "storage/sigv4.h"
#include "util/bytes.h"
#include "util/status.h"

namespace lb::storage {

struct HttpClientOptions {
  std::string ca_file;  // PEM bundle to verify TLS servers with; empty: the system's
  std::chrono::milliseconds connect_timeout{10'000};
  // Stall detection: a transfer moving fewer than low_speed_bytes per second for
  // low_speed_time is cut off (and retried by the caller).
  uint32_t low_speed_bytes = 1024;
  std::chrono::seconds low_speed_time{30};
  // A request may take request_timeout plus the time to move its body (sent or received,
  // whichever is larger) at min_rate_bytes_per_sec, so an 8 MiB pack gets 68 s by default
  // and a 1 GiB object 17 minutes, while a HEAD that hangs is cut after a minute.
  std::chrono::milliseconds request_timeout{60'000};
  uint64_t min_rate_bytes_per_sec = 1 << 20;
  // Idle connections (one per curl handle) kept for reuse.
  size_t max_idle_connections = 64;
};

struct HttpRequest {
  std::string_view method = {};  // GET, HEAD, PUT, POST, DELETE
  std::string url = {};          // complete and already percent-encoded; sent as is
  HttpHeaders headers = {};      // sent as given (curl adds none that matter: no Expect)
  ByteSpan body = {};            // PUT and POST; must stay valid until Send returns
  // The response body's size when known in advance (a ranged GET), for the timeout.
  uint64_t expected_response_bytes = 0;
  // Use a new connection. libcurl silently resends a request whose reused connection turns
  // out to be dead, and a server may have acted on the first send; on a new connection it
  // never does, so the answer is to this one send (exclusive puts need to know).
  bool fresh_connection = false;
  // Overrides HttpClientOptions::connect_timeout for this request when set.
  std::optional<std::chrono::milliseconds> connect_timeout = std::nullopt;
};

struct HttpResponse {
  long status = 0;
  HttpHeaders headers;  // of the final response; names lower-cased
  Bytes body;           // bodies of non-2xx responses are cut at 64 KiB

  // The value of header `name` (lower-case), or nullptr.
  const std::string* Header(std::string_view name) const;
};

// An HTTP date ("Fri, 24 May 2013 00:00:00 GMT", RFC 9110 IMF-fixdate) as seconds since the
// epoch; nullopt when malformed.
std::optional<int64_t> ParseHttpDate(std::string_view s);

class HttpClient {
 public:
  // kInvalidArgument when libcurl cannot be initialised with the options.
  static Result<std::unique_ptr<HttpClient>> Create(HttpClientOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Performs one request. Any HTTP status is a response; only transport failures are a
  // Status: kUnavailable, retryable, for connection failures and resets, timeouts, stalls
  // and bodies shorter than their Content-Length; kFailedPrecondition for a TLS certificate
  // that does not verify; kInvalidArgument for a malformed url or an unreadable CA file.
  // Messages describe the failure only (no url): the caller adds what it was doing.
  // Thread-safe: concurrent calls use different connections.
  Result<HttpResponse> Send(const HttpRequest& request);

 private:
  struct Shared;
  explicit HttpClient(HttpClientOptions options);

  void* AcquireHandle();
  void ReleaseHandle(void* handle);

  const HttpClientOptions options_;
  std::unique_ptr<Shared> shared_;  // DNS and TLS session cache shared by all handles
  std::mutex mu_;
  // Guarded by mu_: idle handles (a CURL easy handle and its last socket), each keeping its
  // open connection.
  std::vector<void*> idle_;
};

}  // namespace lb::storage
