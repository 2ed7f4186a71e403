// The s3 driver: a repository is a key prefix in a bucket of an S3-compatible object store
// (AWS S3, Ceph RGW, MinIO); object "a/b" is the key "PREFIX/a/b".
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "storage/http_client.h"
#include "storage/s3_options.h"
#include "storage/s3_xml.h"
#include "storage/storage.h"

namespace lb::storage {

// How each Storage operation maps to S3:
// - Put: one PUT (S3 makes an object visible only whole), or for non-exclusive objects above
//   multipart_threshold a multipart upload, aborted on failure, whose object appears only at
//   CompleteMultipartUpload. Bodies are signed with their real SHA-256, so the server
//   rejects any byte changed in transit.
// - Put exclusive: PUT with If-None-Match: *; 412 is kAlreadyExists. When an earlier attempt
//   of the same put failed without an answer (reset, timeout, 5xx) and a retry gets 412, the
//   first attempt may have been the one that created the object: the stored object is then
//   compared with `data` (ETag = MD5 for a single PUT, else the bytes) and the put succeeds
//   when they are identical. Servers that ignore If-None-Match (S3ConditionalPut::kOff, or
//   found by the probe of kAuto) get HEAD then PUT, which two racing writers can both pass;
//   caps().atomic_exclusive_put says which.
// - Get / GetRange: GET, with Range: bytes=a-b. Stat: HEAD. Remove: HEAD then DELETE (S3's
//   DELETE answers 204 whether or not the key existed). A HEAD answer has no body, so Stat
//   and Remove in a bucket that does not exist report kNotFound, not the missing bucket; a
//   HEAD refused otherwise (403, ...) is asked again as a GET of one byte, whose answer
//   carries S3's error code for the message (a wrong secret, not "access denied").
// - List: ListObjectsV2, max_keys per page, following continuation tokens.
// Retries: transport failures, 5xx but 501, 429, SlowDown, RequestTimeout, conflicting
// conditional requests and truncated bodies are retried with exponential backoff and full
// jitter, at most retry.max_attempts times and not after retry.max_total; everything else
// (400, 403, 404, 412, ...) fails at once. Until the server has answered anything, the
// smaller retry.unreached_* budget applies (set by UseFallbackRetryPolicy when another
// repository can be tried). An error after the last attempt says how many there were,
// names the endpoint in its hint, and stays retryable().
// Errors name the operation, the object's s3:// url, the HTTP status and S3's error code:
// "put 's3://bucket/prefix/data/ab12': HTTP 403 SignatureDoesNotMatch: ...", with a hint for
// what the user can fix. Credentials never appear in messages or logs.
// Thread safety: every method may be called concurrently.
class S3Storage final : public Storage {
 public:
  // Checks `options` (ValidateS3Options) and sets up the HTTP client. Makes no request, so a
  // wrong bucket or key shows at the first operation.
  static Result<std::unique_ptr<S3Storage>> Open(S3Options options);
  ~S3Storage() override;

  Status Put(std::string_view name, ByteSpan data, PutOptions opts = {}) override;
  Result<Bytes> Get(std::string_view name) override;
  Result<Bytes> GetRange(std::string_view name, uint64_t offset, uint64_t length) override;
  Result<ObjectInfo> Stat(std::string_view name) override;
  Status List(std::string_view prefix, const std::function<Status(const ObjectInfo&)>& fn) override;
  // Not atomic: between the HEAD and the DELETE another process may remove the object, and
  // then both removals succeed.
  Status Remove(std::string_view name) override;

  // "s3://bucket/prefix".
  std::string Location() const override { return location_; }
  // atomic_exclusive_put comes from S3Options::conditional_put; with kAuto on a server other
  // than AWS this runs the probe (three requests, once per S3Storage) if no exclusive put
  // has yet, and reports false if the probe cannot run.
  Capabilities caps() const override;

  // Multipart uploads under the repository prefix that were started and neither completed
  // nor aborted (a process killed mid-upload leaves them; they hold storage until aborted or
  // removed by a bucket lifecycle rule). For cleanup and tests.
  Result<std::vector<S3Upload>> ListUploads();
  Status AbortUpload(const S3Upload& upload);

 private:
  struct Call;
  struct Reply;

  S3Storage(S3Options options, S3Endpoint endpoint, std::unique_ptr<HttpClient> http);

  std::string KeyOf(std::string_view name) const;
  std::string UrlOf(const std::string& key) const;
  // Sends `call`, retrying what is worth retrying. Any HTTP answer that is not retried is a
  // Reply (also 4xx); a Status when the transport failed for good or retries ran out.
  Result<Reply> Execute(const Call& call) const;
  // The Status for a non-2xx `response` to `call`.
  Status ResponseError(const Call& call, long status, const HttpHeaders& headers,
                       ByteSpan body) const;
  // The Status for a HEAD `call` refused with `refused` (not 404): asks again with a GET of
  // one byte to learn S3's error code, which a HEAD answer cannot carry.
  Status HeadRefused(const Call& head, const HttpResponse& refused) const;

  // sha256_hex: PutOptions::sha256_hex (hashed here when it is not 64 hex digits).
  Status PutSingle(std::string_view name, ByteSpan data, bool exclusive,
                   std::string_view sha256_hex = {});
  Status PutMultipart(std::string_view name, ByteSpan data);
  Status ConfirmOurExclusivePut(std::string_view name, ByteSpan data);
  // Whether the server honours If-None-Match: * (probes once under kAuto).
  Result<bool> ConditionalPutWorks() const;
  Result<bool> ProbeConditionalPut() const;
  Status AbortMultipart(const std::string& key, const std::string& upload_id) const;
  HttpHeaders NewObjectHeaders() const;

  const S3Options options_;
  const S3Endpoint endpoint_;
  const std::string location_;
  const std::string key_prefix_;  // "PREFIX/" or ""
  std::unique_ptr<HttpClient> http_;

  // Whether the server has answered any request (any HTTP status): until then
  // options_.retry's unreached budget applies.
  mutable std::atomic<bool> reached_{false};

  mutable std::mutex probe_mu_;
  mutable std::optional<bool> conditional_put_works_;  // guarded by probe_mu_
};

}  // namespace lb::storage
