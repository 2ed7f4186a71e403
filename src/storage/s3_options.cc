#include "storage/s3_options.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <vector>

#include "storage/object_name.h"

namespace lb::storage {
namespace {

constexpr std::string_view kScheme = "s3://";
constexpr std::string_view kCredentialHint =
    "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary "
    "keys), or AWS_PROFILE naming a profile of ~/.aws/credentials";

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

Result<std::string> PercentDecode(std::string_view url, std::string_view s) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size() || hex(s[i + 1]) < 0 || hex(s[i + 2]) < 0) {
      return Err(Code::kInvalidArgument, "repository url '{}': bad %-escape", url);
    }
    out.push_back(static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2])));
    i += 2;
  }
  return out;
}

// An INI file of the AWS kind: [section] headers, "key = value" lines, '#' and ';' comment
// lines, and nested blocks ("s3 =" followed by indented "key = value" lines, stored as
// "s3.key"). Keys are lower-cased.
using IniFile = std::map<std::string, std::map<std::string, std::string>>;

IniFile ParseIni(std::istream& in) {
  IniFile out;
  std::string section;
  std::string nested;  // the key of the open nested block, if any
  std::string line;
  while (std::getline(in, line)) {
    const bool indented = !line.empty() && (line[0] == ' ' || line[0] == '\t');
    const std::string_view t = Trim(line);
    if (t.empty() || t[0] == '#' || t[0] == ';') continue;
    if (t.front() == '[' && t.back() == ']') {
      section = std::string(Trim(t.substr(1, t.size() - 2)));
      nested.clear();
      out[section];
      continue;
    }
    const size_t eq = t.find('=');
    if (eq == std::string_view::npos) continue;
    const std::string key = Lower(Trim(t.substr(0, eq)));
    const std::string value(Trim(t.substr(eq + 1)));
    if (indented && !nested.empty()) {
      out[section][nested + "." + key] = value;
    } else if (value.empty()) {
      nested = key;
    } else {
      nested.clear();
      out[section][key] = value;
    }
  }
  return out;
}

// The file at `path`, or nullopt when it does not exist.
Result<std::optional<IniFile>> ReadIni(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT || errno == ENOTDIR) return std::optional<IniFile>();
    return ErrnoStatus(errno, fmt::format("read AWS config file '{}'", path));
  }
  return std::optional<IniFile>(ParseIni(in));
}

const std::map<std::string, std::string>* Section(const std::optional<IniFile>& file,
                                                  const std::string& name) {
  if (!file) return nullptr;
  auto it = file->find(name);
  return it == file->end() ? nullptr : &it->second;
}

std::string Get(const std::map<std::string, std::string>* section, const std::string& key) {
  if (section == nullptr) return {};
  auto it = section->find(key);
  return it == section->end() ? std::string() : it->second;
}

Result<uint64_t> ParseByteSize(std::string_view url, std::string_view option,
                               std::string_view value) {
  uint64_t n = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
  std::string_view suffix(end, value.data() + value.size() - end);
  uint64_t unit = 1;
  if (suffix == "K" || suffix == "k" || suffix == "KiB") {
    unit = 1ull << 10;
  } else if (suffix == "M" || suffix == "m" || suffix == "MiB") {
    unit = 1ull << 20;
  } else if (suffix == "G" || suffix == "g" || suffix == "GiB") {
    unit = 1ull << 30;
  } else if (!suffix.empty()) {
    unit = 0;
  }
  if (value.empty() || ec != std::errc() || unit == 0 || n > (UINT64_MAX / unit)) {
    return Err(Code::kInvalidArgument, "repository url '{}': {}='{}' is not a size (write e.g. 8M)",
               url, option, value);
  }
  return n * unit;
}

Result<bool> ParseBool(std::string_view url, std::string_view option, std::string_view value) {
  const std::string v = Lower(value);
  if (v == "1" || v == "true" || v == "yes" || v == "on") return true;
  if (v == "0" || v == "false" || v == "no" || v == "off") return false;
  return Err(Code::kInvalidArgument, "repository url '{}': {}='{}' is not true or false", url,
             option, value);
}

Result<S3AddressingStyle> ParseStyle(std::string_view where, std::string_view value) {
  const std::string v = Lower(value);
  if (v == "auto") return S3AddressingStyle::kAuto;
  if (v == "path") return S3AddressingStyle::kPath;
  if (v == "virtual" || v == "virtual-host" || v == "virtual-hosted") {
    return S3AddressingStyle::kVirtualHost;
  }
  return Err(Code::kInvalidArgument, "{}: addressing style '{}' is not auto, path or virtual",
             where, value);
}

bool IsLoopbackHost(std::string_view host) {
  if (host == "localhost" || host == "[::1]") return true;
  if (!host.starts_with("127.")) return false;
  int dots = 0;
  for (char c : host) {
    if (c == '.') {
      ++dots;
    } else if (c < '0' || c > '9') {
      return false;
    }
  }
  return dots == 3;
}

// Buckets whose names are valid DNS labels without dots can be virtual hosts under a TLS
// wildcard certificate; others need path style.
bool DnsSafeBucket(std::string_view b) {
  if (b.size() < 3 || b.size() > 63) return false;
  for (char c : b) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return b.front() != '-' && b.back() != '-';
}

struct UrlParts {
  std::string bucket;
  std::string prefix;
  std::vector<std::pair<std::string, std::string>> query;
};

Result<UrlParts> SplitUrl(std::string_view url) {
  if (!url.starts_with(kScheme)) {
    return Err(Code::kInvalidArgument, "repository url '{}' does not start with s3://", url);
  }
  std::string_view rest = url.substr(kScheme.size());
  std::string_view query;
  if (const size_t q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  UrlParts parts;
  const size_t slash = rest.find('/');
  parts.bucket = std::string(rest.substr(0, slash));
  if (slash != std::string_view::npos) {
    LB_ASSIGN_OR_RETURN(parts.prefix, PercentDecode(url, rest.substr(slash + 1)));
  }
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view item = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    LB_ASSIGN_OR_RETURN(std::string name, PercentDecode(url, item.substr(0, eq)));
    std::string value;
    if (eq != std::string_view::npos) {
      LB_ASSIGN_OR_RETURN(value, PercentDecode(url, item.substr(eq + 1)));
    }
    parts.query.emplace_back(Lower(name), std::move(value));
  }
  return parts;
}

bool IsCredentialOption(std::string_view name) {
  for (std::string_view secret : {"access_key", "access_key_id", "aws_access_key_id", "secret",
                                  "secret_key", "secret_access_key", "aws_secret_access_key",
                                  "session_token", "aws_session_token", "token", "password"}) {
    if (name == secret) return true;
  }
  return false;
}

}  // namespace

std::optional<std::string> ProcessEnv(std::string_view name) {
  const char* v = std::getenv(std::string(name).c_str());
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

Result<S3Endpoint> ParseS3Endpoint(std::string_view url) {
  S3Endpoint ep;
  std::string_view rest;
  if (url.starts_with("https://")) {
    ep.scheme = "https";
    rest = url.substr(8);
  } else if (url.starts_with("http://")) {
    ep.scheme = "http";
    rest = url.substr(7);
  } else {
    return Err(Code::kInvalidArgument, "s3 endpoint '{}' must start with http:// or https://", url);
  }
  if (rest.ends_with('/')) rest.remove_suffix(1);
  if (rest.empty() || rest.find_first_of("/?#@ ") != std::string_view::npos) {
    return Err(Code::kInvalidArgument,
               "s3 endpoint '{}' must be scheme://host[:port] without a path", url);
  }
  ep.authority = std::string(rest);
  size_t port_colon = std::string_view::npos;
  if (rest.front() == '[') {
    const size_t close = rest.find(']');
    if (close == std::string_view::npos) {
      return Err(Code::kInvalidArgument, "s3 endpoint '{}': unterminated IPv6 address", url);
    }
    if (close + 1 < rest.size()) {
      if (rest[close + 1] != ':') {
        return Err(Code::kInvalidArgument, "s3 endpoint '{}': junk after the address", url);
      }
      port_colon = close + 1;
    }
  } else {
    port_colon = rest.find(':');
  }
  ep.host = std::string(rest.substr(0, port_colon));
  if (port_colon != std::string_view::npos) {
    const std::string_view port = rest.substr(port_colon + 1);
    unsigned n = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
    if (port.empty() || ec != std::errc() || end != port.data() + port.size() || n == 0 ||
        n > 65535) {
      return Err(Code::kInvalidArgument, "s3 endpoint '{}': bad port '{}'", url, port);
    }
  }
  if (ep.host.empty()) return Err(Code::kInvalidArgument, "s3 endpoint '{}' has no host", url);
  ep.loopback = IsLoopbackHost(Lower(ep.host));
  const std::string lower_host = Lower(ep.host);
  ep.aws = lower_host == "amazonaws.com" || lower_host.ends_with(".amazonaws.com");
  return ep;
}

Status ValidateS3Options(const S3Options& o) {
  if (o.bucket.empty()) return Err(Code::kInvalidArgument, "s3: the bucket name is empty");
  if (o.bucket.size() > 255 || o.bucket.find_first_of("/?#%\\ \t\r\n") != std::string::npos) {
    return Err(Code::kInvalidArgument, "s3: '{}' is not a bucket name", o.bucket);
  }
  if (!o.prefix.empty()) {
    if (Status s = ValidateObjectName(o.prefix); !s.ok()) {
      return Err(Code::kInvalidArgument, "s3 bucket '{}': prefix '{}' is not usable ({})", o.bucket,
                 o.prefix, s.message());
    }
  }
  if (o.region.empty()) return Err(Code::kInvalidArgument, "s3: the region is empty");
  if (o.region.find_first_of("/ \t\r\n") != std::string::npos) {
    return Err(Code::kInvalidArgument, "s3: '{}' is not a region", o.region);
  }
  if (!o.endpoint.empty()) {
    LB_ASSIGN_OR_RETURN(const S3Endpoint ep, ParseS3Endpoint(o.endpoint));
    if (ep.scheme == "http" && !ep.loopback && !o.allow_http) {
      return Status(Code::kInvalidArgument,
                    fmt::format("s3 endpoint '{}' is plain http to a host that is not loopback",
                                o.endpoint))
          .WithHint(
              "use https, or add allow_http=true to the url if the network path is trusted "
              "(objects are encrypted either way, but requests and listings are not)");
    }
    if (o.style == S3AddressingStyle::kVirtualHost &&
        (ep.host.front() == '[' || ep.host.find_first_not_of("0123456789.") == std::string::npos)) {
      return Err(Code::kInvalidArgument,
                 "s3 endpoint '{}' is an IP address: virtual-host addressing needs a name, "
                 "use style=path",
                 o.endpoint);
    }
  }
  if (o.sse != "" && o.sse != "AES256" && o.sse != "aws:kms") {
    return Err(Code::kInvalidArgument, "s3: sse '{}' is not AES256 or aws:kms", o.sse);
  }
  if (!o.sse_kms_key_id.empty() && o.sse != "aws:kms") {
    return Err(Code::kInvalidArgument, "s3: sse_kms_key_id needs sse=aws:kms");
  }
  if (o.part_size == 0 || o.part_size > (5ull << 30)) {
    return Err(Code::kInvalidArgument, "s3: part size {} is not in 1 byte .. 5 GiB", o.part_size);
  }
  if (o.multipart_threshold == 0) {
    return Err(Code::kInvalidArgument, "s3: the multipart threshold must be positive");
  }
  if (o.upload_concurrency < 1 || o.upload_concurrency > 64) {
    return Err(Code::kInvalidArgument, "s3: upload concurrency {} is not in 1..64",
               o.upload_concurrency);
  }
  if (o.max_keys < 1 || o.max_keys > 1000) {
    return Err(Code::kInvalidArgument, "s3: max_keys {} is not in 1..1000", o.max_keys);
  }
  if (o.retry.max_attempts < 1) {
    return Err(Code::kInvalidArgument, "s3: at least one attempt per request is needed");
  }
  if (o.credentials.empty()) {
    return Status(Code::kInvalidArgument,
                  fmt::format("s3 bucket '{}': no access key and secret key", o.bucket))
        .WithHint(std::string(kCredentialHint));
  }
  return Status::Ok();
}

void UseFallbackRetryPolicy(S3RetryPolicy& policy) {
  // Three attempts ride out a lost connection or two (backoff waits of at most 0.2 and
  // 0.4 s); a blackholed server costs one connect timeout.
  policy.unreached_max_attempts = std::min(policy.unreached_max_attempts, 3);
  policy.unreached_max_total =
      std::min(policy.unreached_max_total, std::chrono::milliseconds(2'000));
  policy.unreached_connect_timeout =
      std::min(policy.unreached_connect_timeout, std::chrono::milliseconds(3'000));
}

std::string S3Location(const S3Options& o) {
  return o.prefix.empty() ? fmt::format("s3://{}", o.bucket)
                          : fmt::format("s3://{}/{}", o.bucket, o.prefix);
}

Result<S3Options> S3OptionsFromUrl(std::string_view url, const EnvLookup& env) {
  LB_ASSIGN_OR_RETURN(UrlParts parts, SplitUrl(url));
  S3Options o;
  o.bucket = parts.bucket;
  std::string_view prefix = parts.prefix;
  while (prefix.starts_with('/')) prefix.remove_prefix(1);
  while (prefix.ends_with('/')) prefix.remove_suffix(1);
  o.prefix = std::string(prefix);
  // "s3://KEY:SECRET@bucket/...": refused before anything can echo the url back.
  if (o.bucket.find('@') != std::string::npos) {
    const std::string host = o.bucket.substr(o.bucket.rfind('@') + 1);
    return Status(Code::kInvalidArgument,
                  fmt::format("repository url 's3://…@{}': credentials are not accepted in the "
                              "url (they would show in ps and shell history)",
                              host))
        .WithHint(std::string(kCredentialHint));
  }
  if (o.bucket.empty()) {
    return Status(Code::kInvalidArgument, fmt::format("repository url '{}' names no bucket", url))
        .WithHint("write s3://BUCKET/PREFIX");
  }

  // url options, remembered until the environment and files have been read.
  std::map<std::string, std::string> opt;
  for (auto& [name, value] : parts.query) {
    if (IsCredentialOption(name)) {
      return Status(Code::kInvalidArgument,
                    fmt::format("repository url '{}': credentials are not accepted in the url "
                                "(they would show in ps and shell history)",
                                S3Location(o)))
          .WithHint(std::string(kCredentialHint));
    }
    static const char* const kKnown[] = {
        "endpoint",       "region",          "style",         "ca",
        "profile",        "allow_http",      "storage_class", "sse",
        "sse_kms_key_id", "conditional_put", "part_size",     "multipart_threshold",
        "max_keys"};
    if (std::find(std::begin(kKnown), std::end(kKnown), name) == std::end(kKnown)) {
      return Status(Code::kInvalidArgument,
                    fmt::format("repository url '{}': unknown option '{}'", S3Location(o), name))
          .WithHint(
              "known options: endpoint, region, style, ca, profile, allow_http, storage_class, "
              "sse, sse_kms_key_id, conditional_put, part_size, multipart_threshold, max_keys");
    }
    if (!opt.emplace(name, std::move(value)).second) {
      return Err(Code::kInvalidArgument, "repository url '{}': option '{}' given twice",
                 S3Location(o), name);
    }
  }
  auto url_opt = [&](const std::string& name) -> std::optional<std::string> {
    auto it = opt.find(name);
    if (it == opt.end()) return std::nullopt;
    return it->second;
  };
  const std::string where = fmt::format("repository url '{}'", S3Location(o));

  // The profile and the shared files.
  const std::optional<std::string> url_profile = url_opt("profile");
  std::optional<std::string> named_profile = url_profile;
  if (!named_profile) named_profile = env("AWS_PROFILE");
  if (!named_profile) named_profile = env("AWS_DEFAULT_PROFILE");
  const std::string profile = named_profile.value_or("default");
  const std::string home = env("HOME").value_or("");
  const std::string config_path =
      env("AWS_CONFIG_FILE").value_or(home.empty() ? std::string() : home + "/.aws/config");
  const std::string credentials_path =
      env("AWS_SHARED_CREDENTIALS_FILE")
          .value_or(home.empty() ? std::string() : home + "/.aws/credentials");
  std::optional<IniFile> config;
  std::optional<IniFile> credentials_file;
  if (!config_path.empty()) {
    LB_ASSIGN_OR_RETURN(config, ReadIni(config_path));
  }
  if (!credentials_path.empty()) {
    LB_ASSIGN_OR_RETURN(credentials_file, ReadIni(credentials_path));
  }
  const auto* config_section =
      Section(config, profile == "default" ? "default" : "profile " + profile);
  if (config_section == nullptr && profile == "default") {
    config_section = Section(config, "profile default");
  }
  const auto* credentials_section = Section(credentials_file, profile);
  if (named_profile && config_section == nullptr && credentials_section == nullptr) {
    return Status(Code::kInvalidArgument,
                  fmt::format("{}: AWS profile '{}' is in neither '{}' nor '{}'", where, profile,
                              credentials_path, config_path))
        .WithHint("check AWS_PROFILE (or profile= in the url) and the files");
  }

  // Region.
  if (auto v = url_opt("region")) {
    o.region = *v;
  } else if (auto r = env("AWS_REGION")) {
    o.region = *r;
  } else if (auto dr = env("AWS_DEFAULT_REGION")) {
    o.region = *dr;
  } else if (std::string pr = Get(config_section, "region"); !pr.empty()) {
    o.region = pr;
  }

  // Endpoint: url, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the profile's services section,
  // the profile's s3 block, the profile's endpoint_url; else AWS for the region.
  if (auto v = url_opt("endpoint")) {
    o.endpoint = *v;
  } else {
    bool ignore_configured = false;
    if (auto ig = env("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")) {
      ignore_configured = Lower(*ig) == "true";
    }
    if (!ignore_configured) {
      if (auto e = env("AWS_ENDPOINT_URL_S3")) {
        o.endpoint = *e;
      } else if (auto g = env("AWS_ENDPOINT_URL")) {
        o.endpoint = *g;
      } else {
        const std::string services = Get(config_section, "services");
        std::string from_file;
        if (!services.empty()) {
          from_file = Get(Section(config, "services " + services), "s3.endpoint_url");
        }
        if (from_file.empty()) from_file = Get(config_section, "s3.endpoint_url");
        if (from_file.empty()) from_file = Get(config_section, "endpoint_url");
        o.endpoint = from_file;
      }
    }
  }
  if (o.endpoint.empty()) o.endpoint = fmt::format("https://s3.{}.amazonaws.com", o.region);
  while (o.endpoint.ends_with('/')) o.endpoint.pop_back();

  // Addressing style.
  if (auto v = url_opt("style")) {
    LB_ASSIGN_OR_RETURN(o.style, ParseStyle(where, *v));
  } else if (std::string s = Get(config_section, "s3.addressing_style"); !s.empty()) {
    LB_ASSIGN_OR_RETURN(o.style, ParseStyle(fmt::format("AWS profile '{}'", profile), s));
  }
  if (o.style == S3AddressingStyle::kAuto) {
    auto ep = ParseS3Endpoint(o.endpoint);
    o.style = ep.ok() && ep->aws && DnsSafeBucket(o.bucket) ? S3AddressingStyle::kVirtualHost
                                                            : S3AddressingStyle::kPath;
  }

  // TLS trust.
  if (auto v = url_opt("ca")) {
    o.http.ca_file = *v;
  } else if (auto b = env("AWS_CA_BUNDLE")) {
    o.http.ca_file = *b;
  } else {
    o.http.ca_file = Get(config_section, "ca_bundle");
  }

  if (auto v = url_opt("allow_http")) {
    LB_ASSIGN_OR_RETURN(o.allow_http, ParseBool(url, "allow_http", *v));
  }
  if (auto v = url_opt("storage_class")) o.storage_class = *v;
  if (auto v = url_opt("sse")) o.sse = *v;
  if (auto v = url_opt("sse_kms_key_id")) o.sse_kms_key_id = *v;
  if (auto v = url_opt("conditional_put")) {
    const std::string c = Lower(*v);
    if (c == "auto") {
      o.conditional_put = S3ConditionalPut::kAuto;
    } else if (c == "on" || c == "true" || c == "yes") {
      o.conditional_put = S3ConditionalPut::kOn;
    } else if (c == "off" || c == "false" || c == "no") {
      o.conditional_put = S3ConditionalPut::kOff;
    } else {
      return Err(Code::kInvalidArgument, "{}: conditional_put='{}' is not auto, on or off", where,
                 *v);
    }
  }
  if (auto v = url_opt("part_size")) {
    LB_ASSIGN_OR_RETURN(o.part_size, ParseByteSize(url, "part_size", *v));
  }
  if (auto v = url_opt("multipart_threshold")) {
    LB_ASSIGN_OR_RETURN(o.multipart_threshold, ParseByteSize(url, "multipart_threshold", *v));
  }
  if (auto v = url_opt("max_keys")) {
    int n = 0;
    const auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
    if (ec != std::errc() || end != v->data() + v->size()) {
      return Err(Code::kInvalidArgument, "{}: max_keys='{}' is not a number", where, *v);
    }
    o.max_keys = n;
  }

  // Credentials: the environment, unless the url names a profile; then the credentials
  // file; then the config file, which the AWS tools also accept keys from.
  auto from_section = [&](const std::map<std::string, std::string>* section,
                          const std::string& path) {
    const std::string id = Get(section, "aws_access_key_id");
    const std::string secret = Get(section, "aws_secret_access_key");
    if (id.empty() || secret.empty()) return false;
    o.credentials = AwsCredentials(id, secret, Get(section, "aws_session_token"));
    o.credentials_source = fmt::format("profile '{}' in '{}'", profile, path);
    return true;
  };
  const auto id = env("AWS_ACCESS_KEY_ID");
  const auto secret = env("AWS_SECRET_ACCESS_KEY");
  bool found = false;
  if (!url_profile && id && secret) {
    auto token = env("AWS_SESSION_TOKEN");
    if (!token) token = env("AWS_SECURITY_TOKEN");
    o.credentials = AwsCredentials(*id, *secret, token.value_or(""));
    o.credentials_source = "the environment variables AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY";
    found = true;
  }
  if (!found) found = from_section(credentials_section, credentials_path);
  if (!found) found = from_section(config_section, config_path);
  if (!found) {
    for (std::string_view unsupported : {"role_arn", "credential_process", "sso_session",
                                         "sso_start_url", "web_identity_token_file"}) {
      if (!Get(config_section, std::string(unsupported)).empty() ||
          !Get(credentials_section, std::string(unsupported)).empty()) {
        return Status(Code::kInvalidArgument,
                      fmt::format("{}: AWS profile '{}' uses {}, which lifeboat does not "
                                  "support",
                                  where, profile, unsupported))
            .WithHint(
                "export temporary keys instead (e.g. `aws configure export-credentials "
                "--format env`), or use a profile with aws_access_key_id and "
                "aws_secret_access_key");
      }
    }
    if (id.has_value() != secret.has_value() && !url_profile) {
      return Status(Code::kInvalidArgument,
                    fmt::format("{}: only one of AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY is "
                                "set",
                                where))
          .WithHint("set both, or neither to use a profile");
    }
    return Status(Code::kInvalidArgument, fmt::format("{}: no S3 credentials found", where))
        .WithHint(std::string(kCredentialHint));
  }

  LB_RETURN_IF_ERROR(ValidateS3Options(o).WithContext(where));
  return o;
}

}  // namespace lb::storage
