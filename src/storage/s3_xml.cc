#include "storage/s3_xml.h"

#include <charconv>
#include <ctime>

namespace lb::storage {
namespace {

constexpr int kMaxDepth = 64;

bool IsNameChar(char c) {
  return c != ' ' && c != '\t' && c != '\r' && c != '\n' && c != '>' && c != '/' && c != '=' &&
         c != '<' && c != '"' && c != '\'';
}

void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

class Parser {
 public:
  explicit Parser(std::string_view doc) : doc_(doc) {}

  Result<XmlElement> Document() {
    LB_RETURN_IF_ERROR(SkipMisc());
    if (AtEnd() || doc_[pos_] != '<') return Fail("expected the root element");
    XmlElement root;
    LB_RETURN_IF_ERROR(Element(root, 1));
    LB_RETURN_IF_ERROR(SkipMisc());
    if (!AtEnd()) return Fail("content after the root element");
    return root;
  }

 private:
  bool AtEnd() const { return pos_ >= doc_.size(); }
  bool StartsWith(std::string_view s) const { return doc_.substr(pos_).starts_with(s); }

  Status Fail(std::string_view what) const {
    return Err(Code::kCorruption, "malformed XML at byte {}: {}", pos_, what);
  }

  void SkipSpace() {
    while (!AtEnd() &&
           (doc_[pos_] == ' ' || doc_[pos_] == '\t' || doc_[pos_] == '\r' || doc_[pos_] == '\n')) {
      ++pos_;
    }
  }

  // Skips to just past `end`; fails when it never comes.
  Status SkipPast(std::string_view end, std::string_view what) {
    const size_t at = doc_.find(end, pos_);
    if (at == std::string_view::npos) return Fail(what);
    pos_ = at + end.size();
    return Status::Ok();
  }

  // Whitespace, comments and processing instructions (the <?xml ...?> declaration) that
  // may surround the root element. A DOCTYPE is refused: S3 never sends one, and refusing
  // it rules out entity expansion.
  Status SkipMisc() {
    while (true) {
      SkipSpace();
      if (StartsWith("<?")) {
        LB_RETURN_IF_ERROR(SkipPast("?>", "unterminated processing instruction"));
      } else if (StartsWith("<!--")) {
        LB_RETURN_IF_ERROR(SkipPast("-->", "unterminated comment"));
      } else if (StartsWith("<!")) {
        return Fail("DOCTYPE and other declarations are not accepted");
      } else {
        return Status::Ok();
      }
    }
  }

  Result<std::string> Name() {
    const size_t start = pos_;
    while (!AtEnd() && IsNameChar(doc_[pos_])) ++pos_;
    if (pos_ == start) return Fail("expected a name");
    return std::string(doc_.substr(start, pos_ - start));
  }

  static std::string LocalName(std::string name) {
    const size_t colon = name.find(':');
    return colon == std::string::npos ? name : name.substr(colon + 1);
  }

  // Decodes the reference starting at '&' and appends it to `out`.
  Status Reference(std::string& out) {
    const size_t semi = doc_.find(';', pos_);
    if (semi == std::string_view::npos || semi - pos_ > 12) return Fail("unterminated entity");
    const std::string_view ref = doc_.substr(pos_ + 1, semi - pos_ - 1);
    if (ref == "amp") {
      out.push_back('&');
    } else if (ref == "lt") {
      out.push_back('<');
    } else if (ref == "gt") {
      out.push_back('>');
    } else if (ref == "quot") {
      out.push_back('"');
    } else if (ref == "apos") {
      out.push_back('\'');
    } else if (ref.size() >= 2 && ref[0] == '#') {
      const bool hex = ref[1] == 'x' || ref[1] == 'X';
      const std::string_view digits = ref.substr(hex ? 2 : 1);
      uint32_t cp = 0;
      const auto [end, ec] =
          std::from_chars(digits.data(), digits.data() + digits.size(), cp, hex ? 16 : 10);
      if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || cp == 0 ||
          cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        return Fail("bad character reference");
      }
      AppendUtf8(out, cp);
    } else {
      return Fail("unknown entity");
    }
    pos_ = semi + 1;
    return Status::Ok();
  }

  Status Attributes() {
    while (true) {
      SkipSpace();
      if (AtEnd()) return Fail("unterminated start tag");
      if (doc_[pos_] == '>' || doc_[pos_] == '/') return Status::Ok();
      LB_RETURN_IF_ERROR(Name().status());
      SkipSpace();
      if (AtEnd() || doc_[pos_] != '=') return Fail("expected '=' after an attribute name");
      ++pos_;
      SkipSpace();
      if (AtEnd() || (doc_[pos_] != '"' && doc_[pos_] != '\'')) {
        return Fail("expected a quoted attribute value");
      }
      const char quote = doc_[pos_++];
      const size_t end = doc_.find(quote, pos_);
      if (end == std::string_view::npos) return Fail("unterminated attribute value");
      pos_ = end + 1;
    }
  }

  // Parses the element starting at '<' into `out`.
  Status Element(XmlElement& out, int depth) {
    if (depth > kMaxDepth) return Fail("elements nested too deeply");
    ++pos_;  // '<'
    LB_ASSIGN_OR_RETURN(std::string name, Name());
    LB_RETURN_IF_ERROR(Attributes());
    out.name = LocalName(name);
    if (doc_[pos_] == '/') {
      ++pos_;
      if (AtEnd() || doc_[pos_] != '>') return Fail("expected '>' after '/'");
      ++pos_;
      return Status::Ok();
    }
    ++pos_;  // '>'

    while (true) {
      if (AtEnd()) return Fail(fmt::format("element '{}' is not closed", out.name));
      const char c = doc_[pos_];
      if (c == '&') {
        LB_RETURN_IF_ERROR(Reference(out.text));
      } else if (c != '<') {
        out.text.push_back(c);
        ++pos_;
      } else if (StartsWith("</")) {
        pos_ += 2;
        LB_ASSIGN_OR_RETURN(std::string closing, Name());
        SkipSpace();
        if (AtEnd() || doc_[pos_] != '>') return Fail("expected '>' in an end tag");
        if (closing != name) {
          return Fail(fmt::format("end tag '{}' does not match '{}'", closing, name));
        }
        ++pos_;
        return Status::Ok();
      } else if (StartsWith("<![CDATA[")) {
        pos_ += 9;
        const size_t end = doc_.find("]]>", pos_);
        if (end == std::string_view::npos) return Fail("unterminated CDATA section");
        out.text.append(doc_.substr(pos_, end - pos_));
        pos_ = end + 3;
      } else if (StartsWith("<!--")) {
        LB_RETURN_IF_ERROR(SkipPast("-->", "unterminated comment"));
      } else if (StartsWith("<?")) {
        LB_RETURN_IF_ERROR(SkipPast("?>", "unterminated processing instruction"));
      } else if (StartsWith("<!")) {
        return Fail("declarations are not accepted inside elements");
      } else {
        out.children.emplace_back();
        LB_RETURN_IF_ERROR(Element(out.children.back(), depth + 1));
      }
    }
  }

  std::string_view doc_;
  size_t pos_ = 0;
};

Result<uint64_t> ParseSize(std::string_view s) {
  uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) {
    return Err(Code::kCorruption, "bad object size '{}' in a listing", s);
  }
  return v;
}

int ParseDigits(std::string_view s, size_t pos, size_t n, bool& ok) {
  int v = 0;
  if (pos + n > s.size()) {
    ok = false;
    return 0;
  }
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') ok = false;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

}  // namespace

const XmlElement* XmlElement::Child(std::string_view child_name) const {
  for (const XmlElement& c : children) {
    if (c.name == child_name) return &c;
  }
  return nullptr;
}

std::string XmlElement::ChildText(std::string_view child_name) const {
  const XmlElement* c = Child(child_name);
  return c == nullptr ? std::string() : c->text;
}

Result<XmlElement> ParseXml(std::string_view doc) { return Parser(doc).Document(); }

std::string XmlEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

std::optional<int64_t> ParseIso8601(std::string_view s) {
  // YYYY-MM-DDTHH:MM:SS[.fff][Z|+hh:mm|-hh:mm]
  bool ok = s.size() >= 19 && s[4] == '-' && s[7] == '-' && (s[10] == 'T' || s[10] == 't') &&
            s[13] == ':' && s[16] == ':';
  std::tm tm{};
  tm.tm_year = ParseDigits(s, 0, 4, ok) - 1900;
  tm.tm_mon = ParseDigits(s, 5, 2, ok) - 1;
  tm.tm_mday = ParseDigits(s, 8, 2, ok);
  tm.tm_hour = ParseDigits(s, 11, 2, ok);
  tm.tm_min = ParseDigits(s, 14, 2, ok);
  tm.tm_sec = ParseDigits(s, 17, 2, ok);
  if (!ok || tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
      tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60) {
    return std::nullopt;
  }
  size_t pos = 19;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') ++pos;
  }
  int64_t offset = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    const int sign = s[pos] == '+' ? 1 : -1;
    if (pos + 6 > s.size() || s[pos + 3] != ':') return std::nullopt;
    const int hh = ParseDigits(s, pos + 1, 2, ok);
    const int mm = ParseDigits(s, pos + 4, 2, ok);
    if (!ok) return std::nullopt;
    offset = sign * (hh * 3600 + mm * 60);
    pos += 6;
  }
  if (pos != s.size()) return std::nullopt;
  return static_cast<int64_t>(timegm(&tm)) - offset;
}

std::optional<S3ErrorBody> ParseS3Error(std::string_view body) {
  auto doc = ParseXml(body);
  if (!doc.ok() || doc->name != "Error") return std::nullopt;
  return S3ErrorBody{.code = doc->ChildText("Code"),
                     .message = doc->ChildText("Message"),
                     .region = doc->ChildText("Region")};
}

Result<ListObjectsPage> ParseListObjectsV2(std::string_view body) {
  LB_ASSIGN_OR_RETURN(XmlElement doc, ParseXml(body));
  if (doc.name != "ListBucketResult") {
    return Err(Code::kCorruption, "expected a ListBucketResult, got <{}>", doc.name);
  }
  ListObjectsPage page;
  for (const XmlElement& child : doc.children) {
    if (child.name != "Contents") continue;
    S3ListedObject obj;
    const XmlElement* key = child.Child("Key");
    if (key == nullptr) return Err(Code::kCorruption, "listing entry without a Key");
    obj.key = key->text;
    LB_ASSIGN_OR_RETURN(obj.size, ParseSize(child.ChildText("Size")));
    const std::string modified = child.ChildText("LastModified");
    if (!modified.empty()) {
      const std::optional<int64_t> t = ParseIso8601(modified);
      if (!t) return Err(Code::kCorruption, "bad LastModified '{}' in a listing", modified);
      obj.mtime_unix = *t;
    }
    page.objects.push_back(std::move(obj));
  }
  page.truncated = doc.ChildText("IsTruncated") == "true";
  page.next_continuation_token = doc.ChildText("NextContinuationToken");
  if (page.truncated && page.next_continuation_token.empty()) {
    return Err(Code::kCorruption, "truncated listing without a NextContinuationToken");
  }
  return page;
}

Result<std::string> ParseInitiateMultipartUpload(std::string_view body) {
  LB_ASSIGN_OR_RETURN(XmlElement doc, ParseXml(body));
  if (doc.name != "InitiateMultipartUploadResult") {
    return Err(Code::kCorruption, "expected an InitiateMultipartUploadResult, got <{}>", doc.name);
  }
  std::string id = doc.ChildText("UploadId");
  if (id.empty()) return Err(Code::kCorruption, "InitiateMultipartUploadResult without UploadId");
  return id;
}

Result<std::string> ParseCompleteMultipartUpload(std::string_view body) {
  LB_ASSIGN_OR_RETURN(XmlElement doc, ParseXml(body));
  if (doc.name != "CompleteMultipartUploadResult") {
    return Err(Code::kCorruption, "expected a CompleteMultipartUploadResult, got <{}>", doc.name);
  }
  return doc.ChildText("ETag");
}

Result<ListUploadsPage> ParseListMultipartUploads(std::string_view body) {
  LB_ASSIGN_OR_RETURN(XmlElement doc, ParseXml(body));
  if (doc.name != "ListMultipartUploadsResult") {
    return Err(Code::kCorruption, "expected a ListMultipartUploadsResult, got <{}>", doc.name);
  }
  ListUploadsPage page;
  for (const XmlElement& child : doc.children) {
    if (child.name != "Upload") continue;
    page.uploads.push_back(
        {.key = child.ChildText("Key"), .upload_id = child.ChildText("UploadId")});
  }
  page.truncated = doc.ChildText("IsTruncated") == "true";
  page.next_key_marker = doc.ChildText("NextKeyMarker");
  page.next_upload_id_marker = doc.ChildText("NextUploadIdMarker");
  if (page.truncated && page.next_key_marker.empty() && page.next_upload_id_marker.empty()) {
    return Err(Code::kCorruption, "truncated upload listing without a marker");
  }
  return page;
}

std::string CompleteMultipartUploadBody(std::span<const std::pair<int, std::string>> parts) {
  std::string out = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">";
  for (const auto& [number, etag] : parts) {
    out += fmt::format("<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>", number,
                       XmlEscape(etag));
  }
  out += "</CompleteMultipartUpload>";
  return out;
}

}  // namespace lb::storage
