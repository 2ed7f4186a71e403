// A small HTTP/1.1 server for the daemon's status, metrics and dashboard: POSIX sockets,
// one thread, one request per connection (Connection: close), GET and HEAD only, an
// optional bearer token. Not a general web server: requests are small and few (a
// Prometheus scrape, a browser), so handling them one at a time is enough.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "util/status.h"

namespace lb::ops {

struct HttpRequest {
  std::string method = {};   // "GET"
  std::string target = {};   // "/status?x=1"
  std::string path = {};     // "/status" (percent-decoding is not needed by our paths)
  std::string query = {};    // "x=1"
  std::string version = {};  // "HTTP/1.1"
  std::map<std::string, std::string> headers = {};  // names lowercased, values trimmed
};

struct HttpParse {
  enum class State { kComplete, kIncomplete, kBad };
  State state = State::kIncomplete;
  HttpRequest request;
  int status = 400;        // kBad: the response status (400, 431, 501, 505)
  std::string error = {};  // kBad: why
};

// Parses the head of a request (request line and headers up to the blank line) from the
// bytes received so far. kIncomplete until the blank line arrives; kBad (status 431)
// when the head exceeds `max_head` bytes, 400 for a malformed line, 505 for a version
// other than HTTP/1.0 or 1.1. A body is not read (GET and HEAD have none).
HttpParse ParseHttpRequest(std::string_view data, size_t max_head = 16384);

// A value of a query string ("job=pg-full&limit=10"), "" when absent.
std::string QueryValue(std::string_view query, std::string_view name);

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body = {};
  std::map<std::string, std::string> headers = {};
};

// The response on the wire (status line, Content-Length, Connection: close); no body for
// HEAD.
std::string SerializeResponse(const HttpResponse& r, bool head);

// "127.0.0.1:9187", "[::1]:9187", "localhost:9187", ":9187"; port 0 picks a free port.
struct ListenAddress {
  std::string host = {};
  int port = 0;
};
Result<ListenAddress> ParseListenAddress(std::string_view text);
// 127.0.0.0/8, ::1 and "localhost".
bool IsLoopbackHost(std::string_view host);

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

class HttpServer {
 public:
  // Binds and listens. With a non-empty `token`, every request needs "Authorization: Bearer
  // TOKEN" (401 otherwise). Errors: kInvalidArgument for a bad address, kIo when binding
  // fails (the port is taken).
  static Result<std::unique_ptr<HttpServer>> Listen(const std::string& address,
                                                    const std::string& token, HttpHandler handler);
  ~HttpServer();  // stops
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }
  std::string address() const;  // "127.0.0.1:9187"
  // Serves on a thread of its own until Stop.
  void Start();
  void Stop();

 private:
  HttpServer() = default;
  void Serve();
  void HandleConnection(int fd);

  int listen_fd_ = -1;
  int wake_read_ = -1, wake_write_ = -1;
  int port_ = 0;
  std::string host_ = {};
  std::string token_ = {};
  HttpHandler handler_;
  std::thread thread_;
};

}  // namespace lb::ops
