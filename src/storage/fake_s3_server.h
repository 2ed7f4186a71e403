// A small S3 imitation on a free loopback port, for the s3 driver's unit tests: one bucket,
// objects with ranges, ListObjectsV2, multipart uploads, SigV4 checking, and scripted faults
// (error answers, resets, truncated bodies, stalls) that a real server cannot be made to
// produce on cue. Real-server behaviour is tested against Ceph RGW (tests/s3/rgw.py).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "util/bytes.h"
#include "util/status.h"

namespace lb::storage {

class FakeS3Server {
 public:
  struct Options {
    std::string bucket = "bucket";
    std::string access_key_id = "AKIDFAKES3SERVER";
    std::string secret_access_key = "fake-s3-secret/Key+1";
    bool honour_if_none_match = true;  // false: like servers that ignore it
    uint64_t min_part_size = 0;        // EntityTooSmall for smaller parts but the last
  };

  enum class FaultKind {
    kStatus,          // answer `status` with an <Error> of `code`
    kReset,           // close the connection without acting or answering
    kApplyThenReset,  // act on the request, then close without answering
    kTruncate,        // act, answer with the full Content-Length but half the body, close
    kStall,           // wait `stall` (or until Stop), then act and answer normally
  };
  struct Fault {
    std::string method = {};        // only this method; "" for any
    std::string query_has = {};     // only requests with this query parameter; "" for any
    std::string key_contains = {};  // only keys containing this; "" for any
    int times = 1;                  // matching requests it fires on, then it is spent
    FaultKind kind = FaultKind::kStatus;
    int status = 503;
    std::string code = "SlowDown";
    std::chrono::milliseconds stall{0};
  };

  // Starts listening on 127.0.0.1 at a free port; kIo if it cannot.
  static Result<std::unique_ptr<FakeS3Server>> Start(Options options);
  ~FakeS3Server();
  FakeS3Server(const FakeS3Server&) = delete;
  FakeS3Server& operator=(const FakeS3Server&) = delete;

  std::string endpoint() const;  // "http://127.0.0.1:PORT"
  const Options& options() const { return options_; }

  void AddFault(Fault fault);
  // "METHOD /path?query" of every request received, in order.
  std::vector<std::string> requests() const;
  // Requests with this method (and this query parameter, if given).
  size_t CountRequests(std::string_view method, std::string_view query_has = "") const;
  // The stored object `key`, or nullopt.
  std::optional<Bytes> Object(const std::string& key) const;
  void SetObject(const std::string& key, Bytes data);
  size_t UploadsInProgress() const;

 private:
  struct Request;
  struct Response;
  struct StoredObject {
    Bytes data;
    std::string etag;  // quoted
  };
  struct Upload {
    std::string key;
    std::map<int, Bytes> parts;
  };

  explicit FakeS3Server(Options options) : options_(std::move(options)) {}
  void AcceptLoop();
  void Serve(int fd);
  Response Handle(const Request& request);
  Response HandleObject(const Request& request, const std::string& key);
  Response HandleList(const Request& request);
  Response HandleListUploads(const Request& request);
  std::optional<Response> CheckSignature(const Request& request) const;
  std::optional<Fault> TakeFault(const Request& request, const std::string& key);

  const Options options_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::thread acceptor_;

  mutable std::mutex mu_;
  std::condition_variable stop_cv_;
  // Guarded by mu_:
  bool stopping_ = false;
  std::set<int> connections_;
  std::vector<std::thread> workers_;
  std::map<std::string, StoredObject> objects_;
  std::map<std::string, Upload> uploads_;
  uint64_t next_upload_ = 1;
  std::vector<Fault> faults_;
  std::vector<std::string> log_;
};

}  // namespace lb::storage
