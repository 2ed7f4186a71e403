#include "plan/plan.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <ctime>
#include <fstream>
#include <iterator>
#include <limits>
#include <set>
#include <sstream>

namespace lb::plan {

namespace {

constexpr int64_t kDay = 86400;
// RPO and retention checks look at the runs of a year from now: a year has every
// month end, leap day position and DST transition that a schedule meets.
constexpr int64_t kLookAhead = 366 * kDay;
constexpr int64_t kForever = std::numeric_limits<int64_t>::max();

using Names = std::vector<std::string_view>;

const Names kTopKeys = {"version", "timezone", "encryption", "repositories", "sources", "jobs",
                        "wal",     "objectives", "drills", "audit", "daemon"};
const Names kKeySourceKeys = {"key_file", "password_file", "password_env"};
const Names kRepositoryKeys = {"url",      "role",          "priority",     "region",
                               "key_file", "password_file", "password_env", "s3_credentials_file",
                               "s3_profile"};
const Names kPostgresKeys = {"kind", "conninfo_file", "env", "pgdata", "wal_source"};
const Names kFilesKeys = {"kind", "paths", "excludes"};
const Names kCommandKeys = {"kind", "command", "filename"};
const Names kLogsKeys = {"kind", "paths", "older_than", "patterns", "remove_archived"};
const Names kJobKeys = {"kind",      "source",           "schedule", "timezone", "retention",
                        "repositories", "tags",          "databases", "from",    "read_data",
                        "read_data_subset"};
const Names kRetentionKeys = {"keep_last",    "keep_hourly", "keep_daily",  "keep_weekly",
                              "keep_monthly", "keep_yearly", "keep_within", "keep_tags"};
const Names kWalKeys = {"retention", "archive_timeout", "sources", "repositories"};
const Names kObjectiveKeys = {"description", "sources", "rpo", "rto"};
const Names kDrillKeys = {"source",      "schedule", "timezone", "repository",
                          "restore_age", "queries",  "rto"};
const Names kQueryKeys = {"sql", "expect"};
const Names kAuditKeys = {"log", "copy_to_repository"};
const Names kDaemonKeys = {"listen",      "token_file",   "history",   "job_timeout",
                           "retries",     "retry_delay",  "max_parallel", "stop_grace"};

// Keys that would hold a secret, and what to write instead. Checked in every map.
struct SecretKey {
  std::string_view key;
  std::string_view instead;
};
constexpr SecretKey kSecretKeys[] = {
    {"password", "password_file: PATH or password_env: VARIABLE"},
    {"passphrase", "password_file: PATH or password_env: VARIABLE"},
    {"key", "key_file: PATH"},
    {"secret", "a *_file key naming a file that holds it"},
    {"token", "token_file: PATH"},
    {"api_key", "a *_file key naming a file that holds it"},
    {"private_key", "a *_file key naming a file that holds it"},
    {"access_key", "s3_credentials_file: PATH"},
    {"access_key_id", "s3_credentials_file: PATH"},
    {"secret_key", "s3_credentials_file: PATH"},
    {"secret_access_key", "s3_credentials_file: PATH"},
    {"aws_access_key_id", "s3_credentials_file: PATH"},
    {"aws_secret_access_key", "s3_credentials_file: PATH"},
    {"pgpassword", "a password file (PGPASSFILE, ~/.pgpass) or a conninfo_file"},
};

std::string Join(const Names& names) {
  std::string out;
  for (auto n : names) out += (out.empty() ? "" : ", ") + std::string(n);
  return out;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = char(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// The closest of `names` to `word` when it is a near miss (a typo), else empty.
std::string_view Suggest(std::string_view word, const Names& names) {
  std::string w = Lower(word);
  std::string_view best;
  size_t best_d = std::max<size_t>(1, w.size() / 3) + 1;
  for (auto n : names) {
    size_t d = EditDistance(w, n);
    if (d < best_d) {
      best_d = d;
      best = n;
    }
  }
  return best;
}

bool ValidName(std::string_view n) {
  if (n.empty() || n.size() > 64 || !std::isalnum(static_cast<unsigned char>(n[0]))) return false;
  return std::all_of(n.begin(), n.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

template <typename T>
bool Contains(const std::vector<T>& v, std::string_view x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

// One key of a YAML map with where it and its value are.
struct Entry {
  std::string key;
  YAML::Node value;
  Location key_at;
  Location value_at;  // the key's location when the value is empty
  size_t value_pos = 0;  // byte offset of the value in the text (for columns inside it)
};

// The keys of one map, in file order.
class Fields {
 public:
  const Entry* Get(std::string_view key) const {
    for (const auto& e : entries_)
      if (e.key == key) return &e;
    return nullptr;
  }
  const std::vector<Entry>& entries() const { return entries_; }
  void Add(Entry e) { entries_.push_back(std::move(e)); }

 private:
  std::vector<Entry> entries_;
};

class Loader {
 public:
  Loader(std::string_view text, std::string_view file, const LoadOptions& opts)
      : text_(text), file_(file), now_(opts.now != 0 ? opts.now : UnixSeconds(std::time(nullptr))) {}

  LoadedPlan Run() {
    out_.plan.file = file_;
    YAML::Node root;
    try {
      std::vector<YAML::Node> docs = YAML::LoadAll(std::string(text_));
      if (docs.size() > 1) {
        Error(At(docs[1].Mark()), "the plan holds more than one YAML document ('---')",
              "put the whole plan in one document");
      }
      if (!docs.empty()) root = docs[0];
    } catch (const YAML::Exception& e) {
      // The parser stops at its first syntax error; nothing after it can be checked.
      Error(At(e.mark), fmt::format("YAML syntax error: {}", e.msg));
      return Finish();
    }
    if (!root || root.IsNull()) {
      Error(Location{std::string(file_), 1, 1}, "the plan is empty",
            "start from examples/reservations-plan.yaml");
      return Finish();
    }
    if (!root.IsMap()) {
      Error(At(root.Mark()), fmt::format("the plan must be a map of sections ({}), not {}",
                                         Join(kTopKeys), TypeName(root)));
      return Finish();
    }
    try {
      LoadRoot(root);
    } catch (const YAML::Exception& e) {
      Error(At(e.mark), fmt::format("YAML error: {}", e.msg));
    }
    return Finish();
  }

 private:
  // ---- problems and locations ----

  Location At(const YAML::Mark& m) const {
    if (m.is_null() || m.line < 0) return Location{std::string(file_), 0, 0};
    return Location{std::string(file_), m.line + 1, m.column + 1};
  }
  void Error(Location where, std::string message, std::string hint = "") {
    out_.problems.push_back({Severity::kError, std::move(where), std::move(message), std::move(hint)});
  }
  void Warning(Location where, std::string message, std::string hint = "") {
    out_.problems.push_back(
        {Severity::kWarning, std::move(where), std::move(message), std::move(hint)});
  }

  LoadedPlan Finish() {
    std::stable_sort(out_.problems.begin(), out_.problems.end(),
                     [](const Problem& a, const Problem& b) {
                       return std::tie(a.where.line, a.where.column) <
                              std::tie(b.where.line, b.where.column);
                     });
    return std::move(out_);
  }

  static std::string TypeName(const YAML::Node& n) {
    switch (n.Type()) {
      case YAML::NodeType::Map: return "a map";
      case YAML::NodeType::Sequence: return "a list";
      case YAML::NodeType::Scalar: return fmt::format("'{}'", n.Scalar());
      case YAML::NodeType::Null: return "nothing";
      default: return "nothing";
    }
  }

  // ---- maps ----

  // Reads a map's keys: reports duplicates, inline secrets and unknown keys (with the
  // expected ones and a suggestion). `other_kinds` are keys that are valid elsewhere in
  // this section but not for this item's kind. nullopt when `node` is not a map.
  std::optional<Fields> ReadMap(const YAML::Node& node, const Location& where,
                                const std::string& ctx, const Names& allowed,
                                const Names& other_kinds = {}, std::string_view kind_desc = "") {
    if (!node.IsMap()) {
      Error(where, fmt::format("{}: expected a map with keys {}, got {}", ctx, Join(allowed),
                               TypeName(node)));
      return std::nullopt;
    }
    Fields fields;
    std::map<std::string, Location> seen;
    for (auto it = node.begin(); it != node.end(); ++it) {
      Location key_at = At(it->first.Mark());
      if (!it->first.IsScalar()) {
        Error(key_at, fmt::format("{}: a key must be a plain name", ctx));
        continue;
      }
      std::string key = it->first.Scalar();
      auto [pos, inserted] = seen.emplace(key, key_at);
      if (!inserted) {
        Error(key_at, fmt::format("{}: duplicate key '{}' (first at line {})", ctx, key,
                                  pos->second.line),
              "YAML keeps only one of them; remove or rename the other");
        continue;
      }
      Entry e;
      e.key = key;
      e.value = it->second;
      e.key_at = key_at;
      bool empty = it->second.IsNull() && !IsExplicitNull(it->second);
      e.value_at = empty ? key_at : At(it->second.Mark());
      e.value_pos = empty ? 0 : size_t(std::max(0, it->second.Mark().pos));
      if (IsSecretKey(key, ctx, key_at)) continue;
      if (!Contains(allowed, key)) {
        if (Contains(other_kinds, key)) {
          Error(key_at, fmt::format("{}: '{}' does not apply to {}", ctx, key, kind_desc),
                fmt::format("keys of {}: {}", kind_desc, Join(allowed)));
          continue;
        }
        auto s = Suggest(key, allowed);
        Error(key_at,
              s.empty()
                  ? fmt::format("{}: unknown key '{}'; expected one of: {}", ctx, key, Join(allowed))
                  : fmt::format("{}: unknown key '{}'; did you mean '{}'? expected one of: {}",
                                ctx, key, s, Join(allowed)));
        continue;
      }
      fields.Add(std::move(e));
    }
    return fields;
  }

  bool IsExplicitNull(const YAML::Node& n) const {
    int pos = n.Mark().pos;
    if (pos < 0 || size_t(pos) >= text_.size()) return false;
    std::string_view rest = text_.substr(size_t(pos));
    return rest.starts_with("~") || rest.starts_with("null") || rest.starts_with("Null") ||
           rest.starts_with("NULL");
  }

  bool IsSecretKey(const std::string& key, const std::string& ctx, const Location& at) {
    std::string k = Lower(key);
    for (const auto& s : kSecretKeys) {
      if (k == s.key) {
        Error(at,
              fmt::format("{}: '{}' would put a secret into the plan file; the plan holds only "
                          "references to secrets",
                          ctx, key),
              fmt::format("use {} (readable only by the user that runs lifeboat)", s.instead));
        return true;
      }
    }
    return false;
  }

  // ---- scalars ----

  std::optional<std::string> String(const Entry& e, const std::string& ctx) {
    if (!e.value.IsScalar()) {
      Error(e.value_at, e.value.IsNull()
                            ? fmt::format("{}: '{}' has no value", ctx, e.key)
                            : fmt::format("{}: '{}' expects a string, got {}", ctx, e.key,
                                          TypeName(e.value)));
      return std::nullopt;
    }
    if (e.value.Scalar().empty()) {
      Error(e.value_at, fmt::format("{}: '{}' is empty", ctx, e.key));
      return std::nullopt;
    }
    return e.value.Scalar();
  }

  std::optional<int64_t> Integer(const Entry& e, const std::string& ctx, int64_t min, int64_t max) {
    auto s = String(e, ctx);
    if (!s) return std::nullopt;
    int64_t v = 0;
    auto [p, ec] = std::from_chars(s->data(), s->data() + s->size(), v);
    if (ec != std::errc() || p != s->data() + s->size() || v < min || v > max) {
      Error(e.value_at, fmt::format("{}: '{}' expects a whole number {}-{}, got '{}'", ctx, e.key,
                                    min, max, *s));
      return std::nullopt;
    }
    return v;
  }

  std::optional<bool> Bool(const Entry& e, const std::string& ctx) {
    auto s = String(e, ctx);
    if (!s) return std::nullopt;
    std::string l = Lower(*s);
    if (l == "true") return true;
    if (l == "false") return false;
    Error(e.value_at, fmt::format("{}: '{}' expects true or false, got '{}'", ctx, e.key, *s));
    return std::nullopt;
  }

  // A list of strings; a single string counts as a list of one.
  std::optional<std::vector<std::string>> StringList(const Entry& e, const std::string& ctx) {
    std::vector<std::string> out;
    if (e.value.IsScalar()) {
      auto s = String(e, ctx);
      if (!s) return std::nullopt;
      out.push_back(*s);
      return out;
    }
    if (!e.value.IsSequence()) {
      Error(e.value_at, e.value.IsNull()
                            ? fmt::format("{}: '{}' has no value", ctx, e.key)
                            : fmt::format("{}: '{}' expects a list of strings, got {}", ctx,
                                          e.key, TypeName(e.value)));
      return std::nullopt;
    }
    bool ok = true;
    for (const auto& item : e.value) {
      if (!item.IsScalar() || item.Scalar().empty()) {
        Error(At(item.Mark()), fmt::format("{}: '{}' expects a list of strings; this item is {}",
                                           ctx, e.key, TypeName(item)));
        ok = false;
        continue;
      }
      out.push_back(item.Scalar());
    }
    if (!ok) return std::nullopt;
    return out;
  }

  // The location of column `col` (1-based) inside the scalar value of `e`, for errors that
  // point into a string (cron expressions). Falls back to the value's start for scalars
  // whose text is not found verbatim (escapes, block scalars).
  Location InsideValue(const Entry& e, size_t col) {
    Location at = e.value_at;
    if (e.value_pos >= text_.size() || !e.value.IsScalar()) return at;
    std::string_view rest = text_.substr(e.value_pos);
    const std::string& s = e.value.Scalar();
    size_t skip = 0;
    if (!rest.empty() && (rest[0] == '"' || rest[0] == '\'')) skip = 1;
    if (rest.substr(skip).starts_with(s) && s.find('\n') == std::string::npos)
      at.column += int(skip + col - 1);
    return at;
  }

  std::optional<repo::Duration> CalendarDuration(const Entry& e, const std::string& ctx) {
    auto s = String(e, ctx);
    if (!s) return std::nullopt;
    auto d = repo::ParseDuration(*s);
    if (!d.ok()) {
      Error(e.value_at, fmt::format("{}: {}: {}", ctx, e.key, d.status().message()),
            "units y m w d h, where m is months (as in 'forget --keep-within'): 30d, 12h, 2w, 6m");
      return std::nullopt;
    }
    return *d;
  }

  std::optional<int64_t> Elapsed(const Entry& e, const std::string& ctx) {
    auto s = String(e, ctx);
    if (!s) return std::nullopt;
    auto d = ParseElapsed(*s);
    if (!d.ok()) {
      Error(e.value_at, fmt::format("{}: {}: {}", ctx, e.key, d.status().message()),
            d.status().hint());
      return std::nullopt;
    }
    return *d;
  }

  // Loads a zone once per name.
  std::optional<TimeZone> Zone(const std::string& name, const Location& at,
                               const std::string& ctx) {
    auto it = zones_.find(name);
    if (it != zones_.end()) return it->second;
    auto z = TimeZone::Load(name);
    if (!z.ok()) {
      Error(at, fmt::format("{}: {}", ctx, z.status().message()), z.status().hint());
      return std::nullopt;
    }
    zones_.emplace(name, *z);
    return *z;
  }

  // A schedule from the `schedule` and `timezone` keys of an item.
  std::optional<CronSchedule> Schedule(const Fields& f, const std::string& ctx,
                                       const Location& item_at, std::string& text_out) {
    const Entry* s = f.Get("schedule");
    if (s == nullptr) {
      Error(item_at, fmt::format("{}: missing key 'schedule'", ctx),
            "a cron expression such as '0 1 * * *' (01:00 every day) or '@daily'");
      return std::nullopt;
    }
    auto text = String(*s, ctx);
    std::optional<TimeZone> zone;
    if (const Entry* tz = f.Get("timezone")) {
      if (auto name = String(*tz, ctx)) zone = Zone(*name, tz->value_at, ctx);
    } else {
      zone = default_zone_;
    }
    if (!text) return std::nullopt;
    text_out = *text;
    if (auto err = CronExpression::Check(*text)) {
      Error(InsideValue(*s, err->column),
            fmt::format("{}: bad schedule '{}': column {}: {}", ctx, *text, err->column,
                        err->message),
            "five fields: minute hour day-of-month month day-of-week, e.g. '15 1 * * *', or "
            "@hourly/@daily/@weekly/@monthly/@yearly");
      return std::nullopt;
    }
    if (!zone) return std::nullopt;
    return CronSchedule(*CronExpression::Parse(*text), *zone);
  }

  KeySource ReadKeySource(const Fields& f, const std::string& ctx, const Location& at) {
    KeySource k;
    int given = 0;
    for (auto name : kKeySourceKeys) {
      const Entry* e = f.Get(name);
      if (e == nullptr) continue;
      auto s = String(*e, ctx);
      if (!s) continue;
      ++given;
      if (name == "key_file") k.key_file = *s;
      else if (name == "password_file") k.password_file = *s;
      else k.password_env = *s;
      if (name == "password_env" && !ValidEnvName(*s))
        Error(e->value_at, fmt::format("{}: password_env '{}' is not an environment variable "
                                       "name",
                                       ctx, *s),
              "give the variable's name (LIFEBOAT_PASSWORD), never the password itself");
    }
    if (given > 1)
      Error(at, fmt::format("{}: give one of key_file, password_file, password_env, not {}", ctx,
                            given));
    return k;
  }

  static bool ValidEnvName(std::string_view s) {
    if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
    });
  }

  // Iterates a section written as `name: {item}`, validating the names.
  template <typename F>
  void ForEachItem(const Entry& section, std::string_view what, F&& fn) {
    if (!section.value.IsMap()) {
      if (section.value.IsNull()) return;
      Error(section.value_at,
            fmt::format("{}: expected a map of {} names to their settings, got {}", section.key,
                        what, TypeName(section.value)),
            section.value.IsSequence() ? "write 'NAME:' with the settings indented under it, "
                                         "not a '- ' list"
                                       : "");
      return;
    }
    std::map<std::string, Location> seen;
    for (auto it = section.value.begin(); it != section.value.end(); ++it) {
      Location at = At(it->first.Mark());
      std::string name = it->first.IsScalar() ? it->first.Scalar() : "";
      auto [pos, inserted] = seen.emplace(name, at);
      if (!inserted) {
        Error(at, fmt::format("{}: duplicate {} name '{}' (first at line {})", section.key, what,
                              name, pos->second.line),
              "YAML keeps only one of them; rename one");
        continue;
      }
      if (!ValidName(name)) {
        Error(at, fmt::format("{}: '{}' is not a valid {} name", section.key, name, what),
              "names are up to 64 letters, digits, '-', '_' or '.', starting with a letter or "
              "digit");
        continue;
      }
      fn(name, it->second, at);
    }
  }

  // ---- sections ----

  void LoadRoot(const YAML::Node& root) {
    auto top = ReadMap(root, At(root.Mark()), "plan", kTopKeys);
    if (!top) return;
    Plan& p = out_.plan;
    if (const Entry* v = top->Get("version")) {
      if (auto n = Integer(*v, "plan", 0, 1000000)) {
        if (*n != 1)
          Error(v->value_at, fmt::format("plan version {} is not supported; this lifeboat "
                                         "reads version 1",
                                         *n));
        p.version = int(*n);
      }
    }
    default_zone_ = TimeZone::Utc();
    if (const Entry* tz = top->Get("timezone")) {
      if (auto name = String(*tz, "plan")) {
        p.timezone = *name;
        if (auto z = Zone(*name, tz->value_at, "timezone")) default_zone_ = *z;
      }
    }
    if (const Entry* e = top->Get("encryption")) {
      if (auto f = ReadMap(e->value, e->value_at, "encryption", kKeySourceKeys))
        p.encryption = ReadKeySource(*f, "encryption", e->key_at);
    }
    if (const Entry* e = top->Get("repositories")) LoadRepositories(*e);
    if (const Entry* e = top->Get("sources")) LoadSources(*e);
    if (const Entry* e = top->Get("wal")) LoadWal(*e);
    if (const Entry* e = top->Get("jobs")) LoadJobs(*e);
    // Drills before objectives: an objective's RTO is measured by a drill.
    if (const Entry* e = top->Get("drills")) LoadDrills(*e);
    if (const Entry* e = top->Get("objectives")) LoadObjectives(*e);
    if (const Entry* e = top->Get("audit")) LoadAudit(*e);
    if (const Entry* e = top->Get("daemon")) LoadDaemon(*e);

    if (p.repositories.empty() && (!p.jobs.empty() || p.wal.present))
      Error(top->Get("repositories") ? top->Get("repositories")->key_at : At(root.Mark()),
            "the plan has no repository; jobs have nowhere to write",
            "add a 'repositories' section with at least one repository and its url");
    for (const auto& d : p.drills)
      if (p.FindJob(d.name))
        Error(d.where, fmt::format("drill '{}' has the name of a job; jobs and drills share one "
                                   "run history, so their names must differ",
                                   d.name));
  }

  void LoadRepositories(const Entry& section) {
    Plan& p = out_.plan;
    int position = 0;
    ForEachItem(section, "repository", [&](const std::string& name, const YAML::Node& node,
                                            const Location& at) {
      std::string ctx = fmt::format("repository '{}'", name);
      auto f = ReadMap(node, at, ctx, kRepositoryKeys);
      ++position;
      if (!f) return;
      RepositoryPlan r;
      r.name = name;
      r.where = at;
      r.priority = position;
      if (const Entry* e = f->Get("url")) {
        if (auto u = String(*e, ctx)) {
          r.url = *u;
          CheckUrl(*e, *u, ctx);
        }
      } else {
        Error(at, fmt::format("{}: missing key 'url'", ctx),
              "a path (/srv/backup/pg), file:///srv/backup/pg or s3://bucket/prefix");
      }
      if (const Entry* e = f->Get("role")) {
        if (auto s = String(*e, ctx)) {
          if (*s == "primary") r.role = RepositoryRole::kPrimary;
          else if (*s == "secondary") r.role = RepositoryRole::kSecondary;
          else if (*s == "offsite") r.role = RepositoryRole::kOffsite;
          else
            Error(e->value_at, fmt::format("{}: unknown role '{}'; expected primary, secondary "
                                           "or offsite",
                                           ctx, *s));
        }
      }
      if (const Entry* e = f->Get("priority")) {
        if (auto n = Integer(*e, ctx, 1, 1000)) r.priority = int(*n);
      }
      if (const Entry* e = f->Get("region")) {
        if (auto s = String(*e, ctx)) r.region = *s;
      }
      r.key = ReadKeySource(*f, ctx, at);
      if (const Entry* e = f->Get("s3_credentials_file")) {
        if (auto s = String(*e, ctx)) r.s3_credentials_file = *s;
      }
      if (const Entry* e = f->Get("s3_profile")) {
        if (auto s = String(*e, ctx)) r.s3_profile = *s;
      }
      if ((!r.s3_credentials_file.empty() || !r.s3_profile.empty()) && !r.url.empty() &&
          !r.url.starts_with("s3://"))
        Error(at, fmt::format("{}: s3_credentials_file and s3_profile apply only to s3:// "
                              "repositories",
                              ctx));
      if (r.key.IsEmpty() && p.encryption.IsEmpty())
        Error(at, fmt::format("{}: no key source: lifeboat could not open it", ctx),
              "give key_file, password_file or password_env here, or for every repository in "
              "the 'encryption' section");
      p.repositories.push_back(std::move(r));
    });
    std::stable_sort(p.repositories.begin(), p.repositories.end(),
                     [](const RepositoryPlan& a, const RepositoryPlan& b) {
                       return a.priority < b.priority;
                     });
  }

  void CheckUrl(const Entry& e, const std::string& url, const std::string& ctx) {
    size_t scheme_end = url.find("://");
    if (scheme_end == std::string::npos) {
      if (url.find(':') != std::string::npos && url[0] != '/' && url[0] != '.')
        Error(e.value_at, fmt::format("{}: url '{}' has an unknown scheme; expected a path, "
                                      "file:// or s3://",
                                      ctx, url));
      return;
    }
    std::string scheme = url.substr(0, scheme_end);
    if (scheme != "file" && scheme != "s3") {
      Error(e.value_at, fmt::format("{}: url scheme '{}' is not supported; expected a path, "
                                    "file:// or s3://",
                                    ctx, scheme));
      return;
    }
    std::string rest = url.substr(scheme_end + 3);
    size_t at = rest.find('@'), slash = rest.find('/');
    if (at != std::string::npos && (slash == std::string::npos || at < slash) &&
        rest.substr(0, at).find(':') != std::string::npos)
      Error(e.value_at,
            fmt::format("{}: the url holds a secret (user:secret@); the plan holds only "
                        "references to secrets",
                        ctx),
            "remove it from the url and use s3_credentials_file: PATH");
  }

  void LoadSources(const Entry& section) {
    ForEachItem(section, "source", [&](const std::string& name, const YAML::Node& node,
                                        const Location& at) {
      std::string ctx = fmt::format("source '{}'", name);
      SourcePlan s;
      s.name = name;
      s.where = at;
      // The kind decides which keys are valid, so it is read first.
      const Names* keys = nullptr;
      std::string_view kind_desc;
      if (!node.IsMap() || !node["kind"]) {
        if (node.IsMap())
          Error(at, fmt::format("{}: missing key 'kind'; expected postgres, files, command or "
                                "logs",
                                ctx));
        else
          ReadMap(node, at, ctx, {"kind"});
        return;
      }
      YAML::Node kind_node = node["kind"];
      std::string kind = kind_node.IsScalar() ? kind_node.Scalar() : "";
      if (kind == "postgres") {
        s.kind = SourceKind::kPostgres;
        keys = &kPostgresKeys;
        kind_desc = "a postgres source";
      } else if (kind == "files") {
        s.kind = SourceKind::kFiles;
        keys = &kFilesKeys;
        kind_desc = "a files source";
      } else if (kind == "command") {
        s.kind = SourceKind::kCommand;
        keys = &kCommandKeys;
        kind_desc = "a command source";
      } else if (kind == "logs") {
        s.kind = SourceKind::kLogs;
        keys = &kLogsKeys;
        kind_desc = "a logs source";
      } else {
        static const Names kKinds = {"postgres", "files", "command", "logs"};
        auto sug = Suggest(kind, kKinds);
        Error(At(kind_node.Mark()),
              fmt::format("{}: unknown kind '{}'{}; expected postgres, files, command or logs",
                          ctx, kind, sug.empty() ? "" : fmt::format(" (did you mean '{}'?)", sug)));
        return;
      }
      Names others;
      for (const Names* n : {&kPostgresKeys, &kFilesKeys, &kCommandKeys, &kLogsKeys})
        for (auto k : *n)
          if (!Contains(*keys, k)) others.push_back(k);
      auto f = ReadMap(node, at, ctx, *keys, others, kind_desc);
      if (!f) return;
      auto path_list = [&](std::string_view key, std::vector<std::string>& dst, bool required) {
        const Entry* e = f->Get(key);
        if (e == nullptr) {
          if (required) Error(at, fmt::format("{}: missing key '{}'", ctx, key));
          return;
        }
        if (auto v = StringList(*e, ctx)) {
          dst = *v;
          if (dst.empty() && required) Error(e->value_at, fmt::format("{}: '{}' is empty", ctx, key));
        }
      };
      switch (s.kind) {
        case SourceKind::kPostgres: {
          if (const Entry* e = f->Get("conninfo_file")) {
            if (auto v = String(*e, ctx)) s.conninfo_file = *v;
          }
          if (const Entry* e = f->Get("env")) LoadPgEnv(*e, ctx, s);
          if (const Entry* e = f->Get("pgdata")) {
            if (auto v = String(*e, ctx)) s.pgdata = *v;
          }
          s.wal_source = name;
          if (const Entry* e = f->Get("wal_source")) {
            if (auto v = String(*e, ctx)) {
              if (ValidName(*v)) s.wal_source = *v;
              else Error(e->value_at, fmt::format("{}: '{}' is not a valid source name", ctx, *v));
            }
          }
          break;
        }
        case SourceKind::kFiles:
          path_list("paths", s.paths, true);
          path_list("excludes", s.excludes, false);
          break;
        case SourceKind::kLogs:
          path_list("paths", s.paths, true);
          path_list("patterns", s.patterns, false);
          if (const Entry* e = f->Get("older_than")) {
            if (auto d = CalendarDuration(*e, ctx)) s.older_than = *d;
          } else {
            Error(at, fmt::format("{}: missing key 'older_than'", ctx),
                  "logs sources archive files older than an age, e.g. older_than: 7d");
          }
          if (const Entry* e = f->Get("remove_archived")) {
            if (auto b = Bool(*e, ctx)) s.remove_archived = *b;
          }
          break;
        case SourceKind::kCommand:
          if (const Entry* e = f->Get("command")) {
            if (e->value.IsScalar()) {
              Error(e->value_at, fmt::format("{}: 'command' expects a list (argv), not a string",
                                             ctx),
                    "the command runs without a shell: write [kubectl, get, configmap, -o, yaml]");
            } else if (auto v = StringList(*e, ctx)) {
              s.command = *v;
              if (s.command.empty()) Error(e->value_at, fmt::format("{}: 'command' is empty", ctx));
            }
          } else {
            Error(at, fmt::format("{}: missing key 'command'", ctx));
          }
          if (const Entry* e = f->Get("filename")) {
            if (auto v = String(*e, ctx)) {
              if (v->find('/') != std::string::npos)
                Error(e->value_at, fmt::format("{}: filename '{}' must not contain '/'", ctx, *v));
              s.filename = *v;
            }
          }
          break;
      }
      out_.plan.sources.push_back(std::move(s));
    });
  }

  void LoadPgEnv(const Entry& e, const std::string& ctx, SourcePlan& s) {
    if (!e.value.IsMap()) {
      Error(e.value_at, fmt::format("{}: 'env' expects a map of PG* variables (PGHOST: ...), got "
                                    "{}",
                                    ctx, TypeName(e.value)));
      return;
    }
    for (auto it = e.value.begin(); it != e.value.end(); ++it) {
      Location at = At(it->first.Mark());
      std::string k = it->first.IsScalar() ? it->first.Scalar() : "";
      if (k == "PGPASSWORD") {
        Error(at, fmt::format("{}: 'PGPASSWORD' would put a secret into the plan file; the plan "
                              "holds only references to secrets",
                              ctx),
              "use PGPASSFILE: PATH (a .pgpass file) or a conninfo_file without the password");
        continue;
      }
      if (!k.starts_with("PG") || !ValidEnvName(k)) {
        Error(at, fmt::format("{}: env: '{}' is not a libpq variable (PGHOST, PGPORT, PGUSER, "
                              "PGDATABASE, PGPASSFILE, ...)",
                              ctx, k));
        continue;
      }
      if (!it->second.IsScalar()) {
        Error(At(it->second.Mark()), fmt::format("{}: env: {} expects a string", ctx, k));
        continue;
      }
      s.env[k] = it->second.Scalar();
    }
  }

  void LoadWal(const Entry& section) {
    WalPlan& w = out_.plan.wal;
    w.present = true;
    w.where = section.key_at;
    auto f = ReadMap(section.value, section.value_at, "wal", kWalKeys);
    if (!f) return;
    if (const Entry* e = f->Get("retention")) {
      if (auto d = CalendarDuration(*e, "wal")) w.retention = *d;
    } else {
      Error(section.key_at, "wal: missing key 'retention'", "e.g. retention: 7d");
    }
    if (const Entry* e = f->Get("archive_timeout")) w.archive_timeout = Elapsed(*e, "wal");
    if (const Entry* e = f->Get("sources")) {
      if (auto v = StringList(*e, "wal")) {
        w.sources = *v;
        for (const auto& s : *v) CheckSourceRef(*e, s, "wal", SourceKind::kPostgres, "WAL archiving");
      }
    }
    if (const Entry* e = f->Get("repositories")) {
      if (auto v = StringList(*e, "wal")) {
        w.repositories = *v;
        for (const auto& r : *v) CheckRepositoryRef(*e, r, "wal");
      }
    }
  }

  bool CheckRepositoryRef(const Entry& e, const std::string& name, const std::string& ctx) {
    if (out_.plan.FindRepository(name)) return true;
    Names known;
    for (const auto& r : out_.plan.repositories) known.push_back(r.name);
    auto s = Suggest(name, known);
    Error(e.value_at,
          fmt::format("{}: unknown repository '{}'{}", ctx, name,
                      s.empty() ? "" : fmt::format("; did you mean '{}'?", s)),
          known.empty() ? "define it under 'repositories'"
                        : fmt::format("repositories: {}", Join(known)));
    return false;
  }

  // `needed`: the kind the reference must have, with `why` for the message.
  bool CheckSourceRef(const Entry& e, const std::string& name, const std::string& ctx,
                      std::optional<SourceKind> needed, std::string_view why) {
    const SourcePlan* src = out_.plan.FindSource(name);
    if (src == nullptr) {
      Names known;
      for (const auto& s : out_.plan.sources) known.push_back(s.name);
      auto s = Suggest(name, known);
      Error(e.value_at,
            fmt::format("{}: unknown source '{}'{}", ctx, name,
                        s.empty() ? "" : fmt::format("; did you mean '{}'?", s)),
            known.empty() ? "define it under 'sources'" : fmt::format("sources: {}", Join(known)));
      return false;
    }
    if (needed && src->kind != *needed) {
      Error(e.value_at, fmt::format("{}: {} needs a {} source; '{}' is a {} source", ctx, why,
                                    SourceKindName(*needed), name, SourceKindName(src->kind)));
      return false;
    }
    return true;
  }

  void LoadJobs(const Entry& section) {
    Plan& p = out_.plan;
    ForEachItem(section, "job", [&](const std::string& name, const YAML::Node& node,
                                     const Location& at) {
      std::string ctx = fmt::format("job '{}'", name);
      auto f = ReadMap(node, at, ctx, kJobKeys);
      if (!f) return;
      JobPlan j;
      j.name = name;
      j.where = at;
      const Entry* kind_e = f->Get("kind");
      if (kind_e == nullptr) {
        Error(at, fmt::format("{}: missing key 'kind'; expected one of: {}", ctx, Join(JobKinds())));
        return;
      }
      auto kind_s = String(*kind_e, ctx);
      if (!kind_s) return;
      auto kind = ParseJobKind(*kind_s);
      if (!kind) {
        auto s = Suggest(*kind_s, JobKinds());
        Error(kind_e->value_at,
              fmt::format("{}: unknown kind '{}'{}; expected one of: {}", ctx, *kind_s,
                          s.empty() ? "" : fmt::format(" (did you mean '{}'?)", s),
                          Join(JobKinds())));
        return;
      }
      j.kind = *kind;
      std::string kname(JobKindName(j.kind));
      auto not_for = [&](std::string_view key, std::string_view applies) {
        if (const Entry* e = f->Get(key))
          Error(e->key_at, fmt::format("{}: '{}' does not apply to a {} job; it applies to {}", ctx,
                                       key, kname, applies));
      };

      // source
      auto needed = SourceKindFor(j.kind);
      if (const Entry* e = f->Get("source")) {
        if (!needed && j.kind != JobKind::kForget) {
          Error(e->key_at, fmt::format("{}: a {} job takes no source", ctx, kname));
        } else if (auto s = String(*e, ctx)) {
          j.source = *s;
          CheckSourceRef(*e, *s, ctx, needed, fmt::format("a {} job", kname));
        }
      } else if (needed) {
        Error(at, fmt::format("{}: missing key 'source' (a {} source)", ctx,
                              SourceKindName(*needed)));
      }

      // schedule
      if (auto sch = Schedule(*f, ctx, at, j.schedule_text)) j.schedule = *sch;
      else unscheduled_.insert(name);

      // retention
      if (const Entry* e = f->Get("retention")) {
        if (MakesSnapshots(j.kind) || j.kind == JobKind::kForget) {
          j.retention = Retention(*e, ctx);
          if (!j.retention) unscheduled_.insert(name);
        } else if (j.kind == JobKind::kWalExpire) {
          Error(e->key_at, fmt::format("{}: a wal-expire job takes its retention from "
                                       "wal.retention",
                                       ctx));
        } else {
          Error(e->key_at, fmt::format("{}: 'retention' does not apply to a {} job", ctx, kname));
        }
      } else if (j.kind == JobKind::kForget) {
        Error(at, fmt::format("{}: missing key 'retention' (what a forget job keeps)", ctx));
      }
      if (j.kind == JobKind::kWalExpire && !p.wal.present)
        Error(at, fmt::format("{}: a wal-expire job needs the 'wal' section (wal.retention)", ctx));

      // repositories
      if (const Entry* e = f->Get("repositories")) {
        if (auto v = StringList(*e, ctx)) {
          std::set<std::string> seen;
          for (const auto& r : *v) {
            if (!seen.insert(r).second)
              Error(e->value_at, fmt::format("{}: repository '{}' is listed twice", ctx, r));
            CheckRepositoryRef(*e, r, ctx);
          }
          j.repositories = *v;
          if (v->empty()) Error(e->value_at, fmt::format("{}: 'repositories' is empty", ctx));
        }
      }
      if (const Entry* e = f->Get("tags")) {
        if (auto v = StringList(*e, ctx)) j.tags = *v;
      }
      if (j.kind == JobKind::kDump) {
        if (const Entry* e = f->Get("databases")) {
          if (auto v = StringList(*e, ctx)) j.databases = *v;
        }
      } else {
        not_for("databases", "dump jobs");
      }
      if (j.kind == JobKind::kCopy) {
        if (const Entry* e = f->Get("from")) {
          if (auto s = String(*e, ctx)) {
            j.from = *s;
            if (CheckRepositoryRef(*e, *s, ctx) && Contains(j.repositories, *s))
              Error(e->value_at, fmt::format("{}: copies from '{}' into itself", ctx, *s),
                    "list only the repositories copied to under 'repositories'");
          }
        } else {
          Error(at, fmt::format("{}: missing key 'from' (the repository copied from)", ctx));
        }
        if (j.repositories.empty() && !j.from.empty())
          for (const auto& r : p.repositories)
            if (r.name != j.from) j.repositories.push_back(r.name);
      } else {
        not_for("from", "copy jobs");
      }
      if (j.kind == JobKind::kCheck) {
        if (const Entry* e = f->Get("read_data")) {
          if (auto b = Bool(*e, ctx)) j.read_data = *b;
        }
        if (const Entry* e = f->Get("read_data_subset")) {
          std::string v = e->value.IsScalar() ? e->value.Scalar() : "";
          if (v.ends_with("%")) v.pop_back();
          int n = 0;
          auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
          if (v.empty() || ec != std::errc() || ptr != v.data() + v.size() || n < 1 || n > 100)
            Error(e->value_at, fmt::format("{}: read_data_subset expects a percentage 1-100 "
                                           "('10%'), got {}",
                                           ctx, TypeName(e->value)));
          else j.read_data_subset = n;
          if (j.read_data)
            Error(e->key_at, fmt::format("{}: give read_data or read_data_subset, not both", ctx));
        }
      } else {
        not_for("read_data", "check jobs");
        not_for("read_data_subset", "check jobs");
      }
      if (j.repositories.empty())
        for (const auto& r : p.repositories) j.repositories.push_back(r.name);
      p.jobs.push_back(std::move(j));
    });
  }

  static const Names& JobKinds() {
    static const Names k = {"full",   "incr",       "dump",   "files", "command", "logs",
                            "wal-expire", "wal-verify", "forget", "prune", "check", "copy"};
    return k;
  }
  static std::optional<JobKind> ParseJobKind(std::string_view s) {
    const JobKind all[] = {JobKind::kFull,      JobKind::kIncr,      JobKind::kDump,
                           JobKind::kFiles,     JobKind::kCommand,   JobKind::kLogs,
                           JobKind::kWalExpire, JobKind::kWalVerify, JobKind::kForget,
                           JobKind::kPrune,     JobKind::kCheck,     JobKind::kCopy};
    for (auto k : all)
      if (JobKindName(k) == s) return k;
    return std::nullopt;
  }

  std::optional<repo::RetentionPolicy> Retention(const Entry& e, const std::string& ctx) {
    repo::RetentionPolicy pol;
    if (e.value.IsScalar()) {
      // "retention: 30d" is short for keep_within: 30d.
      auto d = CalendarDuration(e, ctx);
      if (!d) return std::nullopt;
      pol.keep_within = *d;
    } else {
      auto f = ReadMap(e.value, e.value_at, ctx + ": retention", kRetentionKeys);
      if (!f) return std::nullopt;
      bool ok = true;
      auto count = [&](std::string_view key, int& dst) {
        const Entry* c = f->Get(key);
        if (c == nullptr) return;
        if (c->value.IsScalar() && Lower(c->value.Scalar()) == "unlimited") {
          dst = repo::kKeepUnlimited;
          return;
        }
        auto n = Integer(*c, ctx + ": retention", 1, 1000000);
        if (!n) {
          ok = false;
          return;
        }
        dst = int(*n);
      };
      count("keep_last", pol.keep_last);
      count("keep_hourly", pol.keep_hourly);
      count("keep_daily", pol.keep_daily);
      count("keep_weekly", pol.keep_weekly);
      count("keep_monthly", pol.keep_monthly);
      count("keep_yearly", pol.keep_yearly);
      if (const Entry* w = f->Get("keep_within")) {
        if (auto d = CalendarDuration(*w, ctx + ": retention")) pol.keep_within = *d;
        else ok = false;
      }
      if (const Entry* t = f->Get("keep_tags")) {
        if (auto v = StringList(*t, ctx + ": retention")) pol.keep_tags = *v;
        else ok = false;
      }
      if (!ok) return std::nullopt;
    }
    Status valid = repo::ValidatePolicy(pol);
    if (!valid.ok()) {
      Error(e.value_at, fmt::format("{}: retention: {}", ctx, valid.message()),
            "give at least one of " + Join(kRetentionKeys));
      return std::nullopt;
    }
    return pol;
  }

  // How far back the snapshots of `job` reach under its retention, in seconds (a lower
  // bound); kForever without retention.
  int64_t Reach(const JobPlan& job) {
    if (!job.retention) return kForever;
    const auto& r = *job.retention;
    auto iv = job.schedule.IntervalsWithin(now_, kLookAhead);
    int64_t every = iv.shortest;
    int64_t reach = r.keep_within.ApproxSeconds();
    auto rule = [&](int n, int64_t bucket) {
      if (n == repo::kKeepUnlimited) reach = kForever;
      else if (n > 1 && reach != kForever)
        reach = std::max(reach, int64_t(n - 1) * std::max(bucket, every));
    };
    rule(r.keep_last, 0);
    rule(r.keep_hourly, 3600);
    rule(r.keep_daily, kDay);
    rule(r.keep_weekly, 7 * kDay);
    rule(r.keep_monthly, 28 * kDay);
    rule(r.keep_yearly, 365 * kDay);
    return reach;
  }

  static std::string DescribeRetention(const repo::RetentionPolicy& r) {
    std::vector<std::string> parts;
    auto c = [&](const char* n, int v) {
      if (v == repo::kKeepUnlimited) parts.push_back(fmt::format("{} unlimited", n));
      else if (v) parts.push_back(fmt::format("{} {}", n, v));
    };
    c("keep_last", r.keep_last);
    c("keep_hourly", r.keep_hourly);
    c("keep_daily", r.keep_daily);
    c("keep_weekly", r.keep_weekly);
    c("keep_monthly", r.keep_monthly);
    c("keep_yearly", r.keep_yearly);
    if (!r.keep_within.IsZero()) parts.push_back("keep_within " + r.keep_within.ToString());
    std::string out;
    for (const auto& s : parts) out += (out.empty() ? "" : ", ") + s;
    return out;
  }

  // Whether the snapshots of `job` end up in `repository`: written there, or copied there
  // by a copy job from a repository the job writes to.
  bool WritesTo(const JobPlan& job, const std::string& repository) {
    if (Contains(job.repositories, repository)) return true;
    return std::any_of(out_.plan.jobs.begin(), out_.plan.jobs.end(), [&](const JobPlan& c) {
      return c.kind == JobKind::kCopy && Contains(c.repositories, repository) &&
             Contains(job.repositories, c.from);
    });
  }

  // Jobs that make restorable snapshots of `source` (for a drill: into `repository`).
  std::vector<const JobPlan*> BackupJobs(const std::string& source,
                                         const std::string& repository = "") {
    std::vector<const JobPlan*> out;
    const SourcePlan* src = out_.plan.FindSource(source);
    for (const auto& j : out_.plan.jobs) {
      if (j.source != source || !MakesSnapshots(j.kind)) continue;
      if (src && src->kind == SourceKind::kPostgres && !repository.empty() &&
          j.kind == JobKind::kDump)
        continue;  // a drill restores base backups and WAL, not logical dumps
      if (!repository.empty() && !WritesTo(j, repository)) continue;
      out.push_back(&j);
    }
    return out;
  }

  void LoadObjectives(const Entry& section) {
    Plan& p = out_.plan;
    ForEachItem(section, "objective", [&](const std::string& name, const YAML::Node& node,
                                           const Location& at) {
      std::string ctx = fmt::format("objective '{}'", name);
      auto f = ReadMap(node, at, ctx, kObjectiveKeys);
      if (!f) return;
      ObjectivePlan o;
      o.name = name;
      o.where = at;
      if (const Entry* e = f->Get("description")) {
        if (auto s = String(*e, ctx)) o.description = *s;
      }
      const Entry* sources_e = f->Get("sources");
      std::vector<std::string> valid_sources;
      if (sources_e == nullptr) {
        Error(at, fmt::format("{}: missing key 'sources' (the data it is about)", ctx));
      } else if (auto v = StringList(*sources_e, ctx)) {
        o.sources = *v;
        for (const auto& s : *v)
          if (CheckSourceRef(*sources_e, s, ctx, std::nullopt, "")) valid_sources.push_back(s);
      }
      const Entry* rpo_e = f->Get("rpo");
      const Entry* rto_e = f->Get("rto");
      if (rpo_e) o.rpo = Elapsed(*rpo_e, ctx);
      if (rto_e) o.rto = Elapsed(*rto_e, ctx);
      if (!rpo_e && !rto_e) Error(at, fmt::format("{}: give rpo, rto or both", ctx));
      if (o.rpo) {
        for (const auto& s : valid_sources) CheckRpo(o, s, *rpo_e, ctx);
      }
      if (o.rto && !valid_sources.empty()) {
        bool drilled = std::any_of(valid_sources.begin(), valid_sources.end(),
                                   [&](const std::string& s) { return DrillCovers(s); });
        if (!drilled)
          Warning(rto_e->value_at,
                  fmt::format("{}: rto {} is not measured: no drill restores {}", ctx,
                              FormatElapsed(*o.rto),
                              valid_sources.size() == 1
                                  ? fmt::format("source '{}'", valid_sources[0])
                                  : "any of its sources"),
                  "add a drill for the source; its measured restore time is the RTO");
      }
      p.objectives.push_back(std::move(o));
    });
  }

  bool DrillCovers(const std::string& source) {
    const auto& drills = out_.plan.drills;
    return std::any_of(drills.begin(), drills.end(),
                       [&](const DrillPlan& d) { return d.source == source; });
  }

  void CheckRpo(const ObjectivePlan& o, const std::string& source, const Entry& rpo_e,
                const std::string& ctx) {
    const Plan& p = out_.plan;
    const SourcePlan* src = p.FindSource(source);
    int64_t best = kForever;
    std::string how;
    bool unknown_wal = false;
    if (src->kind == SourceKind::kPostgres && p.wal.present &&
        (p.wal.sources.empty() || Contains(p.wal.sources, source))) {
      if (p.wal.archive_timeout) {
        best = *p.wal.archive_timeout;
        how = fmt::format("WAL archiving (archive_timeout {})", FormatElapsed(best));
      } else {
        unknown_wal = true;
      }
    }
    for (const JobPlan* j : BackupJobs(source)) {
      // A job whose schedule did not parse was reported already; what it delivers is
      // unknown, so the objective is not judged.
      if (unscheduled_.count(j->name)) return;
      auto iv = j->schedule.IntervalsWithin(now_, kLookAhead);
      if (iv.longest < best) {
        best = iv.longest;
        how = fmt::format("job '{}' ('{}'{})", j->name, j->schedule_text,
                          j->schedule.zone().IsUtc() ? ""
                                                     : " in " + j->schedule.zone().name());
      }
    }
    if (unknown_wal && best > *o.rpo) {
      Warning(rpo_e.value_at,
              fmt::format("{}: cannot tell whether WAL archiving meets rpo {} for source '{}' "
                          "without wal.archive_timeout",
                          ctx, FormatElapsed(*o.rpo), source),
              "set wal.archive_timeout to PostgreSQL's archive_timeout (e.g. 60s)");
      return;
    }
    if (best == kForever) {
      Error(rpo_e.value_at,
            fmt::format("{}: rpo {} cannot be met: no job backs up source '{}'", ctx,
                        FormatElapsed(*o.rpo), source),
            "add a job for the source with a schedule at least as frequent as the rpo");
      return;
    }
    if (best > *o.rpo)
      Error(rpo_e.value_at,
            fmt::format("{}: rpo {} cannot be met for source '{}': its most frequent backup, {}, "
                        "runs up to {} apart",
                        ctx, FormatElapsed(*o.rpo), source, how, FormatElapsed(best)),
            "schedule a backup of the source at least as often as the rpo, or relax the rpo");
  }

  void LoadDrills(const Entry& section) {
    Plan& p = out_.plan;
    ForEachItem(section, "drill", [&](const std::string& name, const YAML::Node& node,
                                       const Location& at) {
      std::string ctx = fmt::format("drill '{}'", name);
      auto f = ReadMap(node, at, ctx, kDrillKeys);
      if (!f) return;
      DrillPlan d;
      d.name = name;
      d.where = at;
      bool source_ok = false;
      if (const Entry* e = f->Get("source")) {
        if (auto s = String(*e, ctx)) {
          d.source = *s;
          source_ok = CheckSourceRef(*e, *s, ctx, std::nullopt, "");
        }
      } else {
        Error(at, fmt::format("{}: missing key 'source' (what the drill restores)", ctx));
      }
      if (auto sch = Schedule(*f, ctx, at, d.schedule_text)) d.schedule = *sch;
      if (const Entry* e = f->Get("repository")) {
        if (auto s = String(*e, ctx)) {
          d.repository = *s;
          CheckRepositoryRef(*e, *s, ctx);
        }
      }
      const Entry* age_e = f->Get("restore_age");
      if (age_e) {
        if (auto a = CalendarDuration(*age_e, ctx)) d.restore_age = *a;
      }
      if (const Entry* e = f->Get("rto")) d.rto = Elapsed(*e, ctx);
      if (const Entry* e = f->Get("queries")) LoadQueries(*e, ctx, d);
      const SourcePlan* src = source_ok ? p.FindSource(d.source) : nullptr;
      if (src && !d.queries.empty() && src->kind != SourceKind::kPostgres)
        Error(f->Get("queries")->key_at,
              fmt::format("{}: validation queries need a postgres source; '{}' is a {} source",
                          ctx, d.source, SourceKindName(src->kind)));
      if (src) CheckDrillRetention(d, age_e, ctx);
      p.drills.push_back(std::move(d));
    });
  }

  void LoadQueries(const Entry& e, const std::string& ctx, DrillPlan& d) {
    if (!e.value.IsSequence()) {
      Error(e.value_at, fmt::format("{}: 'queries' expects a list of SQL strings or {{sql, "
                                    "expect}} maps, got {}",
                                    ctx, TypeName(e.value)));
      return;
    }
    for (const auto& item : e.value) {
      Location at = At(item.Mark());
      if (item.IsScalar()) {
        if (item.Scalar().empty()) Error(at, fmt::format("{}: empty query", ctx));
        else d.queries.push_back({item.Scalar(), ""});
        continue;
      }
      auto f = ReadMap(item, at, ctx + ": query", kQueryKeys);
      if (!f) continue;
      DrillQuery q;
      if (const Entry* s = f->Get("sql")) {
        if (auto v = String(*s, ctx)) q.sql = *v;
      } else {
        Error(at, fmt::format("{}: query: missing key 'sql'", ctx));
        continue;
      }
      if (const Entry* x = f->Get("expect")) {
        if (auto v = String(*x, ctx)) q.expect = *v;
      }
      if (!q.sql.empty()) d.queries.push_back(std::move(q));
    }
  }

  void CheckDrillRetention(const DrillPlan& d, const Entry* age_e, const std::string& ctx) {
    auto jobs = BackupJobs(d.source, d.repository);
    if (jobs.empty()) {
      Error(d.where,
            d.repository.empty()
                ? fmt::format("{}: no job backs up source '{}', so there is nothing to restore",
                              ctx, d.source)
                : fmt::format("{}: no job backs up source '{}' into repository '{}', so there is "
                              "nothing to restore",
                              ctx, d.source, d.repository));
      return;
    }
    int64_t age = d.restore_age.ApproxSeconds();
    if (age == 0 || age_e == nullptr) return;
    int64_t best = -1;
    const JobPlan* best_job = nullptr;
    for (const JobPlan* j : jobs) {
      if (unscheduled_.count(j->name)) return;  // reported already; reach unknown
      int64_t r = Reach(*j);
      if (r > best) {
        best = r;
        best_job = j;
      }
    }
    if (best < age)
      Error(age_e->value_at,
            fmt::format("{}: restores source '{}' as of {} ago, but its backups are kept for "
                        "only about {} (job '{}': {})",
                        ctx, d.source, d.restore_age.ToString(), FormatElapsed(best),
                        best_job->name, DescribeRetention(*best_job->retention)),
            fmt::format("keep the backups longer (e.g. retention: keep_within: {}) or restore a "
                        "more recent state",
                        d.restore_age.ToString()));
  }

  void LoadAudit(const Entry& section) {
    AuditPlan& a = out_.plan.audit;
    a.present = true;
    a.where = section.key_at;
    auto f = ReadMap(section.value, section.value_at, "audit", kAuditKeys);
    if (!f) return;
    if (const Entry* e = f->Get("log")) {
      if (auto s = String(*e, "audit")) a.log = *s;
    } else {
      Error(section.key_at, "audit: missing key 'log' (path of the audit log)");
    }
    if (const Entry* e = f->Get("copy_to_repository")) {
      if (auto b = Bool(*e, "audit")) a.copy_to_repository = *b;
    }
  }

  void LoadDaemon(const Entry& section) {
    DaemonPlan& d = out_.plan.daemon;
    d.present = true;
    d.where = section.key_at;
    auto f = ReadMap(section.value, section.value_at, "daemon", kDaemonKeys);
    if (!f) return;
    if (const Entry* e = f->Get("listen")) {
      if (auto s = String(*e, "daemon")) {
        d.listen = *s;
        if (!ValidListen(*s))
          Error(e->value_at, fmt::format("daemon: listen '{}' is not HOST:PORT", *s),
                "e.g. 127.0.0.1:9187 or [::1]:9187 (port 1-65535)");
      }
    }
    if (const Entry* e = f->Get("token_file")) {
      if (auto s = String(*e, "daemon")) d.token_file = *s;
    }
    if (const Entry* e = f->Get("history")) {
      if (auto s = String(*e, "daemon")) d.history = *s;
    }
    if (const Entry* e = f->Get("job_timeout")) {
      if (auto v = Elapsed(*e, "daemon")) d.job_timeout = *v;
    }
    if (const Entry* e = f->Get("retries")) {
      if (auto v = Integer(*e, "daemon", 0, 100)) d.retries = int(*v);
    }
    if (const Entry* e = f->Get("retry_delay")) {
      if (auto v = Elapsed(*e, "daemon")) d.retry_delay = *v;
    }
    if (const Entry* e = f->Get("max_parallel")) {
      if (auto v = Integer(*e, "daemon", 1, 64)) d.max_parallel = int(*v);
    }
    if (const Entry* e = f->Get("stop_grace")) {
      if (auto v = Elapsed(*e, "daemon")) d.stop_grace = *v;
    }
    if (ValidListen(d.listen) && d.token_file.empty() && !d.listen.starts_with("127.") &&
        !d.listen.starts_with("[::1]") && !d.listen.starts_with("localhost:"))
      Warning(f->Get("listen")->value_at,
              "daemon: listens beyond this host without token_file; anyone who reaches the port "
              "can read the status",
              "set daemon.token_file");
  }

  static bool ValidListen(std::string_view s) {
    size_t colon;
    if (s.starts_with("[")) {
      size_t close = s.find("]:");
      if (close == std::string_view::npos || close == 1) return false;
      colon = close + 1;
    } else {
      colon = s.rfind(':');
      if (colon == std::string_view::npos || colon == 0) return false;
      if (s.substr(0, colon).find(':') != std::string_view::npos) return false;
    }
    std::string_view port = s.substr(colon + 1);
    int n = 0;
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
    return !port.empty() && ec == std::errc() && p == port.data() + port.size() && n >= 1 &&
           n <= 65535;
  }

  std::string_view text_;
  std::string_view file_;
  UnixSeconds now_;
  LoadedPlan out_;
  TimeZone default_zone_;
  std::map<std::string, TimeZone> zones_;
  // Jobs whose schedule or retention did not load: checks that need them are skipped.
  std::set<std::string> unscheduled_;
};

}  // namespace

// ---- names ----

std::string_view RepositoryRoleName(RepositoryRole role) {
  switch (role) {
    case RepositoryRole::kPrimary: return "primary";
    case RepositoryRole::kSecondary: return "secondary";
    case RepositoryRole::kOffsite: return "offsite";
  }
  return "primary";
}

std::string_view SourceKindName(SourceKind kind) {
  switch (kind) {
    case SourceKind::kPostgres: return "postgres";
    case SourceKind::kFiles: return "files";
    case SourceKind::kCommand: return "command";
    case SourceKind::kLogs: return "logs";
  }
  return "files";
}

std::string_view JobKindName(JobKind kind) {
  switch (kind) {
    case JobKind::kFull: return "full";
    case JobKind::kIncr: return "incr";
    case JobKind::kDump: return "dump";
    case JobKind::kFiles: return "files";
    case JobKind::kCommand: return "command";
    case JobKind::kLogs: return "logs";
    case JobKind::kWalExpire: return "wal-expire";
    case JobKind::kWalVerify: return "wal-verify";
    case JobKind::kForget: return "forget";
    case JobKind::kPrune: return "prune";
    case JobKind::kCheck: return "check";
    case JobKind::kCopy: return "copy";
  }
  return "full";
}

std::optional<SourceKind> SourceKindFor(JobKind kind) {
  switch (kind) {
    case JobKind::kFull:
    case JobKind::kIncr:
    case JobKind::kDump:
    case JobKind::kWalExpire:
    case JobKind::kWalVerify: return SourceKind::kPostgres;
    case JobKind::kFiles: return SourceKind::kFiles;
    case JobKind::kCommand: return SourceKind::kCommand;
    case JobKind::kLogs: return SourceKind::kLogs;
    default: return std::nullopt;
  }
}

bool MakesSnapshots(JobKind kind) {
  switch (kind) {
    case JobKind::kFull:
    case JobKind::kIncr:
    case JobKind::kDump:
    case JobKind::kFiles:
    case JobKind::kCommand:
    case JobKind::kLogs: return true;
    default: return false;
  }
}

// ---- model ----

std::string Location::ToString() const {
  if (line <= 0) return file;
  return fmt::format("{}:{}:{}", file, line, column);
}

std::string Problem::ToString() const {
  std::string out = fmt::format("{}: {}: {}", where.ToString(),
                                severity == Severity::kError ? "error" : "warning", message);
  if (!hint.empty()) out += "\n  hint: " + hint;
  return out;
}

bool LoadedPlan::ok() const { return ErrorCount() == 0; }

size_t LoadedPlan::ErrorCount() const {
  return size_t(std::count_if(problems.begin(), problems.end(),
                              [](const Problem& p) { return p.severity == Severity::kError; }));
}

size_t LoadedPlan::WarningCount() const { return problems.size() - ErrorCount(); }

template <typename T>
static const T* FindByName(const std::vector<T>& v, std::string_view name) {
  for (const auto& x : v)
    if (x.name == name) return &x;
  return nullptr;
}

const RepositoryPlan* Plan::FindRepository(std::string_view n) const {
  return FindByName(repositories, n);
}
const SourcePlan* Plan::FindSource(std::string_view n) const { return FindByName(sources, n); }
const JobPlan* Plan::FindJob(std::string_view n) const { return FindByName(jobs, n); }
const DrillPlan* Plan::FindDrill(std::string_view n) const { return FindByName(drills, n); }

KeySource Plan::KeyFor(const RepositoryPlan& repo) const {
  return repo.key.IsEmpty() ? encryption : repo.key;
}

// ---- loading ----

LoadedPlan ParsePlan(std::string_view text, std::string_view file, const LoadOptions& opts) {
  Loader loader(text, file, opts);
  return loader.Run();
}

Result<LoadedPlan> LoadPlanFile(const std::string& path, const LoadOptions& opts) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return ErrnoStatus(errno, fmt::format("read plan '{}'", path));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return ErrnoStatus(errno, fmt::format("read plan '{}'", path));
  return ParsePlan(text, path, opts);
}

Result<int64_t> ParseElapsed(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return Status(Code::kInvalidArgument, fmt::format("bad duration '{}': {}", text, why))
        .WithHint("a number and a unit, units s m h d w, where m is minutes: 15m, 1h, 90s, "
                  "1h30m, 2d");
  };
  if (text.empty()) return bad("empty");
  int64_t total = 0;
  std::set<char> seen;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = i;
    int64_t n = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      n = n * 10 + (text[i] - '0');
      if (n > 100000000) return bad("number too large");
      ++i;
    }
    if (i == start) return bad(fmt::format("expected a number at '{}'", text.substr(i)));
    if (i == text.size()) return bad(fmt::format("'{}' has no unit", text.substr(start)));
    char u = text[i++];
    if (u == 'm' && text.substr(i).starts_with("in")) i += 2;  // "15min"
    int64_t mult = 0;
    switch (u) {
      case 's': mult = 1; break;
      case 'm': mult = 60; break;
      case 'h': mult = 3600; break;
      case 'd': mult = kDay; break;
      case 'w': mult = 7 * kDay; break;
      default:
        return bad(u == 'y' ? "unknown unit 'y' (months and years are not elapsed times; use d)"
                            : fmt::format("unknown unit '{}'", u));
    }
    if (!seen.insert(u).second) return bad(fmt::format("unit '{}' given twice", u));
    total += n * mult;
  }
  if (total == 0) return bad("must be more than zero");
  return total;
}

std::string FormatElapsed(int64_t s) {
  if (s == kForever) return "forever";
  if (s <= 0) return "0s";
  std::string out;
  const std::pair<int64_t, char> units[] = {{kDay, 'd'}, {3600, 'h'}, {60, 'm'}, {1, 's'}};
  for (auto [len, u] : units) {
    if (s >= len) {
      out += fmt::format("{}{}", s / len, u);
      s %= len;
    }
  }
  return out;
}

std::vector<ScheduledRun> NextRuns(const Plan& plan, UnixSeconds after, size_t count) {
  std::vector<ScheduledRun> out;
  for (const auto& j : plan.jobs)
    for (auto t : j.schedule.NextRuns(after, count))
      out.push_back({ScheduledRun::Kind::kJob, j.name, t});
  for (const auto& d : plan.drills)
    for (auto t : d.schedule.NextRuns(after, count))
      out.push_back({ScheduledRun::Kind::kDrill, d.name, t});
  std::sort(out.begin(), out.end(), [](const ScheduledRun& a, const ScheduledRun& b) {
    return std::tie(a.time, a.kind, a.name) < std::tie(b.time, b.kind, b.name);
  });
  return out;
}

}  // namespace lb::plan
