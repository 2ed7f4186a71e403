#include "ops/http.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>

#include "util/log.h"

namespace lb::ops {

namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = char(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

bool IsTokenChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

std::string_view Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
  }
  return "Unknown";
}

// Compares without an early exit, so the time taken says nothing of where they differ.
bool SameSecret(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace

HttpParse ParseHttpRequest(std::string_view data, size_t max_head) {
  HttpParse p;
  size_t end = data.find("\r\n\r\n");
  size_t sep = 4;
  if (end == std::string_view::npos) {
    end = data.find("\n\n");  // bare LF line ends, tolerated
    sep = 2;
  }
  if (end == std::string_view::npos) {
    if (data.size() > max_head) {
      p.state = HttpParse::State::kBad;
      p.status = 431;
      p.error = "request head too large";
    }
    return p;
  }
  if (end + sep > max_head) {
    p.state = HttpParse::State::kBad;
    p.status = 431;
    p.error = "request head too large";
    return p;
  }
  auto bad = [&](int status, std::string why) {
    p.state = HttpParse::State::kBad;
    p.status = status;
    p.error = std::move(why);
    return p;
  };
  std::string_view head = data.substr(0, end);
  size_t nl = head.find('\n');
  std::string_view line = Trim(head.substr(0, nl));
  std::string_view rest = nl == std::string_view::npos ? std::string_view() : head.substr(nl + 1);
  size_t s1 = line.find(' ');
  size_t s2 = s1 == std::string_view::npos ? s1 : line.find(' ', s1 + 1);
  if (s1 == std::string_view::npos || s2 == std::string_view::npos ||
      line.find(' ', s2 + 1) != std::string_view::npos)
    return bad(400, "malformed request line");
  HttpRequest& r = p.request;
  r.method = std::string(line.substr(0, s1));
  r.target = std::string(line.substr(s1 + 1, s2 - s1 - 1));
  r.version = std::string(line.substr(s2 + 1));
  if (r.method.empty() || !std::all_of(r.method.begin(), r.method.end(), IsTokenChar))
    return bad(400, "malformed method");
  if (r.version != "HTTP/1.1" && r.version != "HTTP/1.0") {
    if (r.version.rfind("HTTP/", 0) == 0) return bad(505, "unsupported HTTP version");
    return bad(400, "malformed request line");
  }
  if (r.target.empty() || r.target[0] != '/')
    return bad(400, "the target must be an absolute path");
  for (char c : r.target)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
      return bad(400, "bad character in target");
  size_t q = r.target.find('?');
  r.path = r.target.substr(0, q);
  if (q != std::string::npos) r.query = r.target.substr(q + 1);
  while (!rest.empty()) {
    size_t e = rest.find('\n');
    std::string_view h = rest.substr(0, e);
    rest = e == std::string_view::npos ? std::string_view() : rest.substr(e + 1);
    if (!h.empty() && h.back() == '\r') h.remove_suffix(1);
    if (h.empty()) continue;
    if (h[0] == ' ' || h[0] == '\t') return bad(400, "obsolete header folding");
    size_t colon = h.find(':');
    if (colon == std::string_view::npos || colon == 0) return bad(400, "malformed header");
    std::string_view name = h.substr(0, colon);
    if (!std::all_of(name.begin(), name.end(), IsTokenChar))
      return bad(400, "malformed header name");
    std::string key = Lower(name);
    std::string value(Trim(h.substr(colon + 1)));
    auto [it, inserted] = r.headers.emplace(key, value);
    if (!inserted) {
      if (key == "host" || key == "authorization" || key == "content-length")
        return bad(400, fmt::format("header '{}' given twice", key));
      it->second += ", " + value;
    }
  }
  if (r.version == "HTTP/1.1" && !r.headers.count("host")) return bad(400, "missing Host header");
  if (r.headers.count("transfer-encoding")) return bad(501, "request bodies are not accepted");
  if (auto it = r.headers.find("content-length"); it != r.headers.end() && it->second != "0")
    return bad(501, "request bodies are not accepted");
  p.state = HttpParse::State::kComplete;
  return p;
}

std::string QueryValue(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view item = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    size_t eq = item.find('=');
    if (item.substr(0, eq) != name) continue;
    return eq == std::string_view::npos ? std::string() : std::string(item.substr(eq + 1));
  }
  return "";
}

std::string SerializeResponse(const HttpResponse& r, bool head) {
  std::string out = fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n"
      "Connection: close\r\nCache-Control: no-store\r\n",
      r.status, Reason(r.status), r.content_type, r.body.size());
  for (const auto& [k, v] : r.headers) out += k + ": " + v + "\r\n";
  out += "\r\n";
  if (!head) out += r.body;
  return out;
}

bool IsLoopbackHost(std::string_view host) {
  if (host == "localhost" || host == "::1") return true;
  in_addr a{};
  std::string h(host);
  if (inet_pton(AF_INET, h.c_str(), &a) == 1) return (ntohl(a.s_addr) >> 24) == 127;
  return false;
}

Result<ListenAddress> ParseListenAddress(std::string_view text) {
  ListenAddress a;
  std::string_view port;
  if (text.starts_with("[")) {
    size_t close = text.find("]:");
    if (close == std::string_view::npos)
      return Err(Code::kInvalidArgument, "listen address '{}' is not [HOST]:PORT", text);
    a.host = std::string(text.substr(1, close - 1));
    port = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos ||
        text.substr(0, colon).find(':') != std::string_view::npos)
      return Err(Code::kInvalidArgument, "listen address '{}' is not HOST:PORT", text);
    a.host = std::string(text.substr(0, colon));
    port = text.substr(colon + 1);
  }
  if (a.host.empty()) a.host = "127.0.0.1";
  auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), a.port);
  if (ec != std::errc() || p != port.data() + port.size() || a.port < 0 || a.port > 65535)
    return Err(Code::kInvalidArgument, "listen address '{}': bad port '{}'", text, port);
  return a;
}

Result<std::unique_ptr<HttpServer>> HttpServer::Listen(const std::string& address,
                                                       const std::string& token,
                                                       HttpHandler handler) {
  LB_ASSIGN_OR_RETURN(ListenAddress la, ParseListenAddress(address));
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string port = std::to_string(la.port);
  if (int rc = getaddrinfo(la.host.c_str(), port.c_str(), &hints, &res); rc != 0)
    return Err(Code::kInvalidArgument, "listen address '{}': {}", address, gai_strerror(rc));
  std::unique_ptr<HttpServer> s(new HttpServer());
  Status last = Err(Code::kIo, "listen on '{}': no address", address);
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd, 16) != 0) {
      last = ErrnoStatus(errno, fmt::format("listen on '{}'", address));
      ::close(fd);
      continue;
    }
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
    s->port_ = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                              : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    s->listen_fd_ = fd;
    break;
  }
  freeaddrinfo(res);
  if (s->listen_fd_ < 0) return last;
  int p[2];
  if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) return ErrnoStatus(errno, "pipe");
  s->wake_read_ = p[0];
  s->wake_write_ = p[1];
  s->host_ = la.host;
  s->token_ = token;
  s->handler_ = std::move(handler);
  return s;
}

HttpServer::~HttpServer() {
  Stop();
  for (int fd : {listen_fd_, wake_read_, wake_write_})
    if (fd >= 0) ::close(fd);
}

std::string HttpServer::address() const {
  return host_.find(':') != std::string::npos ? fmt::format("[{}]:{}", host_, port_)
                                              : fmt::format("{}:{}", host_, port_);
}

void HttpServer::Start() {
  thread_ = std::thread([this] { Serve(); });
}

void HttpServer::Stop() {
  if (!thread_.joinable()) return;
  char c = 1;
  ssize_t w = ::write(wake_write_, &c, 1);
  (void)w;
  thread_.join();
}

void HttpServer::Serve() {
  while (true) {
    pollfd p[2] = {{listen_fd_, POLLIN, 0}, {wake_read_, POLLIN, 0}};
    int r = ::poll(p, 2, -1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 || (p[1].revents & POLLIN)) return;
    if (!(p[0].revents & POLLIN)) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    timeval tv{.tv_sec = 5, .tv_usec = 0};
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    HandleConnection(fd);
    ::close(fd);
  }
}

void HttpServer::HandleConnection(int fd) {
  // A slow or silent client gets 5 seconds for its request: the one thread serves everyone.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  std::string data;
  HttpParse parsed;
  char buf[4096];
  while (true) {
    parsed = ParseHttpRequest(data);
    if (parsed.state != HttpParse::State::kIncomplete) break;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) {
      parsed.state = HttpParse::State::kBad;
      parsed.status = 408;
      parsed.error = "request timeout";
      break;
    }
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, int(left));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // the client went away
    data.append(buf, size_t(n));
  }
  HttpResponse resp;
  bool head = false;
  if (parsed.state == HttpParse::State::kBad) {
    resp.status = parsed.status;
    resp.body = parsed.error + "\n";
  } else {
    const HttpRequest& req = parsed.request;
    head = req.method == "HEAD";
    std::string auth;
    if (auto it = req.headers.find("authorization"); it != req.headers.end()) auth = it->second;
    if (req.method != "GET" && req.method != "HEAD") {
      resp.status = 405;
      resp.headers["Allow"] = "GET, HEAD";
      resp.body = "only GET and HEAD\n";
    } else if (!token_.empty() &&
               !(auth.rfind("Bearer ", 0) == 0 && SameSecret(auth.substr(7), token_))) {
      resp.status = 401;
      resp.headers["WWW-Authenticate"] = "Bearer realm=\"lifeboat\"";
      resp.body = "a bearer token is required\n";
    } else {
      resp = handler_(req);
    }
  }
  std::string out = SerializeResponse(resp, head);
  size_t sent = 0;
  while (sent < out.size()) {
    ssize_t n = ::send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    sent += size_t(n);
  }
}

}  // namespace lb::ops
