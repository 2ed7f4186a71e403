// The XML bodies the s3 driver reads and writes: a small, strict parser for S3 responses
// (ListObjectsV2, Error, multipart uploads) and the CompleteMultipartUpload request body.
// Only what S3 sends is supported: elements, attributes (skipped), character data, CDATA,
// comments, the five named entities and numeric character references. A DOCTYPE is refused,
// so no entity expansion can happen.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/status.h"

namespace lb::storage {

struct XmlElement {
  std::string name;  // local name: a namespace prefix ("s3:Key") is dropped
  std::string text;  // character data directly inside, entities decoded
  std::vector<XmlElement> children;

  // The first child called `name`, or nullptr.
  const XmlElement* Child(std::string_view child_name) const;
  // The text of the first child called `name`, or "" if there is none.
  std::string ChildText(std::string_view child_name) const;
};

// Parses one document. kCorruption naming the problem and its byte offset for anything
// malformed (unbalanced tags, bad entities, a DOCTYPE, nesting deeper than 64).
Result<XmlElement> ParseXml(std::string_view doc);

// Escapes & < > " ' for element text.
std::string XmlEscape(std::string_view s);

// "2009-10-12T17:50:30.000Z" (also without fraction, or with +hh:mm) as seconds since the
// epoch; nullopt when malformed.
std::optional<int64_t> ParseIso8601(std::string_view s);

// An <Error> document: S3's code ("NoSuchKey") and message.
struct S3ErrorBody {
  std::string code;
  std::string message;
  std::string region;  // <Region>, sent with AuthorizationHeaderMalformed
};
// The error in `body` when it is an <Error> document, else nullopt (also for bodies that
// are not XML at all, e.g. an HTML page from a proxy).
std::optional<S3ErrorBody> ParseS3Error(std::string_view body);

struct S3ListedObject {
  std::string key;
  uint64_t size = 0;
  int64_t mtime_unix = 0;
};
struct ListObjectsPage {
  std::vector<S3ListedObject> objects;
  bool truncated = false;
  std::string next_continuation_token;  // set when truncated
};
// A ListBucketResult of ListObjectsV2. kCorruption when it is not one, when a size or date
// is malformed, or when it is truncated without a continuation token (paging would loop).
Result<ListObjectsPage> ParseListObjectsV2(std::string_view body);

// The UploadId of an InitiateMultipartUploadResult; kCorruption when missing.
Result<std::string> ParseInitiateMultipartUpload(std::string_view body);

// The ETag of a CompleteMultipartUploadResult; kCorruption when the body is something else.
// (A 200 response whose body is an <Error> must be checked with ParseS3Error first.)
Result<std::string> ParseCompleteMultipartUpload(std::string_view body);

struct S3Upload {
  std::string key;
  std::string upload_id;
};
struct ListUploadsPage {
  std::vector<S3Upload> uploads;
  bool truncated = false;
  std::string next_key_marker;
  std::string next_upload_id_marker;
};
// A ListMultipartUploadsResult.
Result<ListUploadsPage> ParseListMultipartUploads(std::string_view body);

// The CompleteMultipartUpload request body for (part number, ETag) pairs in order.
std::string CompleteMultipartUploadBody(std::span<const std::pair<int, std::string>> parts);

}  // namespace lb::storage
