// SigV4 against the published examples of the S3 API reference ("Examples: Signature
// Calculations", header-based authentication) and of the AWS SigV4 test suite, plus the
// canonicalisation cases lifeboat's keys and list tokens need.
#include "storage/sigv4.h"

#include <gtest/gtest.h>

#include <chrono>

namespace lb::storage {
namespace {

using Params = std::vector<std::pair<std::string, std::string>>;

constexpr std::string_view kS3Secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const AwsCredentials kS3Example{"AKIAIOSFODNN7EXAMPLE", std::string(kS3Secret)};
constexpr std::string_view kS3Host = "examplebucket.s3.amazonaws.com";
constexpr std::string_view kS3Date = "20130524T000000Z";

std::string SignatureOf(const std::string& authorization) {
  const size_t at = authorization.find("Signature=");
  return at == std::string::npos ? "" : authorization.substr(at + 10);
}

TEST(SigV4S3Examples, GetObjectWithRange) {
  SigningInput in{.method = "GET",
                  .canonical_uri = "/test.txt",
                  .canonical_query = "",
                  .headers = {{"Host", std::string(kS3Host)},
                              {"Range", "bytes=0-9"},
                              {"x-amz-content-sha256", std::string(kEmptySha256)},
                              {"x-amz-date", std::string(kS3Date)}},
                  .payload_sha256 = kEmptySha256,
                  .amz_date = kS3Date,
                  .region = "us-east-1"};
  EXPECT_EQ(
      CanonicalRequest(in),
      "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
      "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
      "x-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n"
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(StringToSign(in),
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
            "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
  EXPECT_EQ(Signature(in, kS3Secret),
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  EXPECT_EQ(AuthorizationHeader(in, kS3Example),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST(SigV4S3Examples, PutObjectWithEncodedKeyAndPayloadHash) {
  const std::string payload_hash = Sha256Hex(AsBytes("Welcome to Amazon S3."));
  ASSERT_EQ(payload_hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  const std::string uri = "/" + UriEncode("test$file.text", true);
  EXPECT_EQ(uri, "/test%24file.text");
  SigningInput in{.method = "PUT",
                  .canonical_uri = uri,
                  .canonical_query = "",
                  .headers = {{"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                              {"Host", std::string(kS3Host)},
                              {"x-amz-content-sha256", payload_hash},
                              {"x-amz-date", std::string(kS3Date)},
                              {"x-amz-storage-class", "REDUCED_REDUNDANCY"}},
                  .payload_sha256 = payload_hash,
                  .amz_date = kS3Date,
                  .region = "us-east-1"};
  EXPECT_EQ(StringToSign(in),
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
            "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d");
  EXPECT_EQ(SignedHeaderNames(in), "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class");
  EXPECT_EQ(Signature(in, kS3Secret),
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

TEST(SigV4S3Examples, GetBucketLifecycleHasAnEmptyQueryValue) {
  const Params query = {{"lifecycle", ""}};
  const std::string canonical_query = CanonicalQueryString(query);
  EXPECT_EQ(canonical_query, "lifecycle=");
  SigningInput in{.method = "GET",
                  .canonical_uri = "/",
                  .canonical_query = canonical_query,
                  .headers = {{"host", std::string(kS3Host)},
                              {"x-amz-content-sha256", std::string(kEmptySha256)},
                              {"x-amz-date", std::string(kS3Date)}},
                  .payload_sha256 = kEmptySha256,
                  .amz_date = kS3Date,
                  .region = "us-east-1"};
  EXPECT_EQ(StringToSign(in),
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
            "9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca");
  EXPECT_EQ(SignatureOf(AuthorizationHeader(in, kS3Example)),
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

TEST(SigV4S3Examples, ListObjectsSortsTheQuery) {
  const Params query = {{"prefix", "J"}, {"max-keys", "2"}};
  const std::string canonical_query = CanonicalQueryString(query);
  EXPECT_EQ(canonical_query, "max-keys=2&prefix=J");
  SigningInput in{.method = "GET",
                  .canonical_uri = "/",
                  .canonical_query = canonical_query,
                  .headers = {{"host", std::string(kS3Host)},
                              {"x-amz-content-sha256", std::string(kEmptySha256)},
                              {"x-amz-date", std::string(kS3Date)}},
                  .payload_sha256 = kEmptySha256,
                  .amz_date = kS3Date,
                  .region = "us-east-1"};
  EXPECT_EQ(Signature(in, kS3Secret),
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

// The generic SigV4 test suite: service "service", no x-amz-content-sha256 header.
SigningInput SuiteInput(std::string_view method, std::string_view canonical_query) {
  return {.method = method,
          .canonical_uri = "/",
          .canonical_query = canonical_query,
          .headers = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}},
          .payload_sha256 = kEmptySha256,
          .amz_date = "20150830T123600Z",
          .region = "us-east-1",
          .service = "service"};
}
constexpr std::string_view kSuiteSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

TEST(SigV4TestSuite, Vanilla) {
  EXPECT_EQ(Signature(SuiteInput("GET", ""), kSuiteSecret),
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
  EXPECT_EQ(Signature(SuiteInput("POST", ""), kSuiteSecret),
            "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
}

TEST(SigV4TestSuite, QueryOrderKeyCase) {
  const Params query = {{"Param2", "value2"}, {"Param1", "value1"}};
  const std::string canonical_query = CanonicalQueryString(query);
  EXPECT_EQ(canonical_query, "Param1=value1&Param2=value2");
  EXPECT_EQ(StringToSign(SuiteInput("GET", canonical_query)),
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
            "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0");
  EXPECT_EQ(Signature(SuiteInput("GET", canonical_query), kSuiteSecret),
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
}

TEST(SigV4TestSuite, EmptyQueryKey) {
  const Params query = {{"Param1", "value1"}};
  EXPECT_EQ(Signature(SuiteInput("GET", CanonicalQueryString(query)), kSuiteSecret),
            "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb");
}

// ---------------------------------------------------------------------------------------
// Canonicalisation of what lifeboat sends.

TEST(UriEncodeTest, KeepsUnreservedAndOptionallySlash) {
  EXPECT_EQ(UriEncode("AZaz09-._~", false), "AZaz09-._~");
  EXPECT_EQ(UriEncode("data/ab/ab12", true), "data/ab/ab12");
  EXPECT_EQ(UriEncode("data/ab/ab12", false), "data%2Fab%2Fab12");
  EXPECT_EQ(UriEncode("my file+1=2", true), "my%20file%2B1%3D2");
  EXPECT_EQ(UriEncode("100%", true), "100%25");
  EXPECT_EQ(UriEncode("a~b", true), "a~b");
  EXPECT_EQ(UriEncode("!*'();:@&=+$,?#[]", true),
            "%21%2A%27%28%29%3B%3A%40%26%3D%2B%24%2C%3F%23%5B%5D");
  // UTF-8 bytes, upper-case hex.
  EXPECT_EQ(UriEncode("ключ/é", true), "%D0%BA%D0%BB%D1%8E%D1%87/%C3%A9");
  EXPECT_EQ(UriEncode(std::string_view("\x00\x7f\xff", 3), true), "%00%7F%FF");
}

TEST(CanonicalQueryTest, ContinuationTokenWithSlashPlusAndEquals) {
  const Params query = {{"list-type", "2"},
                        {"prefix", "repo/data/"},
                        {"max-keys", "1000"},
                        {"encoding-type", "url"},
                        {"continuation-token", "1ueGcxLPRx1Tr/XYExHn+hbYLgv=="}};
  EXPECT_EQ(CanonicalQueryString(query),
            "continuation-token=1ueGcxLPRx1Tr%2FXYExHn%2BhbYLgv%3D%3D&encoding-type=url&"
            "list-type=2&max-keys=1000&prefix=repo%2Fdata%2F");
}

TEST(CanonicalQueryTest, SpacesAreNotPlus) {
  const Params query = {{"prefix", "my dir/a b"}};
  EXPECT_EQ(CanonicalQueryString(query), "prefix=my%20dir%2Fa%20b");
}

TEST(CanonicalQueryTest, SortsByEncodedNameThenValue) {
  // Raw, "a\xc3\xa9" (é) sorts after "a_b"; encoded, "a%C3%A9" sorts before it ('%' < '_').
  const Params query = {{"a_b", "1"}, {"a\xc3\xa9", "2"}, {"a", "z"}, {"a", "b"}, {"a", ""}};
  EXPECT_EQ(CanonicalQueryString(query), "a=&a=b&a=z&a%C3%A9=2&a_b=1");
  EXPECT_EQ(CanonicalQueryString(Params{}), "");
}

TEST(CanonicalHeadersTest, LowerCasesTrimsAndSortsNames) {
  SigningInput in{.method = "PUT",
                  .canonical_uri = "/bucket/my%20key",
                  .canonical_query = "",
                  .headers = {{"X-Amz-Date", "20240101T000000Z"},
                              {"Host", "127.0.0.1:7480"},
                              {"x-amz-meta-note", "  two   spaces\there  "},
                              {"X-Amz-Content-SHA256", std::string(kEmptySha256)},
                              {"x-amz-security-token", "token"}},
                  .payload_sha256 = kEmptySha256,
                  .amz_date = "20240101T000000Z",
                  .region = "default"};
  EXPECT_EQ(
      CanonicalRequest(in),
      "PUT\n/bucket/my%20key\n\nhost:127.0.0.1:7480\n"
      "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
      "x-amz-date:20240101T000000Z\nx-amz-meta-note:two spaces here\n"
      "x-amz-security-token:token\n\n"
      "host;x-amz-content-sha256;x-amz-date;x-amz-meta-note;x-amz-security-token\n"
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(SignatureTest, EveryInputChangesTheSignature) {
  SigningInput base{.method = "GET",
                    .canonical_uri = "/b/k",
                    .canonical_query = "",
                    .headers = {{"host", "h"}, {"x-amz-date", "20240101T000000Z"}},
                    .payload_sha256 = kEmptySha256,
                    .amz_date = "20240101T000000Z",
                    .region = "us-east-1"};
  const std::string sig = Signature(base, "secret");
  EXPECT_EQ(sig.size(), 64u);
  EXPECT_NE(Signature(base, "secreT"), sig);
  SigningInput other = base;
  other.region = "eu-west-1";
  EXPECT_NE(Signature(other, "secret"), sig);
  other = base;
  other.canonical_uri = "/b/k2";
  EXPECT_NE(Signature(other, "secret"), sig);
  other = base;
  other.canonical_query = "x=";
  EXPECT_NE(Signature(other, "secret"), sig);
  other = base;
  const std::string x_hash = Sha256Hex(AsBytes("x"));  // SigningInput only views it
  other.payload_sha256 = x_hash;
  EXPECT_NE(Signature(other, "secret"), sig);
}

TEST(AuthorizationTest, NeverContainsTheSecret) {
  const AwsCredentials creds{"AKIDLIFEBOAT", "very-secret-key", "session-token-value"};
  SigningInput in{.method = "GET",
                  .canonical_uri = "/",
                  .canonical_query = "",
                  .headers = {{"host", "h"}, {"x-amz-date", "20240101T000000Z"}},
                  .payload_sha256 = kEmptySha256,
                  .amz_date = "20240101T000000Z",
                  .region = "us-east-1"};
  const std::string auth = AuthorizationHeader(in, creds);
  EXPECT_EQ(auth.find("very-secret-key"), std::string::npos);
  EXPECT_EQ(auth.find("session-token-value"), std::string::npos);
  EXPECT_NE(auth.find("Credential=AKIDLIFEBOAT/20240101/us-east-1/s3/aws4_request"),
            std::string::npos);
}

TEST(AmzDateTest, FormatsUtc) {
  using namespace std::chrono;
  const system_clock::time_point t =
      sys_days{year{2013} / May / 24} + hours{1} + minutes{2} + seconds{3} + milliseconds{999};
  EXPECT_EQ(AmzDate(t), "20130524T010203Z");
}

}  // namespace
}  // namespace lb::storage
