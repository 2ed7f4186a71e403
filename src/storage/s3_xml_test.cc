#include "storage/s3_xml.h"

#include <gtest/gtest.h>

namespace lb::storage {
namespace {

TEST(ParseXmlTest, ElementsTextAndEntities) {
  auto doc = ParseXml(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<!-- a comment -->\n"
      "<Root xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\" a='x>y'>"
      "  <Key>a &amp; b &lt;c&gt; &quot;d&quot; &apos;e&apos; &#65;&#x42;&#x416;&#128512;</Key>"
      "  <Empty/><Empty2 attr=\"1\" />"
      "  <s3:Prefixed>p</s3:Prefixed>"
      "  <Data><![CDATA[<not & parsed>]]></Data>"
      "</Root>\n");
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ(doc->name, "Root");
  EXPECT_EQ(doc->ChildText("Key"), "a & b <c> \"d\" 'e' AB\xD0\x96\xF0\x9F\x98\x80");
  ASSERT_NE(doc->Child("Empty"), nullptr);
  EXPECT_EQ(doc->Child("Empty")->text, "");
  ASSERT_NE(doc->Child("Empty2"), nullptr);
  EXPECT_EQ(doc->ChildText("Prefixed"), "p");
  EXPECT_EQ(doc->ChildText("Data"), "<not & parsed>");
  EXPECT_EQ(doc->Child("Missing"), nullptr);
  EXPECT_EQ(doc->ChildText("Missing"), "");
}

TEST(ParseXmlTest, RejectsMalformedDocuments) {
  for (std::string_view bad : {
           "",
           "just text",
           "<a>",
           "<a></b>",
           "<a><b></a></b>",
           "<a>&unknown;</a>",
           "<a>&amp</a>",
           "<a>&#;</a>",
           "<a>&#0;</a>",
           "<a>&#xD800;</a>",
           "<a>&#x110000;</a>",
           "<a>&#12a;</a>",
           "<a x=1></a>",
           "<a x=\"1></a>",
           "<a></a><b></b>",
           "<a></a>trailing",
           "<!DOCTYPE a [<!ENTITY e \"boom\">]><a>&e;</a>",
           "<a><![CDATA[open</a>",
           "<a><!-- open</a>",
       }) {
    SCOPED_TRACE(bad);
    auto doc = ParseXml(bad);
    EXPECT_EQ(doc.status().code(), Code::kCorruption);
  }
  std::string deep;
  for (int i = 0; i < 100; ++i) deep += "<a>";
  for (int i = 0; i < 100; ++i) deep += "</a>";
  EXPECT_EQ(ParseXml(deep).status().code(), Code::kCorruption);
}

TEST(XmlEscapeTest, RoundTrips) {
  const std::string raw = "a&b<c>\"d\"'e'";
  EXPECT_EQ(XmlEscape(raw), "a&amp;b&lt;c&gt;&quot;d&quot;&apos;e&apos;");
  auto doc = ParseXml("<k>" + XmlEscape(raw) + "</k>");
  ASSERT_TRUE(doc.ok());
  EXPECT_EQ(doc->text, raw);
}

TEST(ParseIso8601Test, Forms) {
  EXPECT_EQ(ParseIso8601("2009-10-12T17:50:30.000Z"), 1255369830);
  EXPECT_EQ(ParseIso8601("2009-10-12T17:50:30Z"), 1255369830);
  EXPECT_EQ(ParseIso8601("2009-10-12T19:50:30.123456+02:00"), 1255369830);
  EXPECT_EQ(ParseIso8601("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(ParseIso8601("2009-10-12 17:50:30Z"), std::nullopt);
  EXPECT_EQ(ParseIso8601("2009-13-12T17:50:30Z"), std::nullopt);
  EXPECT_EQ(ParseIso8601("2009-10-12T17:50:30Zjunk"), std::nullopt);
  EXPECT_EQ(ParseIso8601("2009-1x-12T17:50:30Z"), std::nullopt);
  EXPECT_EQ(ParseIso8601(""), std::nullopt);
}

TEST(ParseS3ErrorTest, CodeMessageRegion) {
  auto err = ParseS3Error(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code>"
      "<Message>The resource you requested does not exist</Message>"
      "<Resource>/mybucket/myfoto.jpg</Resource><RequestId>4442587FB7D0A2F9</RequestId></Error>");
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->code, "NoSuchKey");
  EXPECT_EQ(err->message, "The resource you requested does not exist");
  auto region = ParseS3Error(
      "<Error><Code>AuthorizationHeaderMalformed</Code><Message>the region 'us-east-1' is "
      "wrong; expecting 'eu-west-1'</Message><Region>eu-west-1</Region></Error>");
  ASSERT_TRUE(region.has_value());
  EXPECT_EQ(region->region, "eu-west-1");
  EXPECT_FALSE(ParseS3Error("<html><body>Bad Gateway</body></html>").has_value());
  EXPECT_FALSE(ParseS3Error("<html><body>unclosed").has_value());
  EXPECT_FALSE(ParseS3Error("").has_value());
}

TEST(ParseListObjectsV2Test, PageWithEntriesAndToken) {
  auto page = ParseListObjectsV2(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
      "<Name>bucket</Name><Prefix>repo/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>"
      "<IsTruncated>true</IsTruncated>"
      "<Contents><Key>repo/data/a&amp;b</Key><LastModified>2009-10-12T17:50:30.000Z</LastModified>"
      "<ETag>&quot;fba9dede5f27731c9771645a39863328&quot;</ETag><Size>434234</Size>"
      "<StorageClass>STANDARD</StorageClass></Contents>"
      "<Contents><Key>repo/data/c d</Key><LastModified>2009-10-12T17:50:31Z</LastModified>"
      "<Size>0</Size></Contents>"
      "<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>"
      "</ListBucketResult>");
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->objects.size(), 2u);
  EXPECT_EQ(page->objects[0].key, "repo/data/a&b");
  EXPECT_EQ(page->objects[0].size, 434234u);
  EXPECT_EQ(page->objects[0].mtime_unix, 1255369830);
  EXPECT_EQ(page->objects[1].key, "repo/data/c d");
  EXPECT_EQ(page->objects[1].size, 0u);
  EXPECT_TRUE(page->truncated);
  EXPECT_EQ(page->next_continuation_token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
}

TEST(ParseListObjectsV2Test, LastPageAndErrors) {
  auto last = ParseListObjectsV2(
      "<ListBucketResult><Name>b</Name><IsTruncated>false</IsTruncated></ListBucketResult>");
  ASSERT_TRUE(last.ok());
  EXPECT_TRUE(last->objects.empty());
  EXPECT_FALSE(last->truncated);

  EXPECT_EQ(ParseListObjectsV2("<ListBucketResult><IsTruncated>true</IsTruncated>"
                               "</ListBucketResult>")
                .status()
                .code(),
            Code::kCorruption);
  EXPECT_EQ(ParseListObjectsV2("<ListBucketResult><Contents><Key>k</Key><Size>-1</Size>"
                               "</Contents></ListBucketResult>")
                .status()
                .code(),
            Code::kCorruption);
  EXPECT_EQ(ParseListObjectsV2("<ListBucketResult><Contents><Size>1</Size>"
                               "</Contents></ListBucketResult>")
                .status()
                .code(),
            Code::kCorruption);
  EXPECT_EQ(ParseListObjectsV2("<ListBucketResult><Contents><Key>k</Key><Size>1</Size>"
                               "<LastModified>yesterday</LastModified></Contents>"
                               "</ListBucketResult>")
                .status()
                .code(),
            Code::kCorruption);
  EXPECT_EQ(ParseListObjectsV2("<Error><Code>NoSuchBucket</Code></Error>").status().code(),
            Code::kCorruption);
}

TEST(MultipartXmlTest, InitiateCompleteAndList) {
  auto id = ParseInitiateMultipartUpload(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<InitiateMultipartUploadResult "
      "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Bucket>b</Bucket><Key>k</Key>"
      "<UploadId>VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA</UploadId>"
      "</InitiateMultipartUploadResult>");
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, "VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA");
  EXPECT_EQ(ParseInitiateMultipartUpload("<InitiateMultipartUploadResult/>").status().code(),
            Code::kCorruption);

  auto etag = ParseCompleteMultipartUpload(
      "<CompleteMultipartUploadResult><Location>http://x/b/k</Location><Bucket>b</Bucket>"
      "<Key>k</Key><ETag>\"3858f62230ac3c915f300c664312c11f-9\"</ETag>"
      "</CompleteMultipartUploadResult>");
  ASSERT_TRUE(etag.ok());
  EXPECT_EQ(*etag, "\"3858f62230ac3c915f300c664312c11f-9\"");
  EXPECT_EQ(
      ParseCompleteMultipartUpload("<Error><Code>InternalError</Code></Error>").status().code(),
      Code::kCorruption);

  auto uploads = ParseListMultipartUploads(
      "<ListMultipartUploadsResult><Bucket>b</Bucket><IsTruncated>true</IsTruncated>"
      "<NextKeyMarker>p/k2</NextKeyMarker><NextUploadIdMarker>u2</NextUploadIdMarker>"
      "<Upload><Key>p/k1</Key><UploadId>u1</UploadId></Upload>"
      "<Upload><Key>p/k2</Key><UploadId>u2</UploadId></Upload>"
      "</ListMultipartUploadsResult>");
  ASSERT_TRUE(uploads.ok());
  ASSERT_EQ(uploads->uploads.size(), 2u);
  EXPECT_EQ(uploads->uploads[1].key, "p/k2");
  EXPECT_EQ(uploads->uploads[1].upload_id, "u2");
  EXPECT_TRUE(uploads->truncated);
  EXPECT_EQ(uploads->next_key_marker, "p/k2");
}

TEST(MultipartXmlTest, CompleteBodyEscapesETags) {
  const std::vector<std::pair<int, std::string>> parts = {{1, "\"a1\""}, {2, "\"b&2\""}};
  const std::string body = CompleteMultipartUploadBody(parts);
  EXPECT_EQ(body,
            "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
            "<Part><PartNumber>1</PartNumber><ETag>&quot;a1&quot;</ETag></Part>"
            "<Part><PartNumber>2</PartNumber><ETag>&quot;b&amp;2&quot;</ETag></Part>"
            "</CompleteMultipartUpload>");
  auto doc = ParseXml(body);
  ASSERT_TRUE(doc.ok());
  ASSERT_EQ(doc->children.size(), 2u);
  EXPECT_EQ(doc->children[1].ChildText("ETag"), "\"b&2\"");
}

}  // namespace
}  // namespace lb::storage
