#include "storage/fake_s3_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <ctime>

#include "storage/s3_xml.h"
#include "storage/sigv4.h"

namespace lb::storage {
namespace {

constexpr std::string_view kTokenMark = "t/+=";  // continuation tokens need encoding

std::string Md5Hex(ByteSpan data) {
  std::array<uint8_t, 16> out{};
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_md5(), nullptr) != 1) {
    std::abort();
  }
  return HexEncode(out);
}

std::string Decode(std::string_view s) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() + 0 && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

const char* Reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 412: return "Precondition Failed";
    case 416: return "Range Not Satisfiable";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Status";
  }
}

bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

}  // namespace

struct FakeS3Server::Request {
  std::string method;
  std::string raw_path;                                    // as received, still encoded
  std::string raw_query;                                   // as received
  std::vector<std::pair<std::string, std::string>> query;  // decoded
  std::map<std::string, std::string> headers;              // lower-case names
  Bytes body;

  bool Has(std::string_view name) const {
    return std::any_of(query.begin(), query.end(), [&](const auto& q) { return q.first == name; });
  }
  std::string Param(std::string_view name) const {
    for (const auto& [n, v] : query) {
      if (n == name) return v;
    }
    return {};
  }
  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

struct FakeS3Server::Response {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers = {};
  std::string body = {};
  // HEAD: the Content-Length of the object, without a body.
  std::optional<uint64_t> head_length = std::nullopt;

  static Response Error(int status, std::string_view code, std::string_view message = "") {
    return {.status = status,
            .headers = {{"Content-Type", "application/xml"}},
            .body = fmt::format("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code>"
                                "<Message>{}</Message><RequestId>fake</RequestId></Error>",
                                code, XmlEscape(message))};
  }
};

Result<std::unique_ptr<FakeS3Server>> FakeS3Server::Start(Options options) {
  std::unique_ptr<FakeS3Server> server(new FakeS3Server(std::move(options)));
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus(errno, "fake s3: socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 64) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const int err = errno;
    ::close(fd);
    return ErrnoStatus(err, "fake s3: listen on loopback");
  }
  server->listen_fd_ = fd;
  server->port_ = ntohs(addr.sin_port);
  server->acceptor_ = std::thread([s = server.get()] { s->AcceptLoop(); });
  return server;
}

FakeS3Server::~FakeS3Server() {
  std::vector<std::thread> workers;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    for (int fd : connections_) ::shutdown(fd, SHUT_RDWR);
  }
  stop_cv_.notify_all();
  ::shutdown(listen_fd_, SHUT_RDWR);
  if (acceptor_.joinable()) acceptor_.join();
  ::close(listen_fd_);
  {
    std::lock_guard lock(mu_);
    workers.swap(workers_);
  }
  for (auto& w : workers) w.join();
}

std::string FakeS3Server::endpoint() const { return fmt::format("http://127.0.0.1:{}", port_); }

void FakeS3Server::AddFault(Fault fault) {
  std::lock_guard lock(mu_);
  faults_.push_back(std::move(fault));
}

std::vector<std::string> FakeS3Server::requests() const {
  std::lock_guard lock(mu_);
  return log_;
}

size_t FakeS3Server::CountRequests(std::string_view method, std::string_view query_has) const {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (const std::string& line : log_) {
    if (!line.starts_with(method) || line[method.size()] != ' ') continue;
    if (!query_has.empty()) {
      const size_t q = line.find('?');
      if (q == std::string::npos) continue;
      const std::string query = "&" + line.substr(q + 1);
      if (query.find("&" + std::string(query_has) + "=") == std::string::npos) continue;
    }
    ++n;
  }
  return n;
}

std::optional<Bytes> FakeS3Server::Object(const std::string& key) const {
  std::lock_guard lock(mu_);
  auto it = objects_.find(key);
  if (it == objects_.end()) return std::nullopt;
  return it->second.data;
}

void FakeS3Server::SetObject(const std::string& key, Bytes data) {
  std::lock_guard lock(mu_);
  std::string etag = "\"" + Md5Hex(data) + "\"";
  objects_[key] = StoredObject{.data = std::move(data), .etag = std::move(etag)};
}

size_t FakeS3Server::UploadsInProgress() const {
  std::lock_guard lock(mu_);
  return uploads_.size();
}

void FakeS3Server::AcceptLoop() {
  while (true) {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    std::lock_guard lock(mu_);
    if (stopping_) {
      if (fd >= 0) ::close(fd);
      return;
    }
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;
    }
    connections_.insert(fd);
    workers_.emplace_back([this, fd] { Serve(fd); });
  }
}

void FakeS3Server::Serve(int fd) {
  std::string buf;
  char chunk[64 << 10];
  auto fill = [&](size_t want) {
    while (buf.size() < want) {
      const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
      if (n <= 0) return false;
      buf.append(chunk, static_cast<size_t>(n));
    }
    return true;
  };
  while (true) {
    size_t end;
    while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
      if (!fill(buf.size() + 1)) goto done;
    }
    {
      Request req;
      const std::string head = buf.substr(0, end);
      buf.erase(0, end + 4);
      size_t line_end = head.find("\r\n");
      const std::string request_line = head.substr(0, line_end);
      const size_t sp1 = request_line.find(' ');
      const size_t sp2 = request_line.find(' ', sp1 + 1);
      req.method = request_line.substr(0, sp1);
      const std::string target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
      const size_t q = target.find('?');
      req.raw_path = target.substr(0, q);
      if (q != std::string::npos) req.raw_query = target.substr(q + 1);
      for (std::string_view rest = req.raw_query; !rest.empty();) {
        const size_t amp = rest.find('&');
        const std::string_view item = rest.substr(0, amp);
        rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
        const size_t eq = item.find('=');
        req.query.emplace_back(Decode(item.substr(0, eq)),
                               eq == std::string_view::npos ? "" : Decode(item.substr(eq + 1)));
      }
      while (line_end != std::string::npos) {
        const size_t start = line_end + 2;
        line_end = head.find("\r\n", start);
        const std::string line = head.substr(start, line_end - start);
        const size_t colon = line.find(':');
        if (colon == std::string::npos) continue;
        std::string value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.erase(0, 1);
        req.headers[Lower(line.substr(0, colon))] = value;
      }
      size_t length = 0;
      if (auto it = req.headers.find("content-length"); it != req.headers.end()) {
        length = std::strtoull(it->second.c_str(), nullptr, 10);
      }
      if (!fill(length)) goto done;
      req.body.assign(buf.begin(), buf.begin() + static_cast<ptrdiff_t>(length));
      buf.erase(0, length);

      const std::string key =
          Decode(req.raw_path.substr(std::min(req.raw_path.size(), options_.bucket.size() + 2)));
      std::optional<Fault> fault;
      {
        std::lock_guard lock(mu_);
        log_.push_back(fmt::format("{} {}{}{}", req.method, req.raw_path,
                                   req.raw_query.empty() ? "" : "?", req.raw_query));
      }
      fault = TakeFault(req, key);
      if (fault && fault->kind == FaultKind::kReset) goto done;
      if (fault && fault->kind == FaultKind::kStall) {
        std::unique_lock lock(mu_);
        stop_cv_.wait_for(lock, fault->stall, [&] { return stopping_; });
        if (stopping_) goto done;
      }
      Response resp = fault && fault->kind == FaultKind::kStatus
                          ? Response::Error(fault->status, fault->code, "injected by the test")
                          : Handle(req);
      if (fault && fault->kind == FaultKind::kApplyThenReset) goto done;

      const uint64_t content_length = resp.head_length.value_or(resp.body.size());
      std::string out = fmt::format("HTTP/1.1 {} {}\r\nContent-Length: {}\r\n", resp.status,
                                    Reason(resp.status), content_length);
      for (const auto& [n, v] : resp.headers) out += fmt::format("{}: {}\r\n", n, v);
      out += "\r\n";
      if (req.method != "HEAD") {
        if (fault && fault->kind == FaultKind::kTruncate) {
          out += resp.body.substr(0, resp.body.size() / 2);
          WriteAll(fd, out);
          goto done;
        }
        out += resp.body;
      }
      if (!WriteAll(fd, out)) goto done;
    }
  }
done:
  std::lock_guard lock(mu_);
  connections_.erase(fd);
  ::close(fd);
}

std::optional<FakeS3Server::Fault> FakeS3Server::TakeFault(const Request& req,
                                                           const std::string& key) {
  std::lock_guard lock(mu_);
  for (Fault& f : faults_) {
    if (f.times <= 0) continue;
    if (!f.method.empty() && f.method != req.method) continue;
    if (!f.query_has.empty() && !req.Has(f.query_has)) continue;
    if (!f.key_contains.empty() && key.find(f.key_contains) == std::string::npos) continue;
    --f.times;
    return f;
  }
  return std::nullopt;
}

std::optional<FakeS3Server::Response> FakeS3Server::CheckSignature(const Request& req) const {
  const std::string auth = req.Header("authorization");
  constexpr std::string_view kAlgo = "AWS4-HMAC-SHA256 Credential=";
  if (!auth.starts_with(kAlgo)) return Response::Error(403, "AccessDenied", "unsigned request");
  const size_t comma1 = auth.find(",SignedHeaders=");
  const size_t comma2 = auth.find(",Signature=");
  if (comma1 == std::string::npos || comma2 == std::string::npos) {
    return Response::Error(400, "AuthorizationHeaderMalformed", "bad Authorization header");
  }
  const std::string credential = auth.substr(kAlgo.size(), comma1 - kAlgo.size());
  const std::string signed_names = auth.substr(comma1 + 15, comma2 - comma1 - 15);
  const std::string signature = auth.substr(comma2 + 11);
  // ID/DATE/REGION/s3/aws4_request
  std::vector<std::string> scope;
  for (size_t start = 0; start <= credential.size();) {
    const size_t slash = credential.find('/', start);
    scope.push_back(credential.substr(start, slash - start));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  if (scope.size() != 5) return Response::Error(400, "AuthorizationHeaderMalformed", "scope");
  if (scope[0] != options_.access_key_id) {
    return Response::Error(403, "InvalidAccessKeyId",
                           "The AWS Access Key Id you provided does not exist in our records.");
  }
  SigningInput in;
  in.method = req.method;
  // The path and query are canonicalised from their decoded form, so a client that sends
  // them encoded differently from how it signed them fails here, as with a real server.
  const std::string canonical_uri = UriEncode(Decode(req.raw_path), true);
  const std::string canonical_query = CanonicalQueryString(req.query);
  in.canonical_uri = canonical_uri;
  in.canonical_query = canonical_query;
  for (size_t start = 0; start < signed_names.size();) {
    const size_t semi = signed_names.find(';', start);
    const std::string name = signed_names.substr(start, semi - start);
    in.headers.emplace_back(name, req.Header(name));
    if (semi == std::string::npos) break;
    start = semi + 1;
  }
  const std::string payload = req.Header("x-amz-content-sha256");
  const std::string date = req.Header("x-amz-date");
  in.payload_sha256 = payload;
  in.amz_date = date;
  in.region = scope[2];
  if (Signature(in, options_.secret_access_key) != signature) {
    return Response::Error(403, "SignatureDoesNotMatch",
                           "The request signature we calculated does not match the signature "
                           "you provided. Check your key and signing method.");
  }
  if (payload != Sha256Hex(req.body)) {
    return Response::Error(400, "XAmzContentSHA256Mismatch",
                           "The provided 'x-amz-content-sha256' header does not match what was "
                           "computed.");
  }
  return std::nullopt;
}

FakeS3Server::Response FakeS3Server::Handle(const Request& req) {
  if (auto refused = CheckSignature(req)) return *refused;
  const std::string prefix = "/" + options_.bucket;
  if (req.raw_path != prefix && !req.raw_path.starts_with(prefix + "/")) {
    return Response::Error(404, "NoSuchBucket", "The specified bucket does not exist");
  }
  const std::string key =
      Decode(req.raw_path.substr(std::min(req.raw_path.size(), prefix.size() + 1)));
  if (key.empty()) {
    if (req.method == "GET" && req.Param("list-type") == "2") return HandleList(req);
    if (req.method == "GET" && req.Has("uploads")) return HandleListUploads(req);
    return Response::Error(400, "InvalidRequest", "unsupported bucket request");
  }
  return HandleObject(req, key);
}

FakeS3Server::Response FakeS3Server::HandleObject(const Request& req, const std::string& key) {
  std::lock_guard lock(mu_);
  // Every object was modified at 1700000000.
  const std::string http_date = "Tue, 14 Nov 2023 22:13:20 GMT";
  if (req.method == "POST" && req.Has("uploads")) {
    const std::string id = fmt::format("up~{}/x+y=", next_upload_++);
    uploads_[id] = Upload{.key = key, .parts = {}};
    return {.status = 200,
            .body = fmt::format("<InitiateMultipartUploadResult><Bucket>{}</Bucket><Key>{}</Key>"
                                "<UploadId>{}</UploadId></InitiateMultipartUploadResult>",
                                options_.bucket, XmlEscape(key), XmlEscape(id))};
  }
  if (req.Has("uploadId")) {
    auto it = uploads_.find(req.Param("uploadId"));
    if (it == uploads_.end() || it->second.key != key) {
      return Response::Error(404, "NoSuchUpload", "The specified upload does not exist.");
    }
    if (req.method == "PUT") {
      const int number = std::atoi(req.Param("partNumber").c_str());
      it->second.parts[number] = req.body;
      return {.status = 200, .headers = {{"ETag", "\"" + Md5Hex(req.body) + "\""}}};
    }
    if (req.method == "DELETE") {
      uploads_.erase(it);
      return {.status = 204};
    }
    if (req.method == "POST") {
      auto doc = ParseXml(AsString(req.body));
      if (!doc.ok()) return Response::Error(400, "MalformedXML", doc.status().message());
      Bytes data;
      std::string md5s;
      int count = 0;
      for (const XmlElement& part : doc->children) {
        const int number = std::atoi(part.ChildText("PartNumber").c_str());
        auto p = it->second.parts.find(number);
        if (p == it->second.parts.end() ||
            part.ChildText("ETag") != "\"" + Md5Hex(p->second) + "\"") {
          return Response::Error(400, "InvalidPart", "part missing or ETag differs");
        }
        if (count + 1 < static_cast<int>(doc->children.size()) &&
            p->second.size() < options_.min_part_size) {
          return Response::Error(400, "EntityTooSmall",
                                 "Your proposed upload is smaller than the minimum allowed size");
        }
        Bytes bin;
        HexDecode(Md5Hex(p->second), bin);
        md5s.append(bin.begin(), bin.end());
        data.insert(data.end(), p->second.begin(), p->second.end());
        ++count;
      }
      const std::string etag = fmt::format("\"{}-{}\"", Md5Hex(AsBytes(md5s)), count);
      objects_[key] = StoredObject{.data = std::move(data), .etag = etag};
      uploads_.erase(it);
      return {.status = 200,
              .body = fmt::format("<CompleteMultipartUploadResult><Key>{}</Key><ETag>{}</ETag>"
                                  "</CompleteMultipartUploadResult>",
                                  XmlEscape(key), XmlEscape(etag))};
    }
    return Response::Error(400, "InvalidRequest", "unsupported upload request");
  }

  auto it = objects_.find(key);
  if (req.method == "PUT") {
    if (options_.honour_if_none_match && req.Header("if-none-match") == "*" &&
        it != objects_.end()) {
      return Response::Error(412, "PreconditionFailed",
                             "At least one of the pre-conditions you specified did not hold");
    }
    const std::string etag = "\"" + Md5Hex(req.body) + "\"";
    objects_[key] = StoredObject{.data = req.body, .etag = etag};
    return {.status = 200, .headers = {{"ETag", etag}}};
  }
  if (req.method == "DELETE") {
    if (it != objects_.end()) objects_.erase(it);
    return {.status = 204};
  }
  if (it == objects_.end()) {
    if (req.method == "HEAD") return {.status = 404};
    return Response::Error(404, "NoSuchKey", "The specified key does not exist.");
  }
  const StoredObject& obj = it->second;
  const std::vector<std::pair<std::string, std::string>> meta = {{"ETag", obj.etag},
                                                                 {"Last-Modified", http_date}};
  if (req.method == "HEAD") {
    return {.status = 200, .headers = meta, .body = {}, .head_length = obj.data.size()};
  }
  if (req.method != "GET") return Response::Error(400, "InvalidRequest", "unsupported method");
  const std::string range = req.Header("range");
  if (range.empty())
    return {.status = 200, .headers = meta, .body = std::string(AsString(obj.data))};
  uint64_t first = 0;
  uint64_t last = 0;
  const size_t dash = range.find('-');
  if (!range.starts_with("bytes=") || dash == std::string::npos) {
    return Response::Error(400, "InvalidArgument", "bad range");
  }
  std::from_chars(range.data() + 6, range.data() + dash, first);
  std::from_chars(range.data() + dash + 1, range.data() + range.size(), last);
  const uint64_t size = obj.data.size();
  if (first >= size) {
    Response r = Response::Error(416, "InvalidRange", "The requested range is not satisfiable");
    r.headers.emplace_back("Content-Range", fmt::format("bytes */{}", size));
    return r;
  }
  last = std::min(last, size - 1);
  Response r{.status = 206,
             .headers = meta,
             .body = std::string(AsString(ByteSpan(obj.data).subspan(first, last - first + 1)))};
  r.headers.emplace_back("Content-Range", fmt::format("bytes {}-{}/{}", first, last, size));
  return r;
}

FakeS3Server::Response FakeS3Server::HandleList(const Request& req) {
  std::lock_guard lock(mu_);
  const std::string prefix = req.Param("prefix");
  const std::string token = req.Param("continuation-token");
  int max_keys = 1000;
  if (req.Has("max-keys")) max_keys = std::min(1000, std::atoi(req.Param("max-keys").c_str()));
  std::string after;
  if (!token.empty()) {
    if (!token.starts_with(kTokenMark)) {
      return Response::Error(400, "InvalidArgument",
                             "The continuation token provided is incorrect");
    }
    after = token.substr(kTokenMark.size());
  }
  std::string body =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult "
      "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">";
  int count = 0;
  std::string last;
  bool truncated = false;
  for (auto it = after.empty() ? objects_.lower_bound(prefix) : objects_.upper_bound(after);
       it != objects_.end() && it->first.starts_with(prefix); ++it) {
    if (count == max_keys) {
      truncated = true;
      break;
    }
    body += fmt::format(
        "<Contents><Key>{}</Key><LastModified>2023-11-14T22:13:20.000Z</LastModified>"
        "<ETag>{}</ETag><Size>{}</Size><StorageClass>STANDARD</StorageClass></Contents>",
        XmlEscape(it->first), XmlEscape(it->second.etag), it->second.data.size());
    last = it->first;
    ++count;
  }
  body += fmt::format("<KeyCount>{}</KeyCount><IsTruncated>{}</IsTruncated>", count,
                      truncated ? "true" : "false");
  if (truncated) {
    body += fmt::format("<NextContinuationToken>{}</NextContinuationToken>",
                        XmlEscape(std::string(kTokenMark) + last));
  }
  body += "</ListBucketResult>";
  return {.status = 200, .body = body};
}

FakeS3Server::Response FakeS3Server::HandleListUploads(const Request& req) {
  std::lock_guard lock(mu_);
  const std::string prefix = req.Param("prefix");
  std::string body = "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated>";
  for (const auto& [id, upload] : uploads_) {
    if (!upload.key.starts_with(prefix)) continue;
    body += fmt::format("<Upload><Key>{}</Key><UploadId>{}</UploadId></Upload>",
                        XmlEscape(upload.key), XmlEscape(id));
  }
  body += "</ListMultipartUploadsResult>";
  return {.status = 200, .body = body};
}

}  // namespace lb::storage
