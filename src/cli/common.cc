#include "cli/common.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include "storage/storage.h"
#include "util/log.h"

namespace lb::cli {

GlobalOptions& Globals() {
  static GlobalOptions g;
  return g;
}

namespace {

std::vector<std::string>& MutableSecretsRead() {
  static std::vector<std::string> secrets;
  return secrets;
}

std::vector<OpenedRepository>& MutableOpenedRepositories() {
  static std::vector<OpenedRepository> opened;
  return opened;
}

Status& MutableLastFailure() {
  static Status last;
  return last;
}

}  // namespace

const std::vector<std::string>& SecretsRead() { return MutableSecretsRead(); }
const std::vector<OpenedRepository>& OpenedRepositories() { return MutableOpenedRepositories(); }
const Status& LastFailure() { return MutableLastFailure(); }

Status CheckUrlHasNoCredentials(std::string_view url) {
  // Every message quotes repository urls, so one that carries a secret is refused here,
  // before anything can echo it: "s3://KEY:SECRET@bucket/..." or "...?secret_key=...".
  const size_t scheme_end = url.find("://");
  bool found = false;
  if (scheme_end != std::string_view::npos) {
    std::string_view rest = url.substr(scheme_end + 3);
    found = rest.substr(0, rest.find_first_of("/?")).find('@') != std::string_view::npos;
  }
  if (const size_t q = url.find('?'); q != std::string_view::npos) {
    std::string query(url.substr(q + 1));
    for (auto& c : query) c = char(std::tolower(static_cast<unsigned char>(c)));
    for (std::string_view word : {"secret", "password", "token", "access_key", "credential"})
      found |= query.find(word) != std::string::npos;
  }
  if (!found) return Status::Ok();
  return Status(Code::kInvalidArgument,
                fmt::format("a repository url starting '{}' carries credentials; they are not "
                            "accepted in urls (they would show in ps, shell history and logs)",
                            url.substr(0, scheme_end == std::string_view::npos ? 0 : scheme_end + 3)))
      .WithHint("S3 credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE "
                "or the AWS credentials file; the repository secret from --key-file or "
                "--password-file");
}

Result<std::vector<std::string>> RepoUrls() {
  std::vector<std::string> urls = Globals().repos;
  if (urls.empty())
    if (const char* r = std::getenv("LIFEBOAT_REPO"); r && *r) urls.emplace_back(r);
  if (urls.empty())
    return Status(Code::kInvalidArgument, "no repository given")
        .WithHint("pass --repo PATH or set LIFEBOAT_REPO");
  for (const auto& u : urls) LB_RETURN_IF_ERROR(CheckUrlHasNoCredentials(u));
  return urls;
}

Result<std::string> RepoUrl() {
  LB_ASSIGN_OR_RETURN(auto urls, RepoUrls());
  if (urls.size() > 1)
    return Status(Code::kInvalidArgument,
                  fmt::format("this command works on one repository; --repo was given {} times",
                              urls.size()))
        .WithHint("several repositories are for backups, wal-push, wal-get and restores; "
                  "see 'lifeboat copy' to bring one repository up to date from another");
  return urls[0];
}

Result<std::string> ReadPasswordFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return ErrnoStatus(errno, fmt::format("read password file '{}'", path));
  std::stringstream ss;
  ss << in.rdbuf();
  std::string pw = ss.str();
  if (!pw.empty() && pw.back() == '\n') pw.pop_back();
  if (!pw.empty() && pw.back() == '\r') pw.pop_back();
  if (pw.empty()) return Err(Code::kInvalidArgument, "password file '{}' is empty", path);
  MutableSecretsRead().push_back(pw);
  return pw;
}

SecretSources RepoSecretSources() {
  return {Globals().key_file, Globals().password_file, "--key-file", "--password-file",
          "LIFEBOAT_KEY_FILE", "LIFEBOAT_PASSWORD_FILE", "LIFEBOAT_PASSWORD"};
}

SecretSources FromSecretSources() {
  return {Globals().from_key_file, Globals().from_password_file, "--from-key-file",
          "--from-password-file", "LIFEBOAT_FROM_KEY_FILE", "LIFEBOAT_FROM_PASSWORD_FILE",
          "LIFEBOAT_FROM_PASSWORD"};
}

namespace {
const char* Env(const std::string& name) {
  const char* v = std::getenv(name.c_str());
  return v && *v ? v : nullptr;
}
}  // namespace

Result<std::string> ReadPassword(const SecretSources& src) {
  if (!src.password_file.empty()) return ReadPasswordFile(src.password_file);
  if (const char* f = Env(src.password_file_env)) return ReadPasswordFile(f);
  if (const char* p = Env(src.password_env)) {
    MutableSecretsRead().emplace_back(p);
    return std::string(p);
  }
  return Status(Code::kInvalidArgument, "no password given")
      .WithHint(fmt::format("set {} or {} (or pass {} FILE / {} FILE, or set {})",
                            src.password_file_env, src.key_file_env, src.password_file_option,
                            src.key_file_option, src.password_env));
}

Result<repo::Secret> ReadSecret(const SecretSources& src) {
  auto key_file = [](const std::string& path) -> Result<repo::Secret> {
    LB_ASSIGN_OR_RETURN(std::string v, ReadPasswordFile(path));
    return repo::Secret{std::move(v), true};
  };
  if (!src.key_file.empty()) return key_file(src.key_file);
  if (!src.password_file.empty()) {
    LB_ASSIGN_OR_RETURN(std::string pw, ReadPasswordFile(src.password_file));
    return repo::Secret{std::move(pw), false};
  }
  if (const char* f = Env(src.key_file_env)) return key_file(f);
  LB_ASSIGN_OR_RETURN(std::string pw, ReadPassword(src));
  return repo::Secret{std::move(pw), false};
}

Result<OpenedRepo> OpenRepo(LockMode lock, const std::string& purpose) {
  LB_ASSIGN_OR_RETURN(std::string url, RepoUrl());
  return OpenRepoAt(url, lock, purpose);
}

Result<OpenedRepo> OpenBackupTarget(LockMode lock, const std::string& purpose) {
  LB_ASSIGN_OR_RETURN(auto urls, RepoUrls());
  auto r = OpenRepoAt(urls[0], lock, purpose);
  if (!r.ok() && urls.size() > 1)
    return r.status().WithContext(fmt::format("repository '{}'", urls[0]));
  return r;
}

Result<OpenedRepo> OpenFirstReachable(LockMode lock, const std::string& purpose,
                                      std::string* url_out) {
  LB_ASSIGN_OR_RETURN(auto urls, RepoUrls());
  Status last;
  for (size_t i = 0; i < urls.size(); ++i) {
    auto r = OpenRepoAt(urls[i], lock, purpose, /*has_fallback=*/i + 1 < urls.size());
    if (r.ok()) {
      if (i > 0) LogWarning("using repository '{}' (number {} in --repo order)", urls[i], i + 1);
      if (url_out) *url_out = urls[i];
      return r;
    }
    last = r.status().WithContext(fmt::format("repository '{}'", urls[i]));
    if (i + 1 < urls.size()) LogWarning("{}; trying the next repository", last.ToString());
  }
  return last;
}

Result<OpenedRepo> OpenRepoAt(const std::string& url, LockMode lock, const std::string& purpose,
                              bool has_fallback) {
  LB_ASSIGN_OR_RETURN(repo::Secret pw, ReadSecret());
  return OpenRepoAt(url, pw, lock, purpose, has_fallback);
}

Result<OpenedRepo> OpenRepoAt(const std::string& url, const repo::Secret& secret, LockMode lock,
                              const std::string& purpose, bool has_fallback) {
  auto st = storage::OpenStorage(url, {.create = false, .has_fallback = has_fallback});
  if (!st.ok()) {
    if (st.status().code() == Code::kNotFound)
      return Status(Code::kFailedPrecondition,
                    fmt::format("'{}' is not a lifeboat repository (it does not exist)", url))
          .WithHint("create one with 'lifeboat init'");
    return st.status();
  }
  OpenedRepo out;
  LB_ASSIGN_OR_RETURN(out.repo, repo::Repository::Open(std::move(*st), secret));
  auto& opened = MutableOpenedRepositories();
  auto same = std::find_if(opened.begin(), opened.end(), [&](const auto& o) { return o.url == url; });
  if (same != opened.end()) same->repo = out.repo;
  else opened.push_back({url, out.repo});
  if (lock != LockMode::kNone) {
    LB_ASSIGN_OR_RETURN(out.lock, repo::RepoLock::Acquire(out.repo->storage(),
                                                          lock == LockMode::kExclusive, purpose));
  }
  return out;
}

void AddFromSecretOptions(CLI::App& cmd) {
  cmd.add_option("--from-password-file", Globals().from_password_file,
                 "file holding the other repository's password (default: "
                 "$LIFEBOAT_FROM_PASSWORD_FILE, $LIFEBOAT_FROM_PASSWORD)");
  cmd.add_option("--from-key-file", Globals().from_key_file,
                 "key file of the other repository (default: $LIFEBOAT_FROM_KEY_FILE)");
}

Status FromRepoError(const Status& s, std::string_view what) {
  Status out = s.WithContext(fmt::format("{} repository", what));
  if (s.code() == Code::kWrongKey)
    out = out.WithHint("check LIFEBOAT_FROM_PASSWORD_FILE / --from-password-file, or "
                       "LIFEBOAT_FROM_KEY_FILE / --from-key-file");
  return out;
}

int Fail(const Status& s) {
  MutableLastFailure() = s;
  std::string text = s.ToString();
  size_t nl = text.find('\n');
  std::fprintf(stderr, "error: %s\n", text.substr(0, nl).c_str());
  if (nl != std::string::npos) std::fprintf(stderr, "%s\n", text.substr(nl + 1).c_str());
  return ExitCodeFor(s.code());
}

bool ProgressWanted() { return !Globals().quiet && !Globals().json && isatty(2); }

void PrintJson(const nlohmann::json& j) {
  std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
}

}  // namespace lb::cli
