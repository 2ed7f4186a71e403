#include "storage/sigv4.h"

#include <fmt/core.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <ctime>

namespace lb::storage {
namespace {

using Digest = std::array<uint8_t, 32>;

Digest HmacSha256(ByteSpan key, std::string_view data) {
  Digest out{};
  unsigned int len = 0;
  // HMAC() fails only on allocation failure or a missing digest; neither is an input error.
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(),
           &len) == nullptr ||
      len != out.size()) {
    std::abort();
  }
  return out;
}

bool IsUnreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// Trims leading and trailing blanks and collapses inner runs of blanks to one space.
std::string TrimAll(std::string_view v) {
  std::string out;
  bool pending_space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t') {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.push_back(c);
  }
  return out;
}

// (lower-case name, canonical value) sorted by name; values of repeated names joined by ','.
std::vector<std::pair<std::string, std::string>> CanonicalHeaders(const HttpHeaders& headers) {
  std::vector<std::pair<std::string, std::string>> sorted;
  sorted.reserve(headers.size());
  for (const auto& [name, value] : headers) sorted.emplace_back(Lower(name), TrimAll(value));
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::pair<std::string, std::string>> merged;
  for (auto& h : sorted) {
    if (!merged.empty() && merged.back().first == h.first) {
      merged.back().second += "," + h.second;
    } else {
      merged.push_back(std::move(h));
    }
  }
  return merged;
}

std::string_view DateOf(std::string_view amz_date) { return amz_date.substr(0, 8); }

std::string Scope(const SigningInput& in) {
  return fmt::format("{}/{}/{}/aws4_request", DateOf(in.amz_date), in.region, in.service);
}

}  // namespace

AwsCredentials::~AwsCredentials() {
  OPENSSL_cleanse(secret_access_key.data(), secret_access_key.size());
  OPENSSL_cleanse(session_token.data(), session_token.size());
}

std::string UriEncode(std::string_view s, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (IsUnreserved(c) || (keep_slash && c == '/')) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string CanonicalQueryString(std::span<const std::pair<std::string, std::string>> params) {
  std::vector<std::pair<std::string, std::string>> encoded;
  encoded.reserve(params.size());
  for (const auto& [name, value] : params) {
    encoded.emplace_back(UriEncode(name, false), UriEncode(value, false));
  }
  // Sorted by code point of the encoded strings: std::string compares bytes, and the encoded
  // form is pure ASCII.
  std::sort(encoded.begin(), encoded.end());
  std::string out;
  for (const auto& [name, value] : encoded) {
    if (!out.empty()) out.push_back('&');
    out += name;
    out.push_back('=');
    out += value;
  }
  return out;
}

std::string Sha256Hex(ByteSpan data) {
  Digest out{};
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr) != 1 ||
      len != out.size()) {
    std::abort();
  }
  return HexEncode(out);
}

std::string AmzDate(std::chrono::system_clock::time_point t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}{:02}{:02}T{:02}{:02}{:02}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

std::string SignedHeaderNames(const SigningInput& in) {
  std::string out;
  for (const auto& [name, value] : CanonicalHeaders(in.headers)) {
    if (!out.empty()) out.push_back(';');
    out += name;
  }
  return out;
}

std::string CanonicalRequest(const SigningInput& in) {
  std::string out = fmt::format("{}\n{}\n{}\n", in.method, in.canonical_uri, in.canonical_query);
  std::string names;
  for (const auto& [name, value] : CanonicalHeaders(in.headers)) {
    out += fmt::format("{}:{}\n", name, value);
    if (!names.empty()) names.push_back(';');
    names += name;
  }
  out += fmt::format("\n{}\n{}", names, in.payload_sha256);
  return out;
}

std::string StringToSign(const SigningInput& in) {
  return fmt::format("AWS4-HMAC-SHA256\n{}\n{}\n{}", in.amz_date, Scope(in),
                     Sha256Hex(AsBytes(CanonicalRequest(in))));
}

std::string Signature(const SigningInput& in, std::string_view secret_access_key) {
  std::string first_key = fmt::format("AWS4{}", secret_access_key);
  Digest key = HmacSha256(AsBytes(first_key), DateOf(in.amz_date));
  OPENSSL_cleanse(first_key.data(), first_key.size());
  key = HmacSha256(key, in.region);
  key = HmacSha256(key, in.service);
  key = HmacSha256(key, "aws4_request");
  const Digest signature = HmacSha256(key, StringToSign(in));
  OPENSSL_cleanse(key.data(), key.size());
  return HexEncode(signature);
}

std::string AuthorizationHeader(const SigningInput& in, const AwsCredentials& credentials) {
  return fmt::format("AWS4-HMAC-SHA256 Credential={}/{},SignedHeaders={},Signature={}",
                     credentials.access_key_id, Scope(in), SignedHeaderNames(in),
                     Signature(in, credentials.secret_access_key));
}

}  // namespace lb::storage
