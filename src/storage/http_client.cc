#include "storage/http_client.h"

#include <curl/curl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <ctime>

namespace lb::storage {
namespace {

// Error documents are a few hundred bytes; anything longer (an HTML page from a proxy) is
// cut so a misbehaving server cannot make us buffer without bound.
constexpr size_t kMaxErrorBody = 64 << 10;
// Reserve at most this much up front from a Content-Length; bigger bodies grow as they come,
// so a lying header cannot make us allocate gigabytes before a byte arrives.
constexpr uint64_t kMaxReserve = 256ull << 20;

using Clock = std::chrono::steady_clock;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

// State of one transfer, reached from curl's callbacks.
// An easy handle and the socket of the connection it opened last. A handle talks to one
// server, so that is the connection it reuses; a stale descriptor only makes setsockopt
// fail (or acknowledge another connection's data early), which is harmless.
struct Handle {
  CURL* curl = nullptr;
  curl_socket_t fd = CURL_SOCKET_BAD;
};

// Records each new connection's socket (CURLOPT_SOCKOPTFUNCTION).
int OnSocket(void* user, curl_socket_t fd, curlsocktype purpose) {
  if (purpose == CURLSOCKTYPE_IPCXN) static_cast<Handle*>(user)->fd = fd;
  return CURL_SOCKOPT_OK;
}

struct Transfer {
  const Handle* handle = nullptr;
  const HttpRequest* request = nullptr;
  HttpResponse response;
  size_t upload_pos = 0;
  std::optional<uint64_t> content_length;
  Clock::time_point start;
  std::chrono::milliseconds base_timeout{0};
  uint64_t min_rate = 1;
  bool deadline_hit = false;
  std::chrono::milliseconds allowed{0};
};

// Acknowledges what has arrived at once instead of after the delayed-ACK timer (40 ms on
// Linux). Servers that write a response's head and body separately without TCP_NODELAY
// (Ceph RGW's beast frontend by default) hold the body back under Nagle's algorithm until
// the head is acknowledged, and on a reused connection the kernel delays that ACK: every
// response with a body (GET, LIST) would then take 40 ms longer. Linux only; elsewhere a
// no-op.
void AckNow([[maybe_unused]] const Handle& h) {
#ifdef TCP_QUICKACK
  if (h.fd == CURL_SOCKET_BAD) return;
  const int one = 1;
  setsockopt(h.fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
#endif
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::string_view line(data, size * n);
  if (line == "\r\n" || line == "\n") {
    // The end of a head; a final response's body, if any, follows.
    if (t->response.status >= 200 && t->request->method != "HEAD") AckNow(*t->handle);
    return size * n;
  }
  if (line.starts_with("HTTP/")) {
    // A new response (after "100 Continue", say): forget the previous one's headers.
    t->response.headers.clear();
    t->content_length.reset();
    const size_t sp = line.find(' ');
    long status = 0;
    if (sp != std::string_view::npos) {
      std::from_chars(line.data() + sp + 1, line.data() + line.size(), status);
    }
    t->response.status = status;
    return size * n;
  }
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) return size * n;
  std::string name = Lower(Trim(line.substr(0, colon)));
  const std::string_view value = Trim(line.substr(colon + 1));
  if (name == "content-length") {
    uint64_t len = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), len);
    if (ec == std::errc() && end == value.data() + value.size()) {
      t->content_length = len;
      if (t->response.status >= 200 && t->response.status < 300 && t->request->method != "HEAD") {
        t->response.body.reserve(static_cast<size_t>(std::min(len, kMaxReserve)));
      }
    }
  }
  t->response.headers.emplace_back(std::move(name), std::string(value));
  return size * n;
}

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t len = size * n;
  Bytes& body = t->response.body;
  if (t->response.status >= 200 && t->response.status < 300) {
    body.insert(body.end(), data, data + len);
  } else if (body.size() < kMaxErrorBody) {
    body.insert(body.end(), data, data + std::min(len, kMaxErrorBody - body.size()));
  }
  return len;
}

size_t OnRead(char* out, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const ByteSpan body = t->request->body;
  const size_t len = std::min(size * n, body.size() - t->upload_pos);
  std::memcpy(out, body.data() + t->upload_pos, len);
  t->upload_pos += len;
  return len;
}

// curl rewinds the body when it resends on a fresh connection (a reused one was closed by
// the server meanwhile).
int OnSeek(void* user, curl_off_t offset, int origin) {
  auto* t = static_cast<Transfer*>(user);
  if (origin != SEEK_SET || offset < 0 || static_cast<uint64_t>(offset) > t->request->body.size()) {
    return CURL_SEEKFUNC_FAIL;
  }
  t->upload_pos = static_cast<size_t>(offset);
  return CURL_SEEKFUNC_OK;
}

// The overall deadline once the size of a response is known from its Content-Length, which
// CURLOPT_TIMEOUT cannot learn mid-transfer.
int OnProgress(void* user, curl_off_t dltotal, curl_off_t, curl_off_t ultotal, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  const uint64_t bytes = static_cast<uint64_t>(std::max(dltotal, ultotal));
  const auto allowed = t->base_timeout + std::chrono::milliseconds(bytes * 1000 / t->min_rate);
  if (Clock::now() - t->start > allowed) {
    t->deadline_hit = true;
    t->allowed = allowed;
    return 1;
  }
  return 0;
}

Status TransportError(CURLcode code, const char* detail, const Transfer& t) {
  const std::string what = detail[0] != '\0' ? std::string(detail) : curl_easy_strerror(code);
  switch (code) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT: return Err(Code::kInvalidArgument, "bad url: {}", what);
    case CURLE_SSL_CACERT_BADFILE:
      return Err(Code::kInvalidArgument, "cannot use the CA file: {}", what);
    case CURLE_PEER_FAILED_VERIFICATION:
      return Status(Code::kFailedPrecondition,
                    fmt::format("the server's TLS certificate does not verify: {}", what))
          .WithHint("give the CA that signed it with the url option ca=FILE or AWS_CA_BUNDLE");
    case CURLE_OUT_OF_MEMORY: return Err(Code::kInternal, "out of memory in libcurl");
    case CURLE_ABORTED_BY_CALLBACK:
      if (t.deadline_hit) {
        return ErrRetryable(Code::kUnavailable, "timed out after {} ms", t.allowed.count());
      }
      return ErrRetryable(Code::kUnavailable, "aborted: {}", what);
    case CURLE_OPERATION_TIMEDOUT: return ErrRetryable(Code::kUnavailable, "timed out: {}", what);
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM: return ErrRetryable(Code::kUnavailable, "{}", what);
    default: return Err(Code::kIo, "{}", what);
  }
}

}  // namespace

std::optional<int64_t> ParseHttpDate(std::string_view s) {
  // "Sun, 06 Nov 1994 08:49:37 GMT"
  static constexpr std::string_view kMonths = "JanFebMarAprMayJunJulAugSepOctNovDec";
  if (s.size() != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
      s[19] != ':' || s[22] != ':' || s.substr(25) != " GMT") {
    return std::nullopt;
  }
  auto num = [&](size_t pos, size_t n, int& out) {
    const auto [end, ec] = std::from_chars(s.data() + pos, s.data() + pos + n, out);
    return ec == std::errc() && end == s.data() + pos + n;
  };
  std::tm tm{};
  const size_t month = kMonths.find(s.substr(8, 3));
  int year = 0;
  if (month == std::string_view::npos || month % 3 != 0 || !num(5, 2, tm.tm_mday) ||
      !num(12, 4, year) || !num(17, 2, tm.tm_hour) || !num(20, 2, tm.tm_min) ||
      !num(23, 2, tm.tm_sec)) {
    return std::nullopt;
  }
  tm.tm_mon = static_cast<int>(month / 3);
  tm.tm_year = year - 1900;
  return static_cast<int64_t>(timegm(&tm));
}

struct HttpClient::Shared {
  CURLSH* share = nullptr;
  std::array<std::mutex, CURL_LOCK_DATA_LAST> locks;

  static void Lock(CURL*, curl_lock_data data, curl_lock_access, void* user) {
    static_cast<Shared*>(user)->locks[data].lock();
  }
  static void Unlock(CURL*, curl_lock_data data, void* user) {
    static_cast<Shared*>(user)->locks[data].unlock();
  }
  ~Shared() {
    if (share != nullptr) curl_share_cleanup(share);
  }
};

const std::string* HttpResponse::Header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (n == name) return &v;
  }
  return nullptr;
}

HttpClient::HttpClient(HttpClientOptions options)
    : options_(std::move(options)), shared_(std::make_unique<Shared>()) {}

HttpClient::~HttpClient() {
  // Handles go before the share they point to.
  for (void* h : idle_) {
    curl_easy_cleanup(static_cast<Handle*>(h)->curl);
    delete static_cast<Handle*>(h);
  }
}

Result<std::unique_ptr<HttpClient>> HttpClient::Create(HttpClientOptions options) {
  static std::once_flag global_init;
  static CURLcode global_rc = CURLE_OK;
  std::call_once(global_init, [] { global_rc = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (global_rc != CURLE_OK) {
    return Err(Code::kInternal, "libcurl initialisation failed: {}", curl_easy_strerror(global_rc));
  }
  if (options.min_rate_bytes_per_sec == 0) {
    return Err(Code::kInvalidArgument, "http client: min_rate_bytes_per_sec must be positive");
  }
  std::unique_ptr<HttpClient> client(new HttpClient(std::move(options)));
  Shared& s = *client->shared_;
  s.share = curl_share_init();
  if (s.share == nullptr) return Err(Code::kInternal, "curl_share_init failed");
  if (curl_share_setopt(s.share, CURLSHOPT_LOCKFUNC, &Shared::Lock) != CURLSHE_OK ||
      curl_share_setopt(s.share, CURLSHOPT_UNLOCKFUNC, &Shared::Unlock) != CURLSHE_OK ||
      curl_share_setopt(s.share, CURLSHOPT_USERDATA, &s) != CURLSHE_OK ||
      curl_share_setopt(s.share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK ||
      curl_share_setopt(s.share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK) {
    return Err(Code::kInternal, "curl_share_setopt failed");
  }
  return client;
}

void* HttpClient::AcquireHandle() {
  {
    std::lock_guard lock(mu_);
    if (!idle_.empty()) {
      void* h = idle_.back();
      idle_.pop_back();
      // Clears the options of the previous request; the open connection stays.
      curl_easy_reset(static_cast<Handle*>(h)->curl);
      return h;
    }
  }
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return nullptr;
  return new Handle{.curl = curl};
}

void HttpClient::ReleaseHandle(void* handle) {
  {
    std::lock_guard lock(mu_);
    if (idle_.size() < options_.max_idle_connections) {
      idle_.push_back(handle);
      return;
    }
  }
  curl_easy_cleanup(static_cast<Handle*>(handle)->curl);
  delete static_cast<Handle*>(handle);
}

Result<HttpResponse> HttpClient::Send(const HttpRequest& request) {
  auto* handle = static_cast<Handle*>(AcquireHandle());
  if (handle == nullptr) return Err(Code::kInternal, "curl_easy_init failed");
  CURL* curl = handle->curl;

  Transfer t;
  t.handle = handle;
  t.request = &request;
  t.start = Clock::now();
  t.base_timeout = options_.request_timeout;
  t.min_rate = options_.min_rate_bytes_per_sec;
  std::array<char, CURL_ERROR_SIZE> error{};

  curl_slist* headers = nullptr;
  for (const auto& [name, value] : request.headers) {
    headers = curl_slist_append(headers, fmt::format("{}: {}", name, value).c_str());
  }
  // No "Expect: 100-continue" round trip before every body: S3 requests are signed, so a
  // refused upload costs one wasted body at most, and some proxies mishandle Expect.
  headers = curl_slist_append(headers, "Expect:");
  if (request.method == "POST")
    headers = curl_slist_append(headers, "Content-Type: application/xml");

  const uint64_t known_bytes =
      std::max<uint64_t>(request.body.size(), request.expected_response_bytes);
  const auto timeout =
      options_.request_timeout + std::chrono::milliseconds(known_bytes * 1000 / t.min_rate);

  curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(curl, CURLOPT_SHARE, shared_->share);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_PATH_AS_IS, 1L);  // the signed path must be the sent path
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  if (request.fresh_connection) curl_easy_setopt(curl, CURLOPT_FRESH_CONNECT, 1L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);  // threads: no SIGALRM for DNS timeouts
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error.data());
  const auto connect_timeout = request.connect_timeout.value_or(options_.connect_timeout);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(connect_timeout.count()));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, static_cast<long>(options_.low_speed_bytes));
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME,
                   static_cast<long>(options_.low_speed_time.count()));
  if (!options_.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, options_.ca_file.c_str());
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &OnHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, &OnProgress);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &t);
  curl_easy_setopt(curl, CURLOPT_SOCKOPTFUNCTION, &OnSocket);
  curl_easy_setopt(curl, CURLOPT_SOCKOPTDATA, handle);

  if (request.method == "GET") {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  } else if (request.method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else if (request.method == "PUT") {
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, &OnRead);
    curl_easy_setopt(curl, CURLOPT_READDATA, &t);
    curl_easy_setopt(curl, CURLOPT_SEEKFUNCTION, &OnSeek);
    curl_easy_setopt(curl, CURLOPT_SEEKDATA, &t);
  } else if (request.method == "POST") {
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(request.body.size()));
    curl_easy_setopt(
        curl, CURLOPT_POSTFIELDS,
        request.body.empty() ? "" : reinterpret_cast<const char*>(request.body.data()));
  } else {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, std::string(request.method).c_str());
  }

  const CURLcode rc = curl_easy_perform(curl);
  curl_slist_free_all(headers);
  if (rc != CURLE_OK) {
    // A handle whose transfer failed may hold a broken connection; curl closes those itself,
    // so the handle is still fine to reuse.
    ReleaseHandle(handle);
    return TransportError(rc, error.data(), t);
  }
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  ReleaseHandle(handle);
  t.response.status = status;

  // curl reports most short bodies as CURLE_PARTIAL_FILE; this also catches the rest.
  if (request.method != "HEAD" && status >= 200 && status < 300 && t.content_length &&
      t.response.body.size() != *t.content_length) {
    return ErrRetryable(Code::kUnavailable, "truncated response: {} of {} bytes",
                        t.response.body.size(), *t.content_length);
  }
  return std::move(t.response);
}

}  // namespace lb::storage
