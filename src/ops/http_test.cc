// HTTP request parsing, listen addresses, and one request through a server on a free
// loopback port (with and without the bearer token).
#include "ops/http.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace lb::ops {
namespace {

TEST(HttpParseTest, CompleteRequest) {
  auto p = ParseHttpRequest(
      "GET /history?job=pg-full&limit=10 HTTP/1.1\r\nHost: x\r\n"
      "Authorization:  Bearer abc \r\nAccept: a\r\naccept: b\r\n\r\n");
  ASSERT_EQ(p.state, HttpParse::State::kComplete) << p.error;
  EXPECT_EQ(p.request.method, "GET");
  EXPECT_EQ(p.request.path, "/history");
  EXPECT_EQ(p.request.query, "job=pg-full&limit=10");
  EXPECT_EQ(p.request.headers.at("authorization"), "Bearer abc");
  EXPECT_EQ(p.request.headers.at("accept"), "a, b");
  EXPECT_EQ(QueryValue(p.request.query, "job"), "pg-full");
  EXPECT_EQ(QueryValue(p.request.query, "limit"), "10");
  EXPECT_EQ(QueryValue(p.request.query, "jo"), "");
}

TEST(HttpParseTest, IncompleteUntilTheBlankLine) {
  EXPECT_EQ(ParseHttpRequest("").state, HttpParse::State::kIncomplete);
  EXPECT_EQ(ParseHttpRequest("GET / HTTP/1.1\r\nHost: x\r\n").state, HttpParse::State::kIncomplete);
  EXPECT_EQ(ParseHttpRequest("GET / HTTP/1.0\n\n").state, HttpParse::State::kComplete);
}

TEST(HttpParseTest, BadRequests) {
  struct Case {
    std::string text;
    int status;
  };
  for (const auto& c : std::vector<Case>{
           {"GET /\r\n\r\n", 400},
           {"GET / HTTP/1.1 x\r\nHost: x\r\n\r\n", 400},
           {"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505},
           {"GET / FTP/1.0\r\n\r\n", 400},
           {"GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n", 400},
           {"GET / HTTP/1.1\r\n\r\n", 400},  // no Host
           {"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400},
           {"GET / HTTP/1.1\r\nHost: x\r\nno colon\r\n\r\n", 400},
           {"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400},
           {"GET / HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n", 400},
           {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", 501},
           {"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", 501},
           {"G(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
       }) {
    auto p = ParseHttpRequest(c.text);
    EXPECT_EQ(p.state, HttpParse::State::kBad) << c.text;
    EXPECT_EQ(p.status, c.status) << c.text << ": " << p.error;
  }
  std::string huge = "GET / HTTP/1.1\r\nHost: x\r\nX: " + std::string(20000, 'a');
  auto p = ParseHttpRequest(huge);
  EXPECT_EQ(p.state, HttpParse::State::kBad);
  EXPECT_EQ(p.status, 431);
}

TEST(HttpParseTest, ListenAddresses) {
  auto a = ParseListenAddress("127.0.0.1:9187");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 9187);
  a = ParseListenAddress("[::1]:80");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "::1");
  a = ParseListenAddress(":0");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  for (const char* bad : {"localhost", "1.2.3.4:x", "1.2.3.4:70000", "::1:80", "[::1]80"})
    EXPECT_FALSE(ParseListenAddress(bad).ok()) << bad;
  EXPECT_TRUE(IsLoopbackHost("127.0.0.1"));
  EXPECT_TRUE(IsLoopbackHost("127.3.2.1"));
  EXPECT_TRUE(IsLoopbackHost("::1"));
  EXPECT_TRUE(IsLoopbackHost("localhost"));
  EXPECT_FALSE(IsLoopbackHost("0.0.0.0"));
  EXPECT_FALSE(IsLoopbackHost("10.0.0.1"));
  EXPECT_FALSE(IsLoopbackHost("::"));
}

TEST(HttpParseTest, Serialize) {
  HttpResponse r{.status = 404, .content_type = "text/plain", .body = "nope", .headers = {}};
  EXPECT_EQ(SerializeResponse(r, false),
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n"
            "Connection: close\r\nCache-Control: no-store\r\n\r\nnope");
  EXPECT_EQ(SerializeResponse(r, true).find("nope"), std::string::npos);
}

std::string Fetch(int port, const std::string& request) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(uint16_t(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  EXPECT_EQ(::send(fd, request.data(), request.size(), 0), ssize_t(request.size()));
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, size_t(n));
  ::close(fd);
  return out;
}

TEST(HttpServerTest, ServesAndChecksTheToken) {
  auto s = HttpServer::Listen("127.0.0.1:0", "s3cret", [](const HttpRequest& r) {
    return HttpResponse{
        .status = 200, .content_type = "text/plain", .body = "path " + r.path, .headers = {}};
  });
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  (*s)->Start();
  int port = (*s)->port();
  ASSERT_GT(port, 0);
  std::string ok =
      Fetch(port, "GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret\r\n\r\n");
  EXPECT_EQ(ok.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << ok;
  EXPECT_NE(ok.find("\r\n\r\npath /metrics"), std::string::npos);
  EXPECT_EQ(Fetch(port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").rfind("HTTP/1.1 401", 0), 0u);
  EXPECT_EQ(Fetch(port, "GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cre\r\n\r\n")
                .rfind("HTTP/1.1 401", 0),
            0u);
  EXPECT_EQ(Fetch(port, "DELETE / HTTP/1.1\r\nHost: x\r\n\r\n").rfind("HTTP/1.1 405", 0), 0u);
  EXPECT_EQ(Fetch(port, "nonsense\r\n\r\n").rfind("HTTP/1.1 400", 0), 0u);
  (*s)->Stop();
}

}  // namespace
}  // namespace lb::ops
