#include "ops/history.h"

#include <fmt/format.h>
#include <sqlite3.h>

#include <cstdlib>
#include <filesystem>

namespace lb::ops {

namespace fs = std::filesystem;

namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  job TEXT NOT NULL,
  scheduled INTEGER NOT NULL,
  started REAL NOT NULL,
  ended REAL NOT NULL DEFAULT 0,
  result TEXT NOT NULL,
  exit_code INTEGER NOT NULL DEFAULT -1,
  bytes INTEGER NOT NULL DEFAULT 0,
  snapshot TEXT NOT NULL DEFAULT '',
  error TEXT NOT NULL DEFAULT '',
  attempt INTEGER NOT NULL DEFAULT 1,
  log TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS runs_job ON runs (job, id);
CREATE TABLE IF NOT EXISTS job_state (
  job TEXT PRIMARY KEY,
  last_slot INTEGER NOT NULL
);
)sql";

// A prepared statement finalized on every path out.
struct Stmt {
  sqlite3_stmt* s = nullptr;
  ~Stmt() { sqlite3_finalize(s); }
};

Status DbError(sqlite3* db, std::string_view what) {
  return Status(Code::kIo, fmt::format("history database: {}: {}", what, sqlite3_errmsg(db)));
}

}  // namespace

std::string DefaultHistoryPath(const plan::Plan& plan) {
  if (!plan.daemon.history.empty()) return plan.daemon.history;
  if (!plan.audit.log.empty())
    return (fs::path(plan.audit.log).parent_path() / "lifeboat-history.db").string();
  std::string base;
  if (const char* x = std::getenv("XDG_STATE_HOME"); x && *x)
    base = x;
  else if (const char* h = std::getenv("HOME"); h && *h)
    base = std::string(h) + "/.local/state";
  else
    base = "/var/lib";
  return base + "/lifeboat/history.db";
}

Result<std::unique_ptr<History>> History::Open(const std::string& path, bool writer) {
  std::unique_ptr<History> h(new History());
  h->path_ = path;
  std::error_code ec;
  if (writer) {
    fs::path dir = fs::path(path).parent_path();
    if (!dir.empty()) fs::create_directories(dir, ec);
    if (ec)
      return Err(Code::kIo, "create the directory of the history '{}': {}", path, ec.message());
  } else if (!fs::exists(path, ec)) {
    return Err(Code::kNotFound, "no job history at '{}' (the daemon has not run yet)", path);
  }
  // A reader opens read-write without creating (a WAL database may need its -shm file
  // made), and read-only when it may not write there.
  int flags = writer ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READWRITE;
  if (sqlite3_open_v2(path.c_str(), &h->db_, flags | SQLITE_OPEN_FULLMUTEX, nullptr) != SQLITE_OK &&
      !writer) {
    sqlite3_close(h->db_);
    h->db_ = nullptr;
    if (sqlite3_open_v2(path.c_str(), &h->db_, SQLITE_OPEN_READONLY | SQLITE_OPEN_FULLMUTEX,
                        nullptr) != SQLITE_OK)
      return DbError(h->db_, fmt::format("open '{}'", path));
  } else if (h->db_ == nullptr || sqlite3_errcode(h->db_) != SQLITE_OK) {
    return DbError(h->db_, fmt::format("open '{}'", path));
  }
  sqlite3_busy_timeout(h->db_, 5000);
  if (writer) {
    // WAL: `status` reads while the daemon writes. NORMAL sync: a power loss may lose the
    // last run records, never corrupt the file.
    LB_RETURN_IF_ERROR(h->Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"));
    LB_RETURN_IF_ERROR(h->Exec(kSchema).WithContext(fmt::format("'{}'", path)));
    LB_RETURN_IF_ERROR(
        h->Exec("UPDATE runs SET result = 'interrupted', ended = started, "
                "error = 'the daemon stopped while the job ran' WHERE result = 'running'"));
  }
  return h;
}

History::~History() {
  if (db_ != nullptr) sqlite3_close(db_);
}

Status History::Exec(const std::string& sql) {
  char* msg = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &msg) != SQLITE_OK) {
    std::string m = msg ? msg : "unknown error";
    sqlite3_free(msg);
    return Status(Code::kIo, fmt::format("history database: {}", m));
  }
  return Status::Ok();
}

Result<int64_t> History::Begin(const std::string& job, plan::UnixSeconds scheduled, double started,
                               int attempt) {
  std::lock_guard<std::mutex> l(mu_);
  Stmt st;
  if (sqlite3_prepare_v2(db_,
                         "INSERT INTO runs (job, scheduled, started, result, attempt) "
                         "VALUES (?, ?, ?, 'running', ?)",
                         -1, &st.s, nullptr) != SQLITE_OK)
    return DbError(db_, "prepare");
  sqlite3_bind_text(st.s, 1, job.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st.s, 2, scheduled);
  sqlite3_bind_double(st.s, 3, started);
  sqlite3_bind_int(st.s, 4, attempt);
  if (sqlite3_step(st.s) != SQLITE_DONE) return DbError(db_, "record a run");
  return int64_t(sqlite3_last_insert_rowid(db_));
}

Status History::Finish(int64_t id, const JobRunOutcome& o, double ended) {
  std::lock_guard<std::mutex> l(mu_);
  Stmt st;
  if (sqlite3_prepare_v2(db_,
                         "UPDATE runs SET ended = ?, result = ?, exit_code = ?, bytes = ?, "
                         "snapshot = ?, error = ?, log = ? WHERE id = ?",
                         -1, &st.s, nullptr) != SQLITE_OK)
    return DbError(db_, "prepare");
  std::string result(RunResultName(o.result));
  sqlite3_bind_double(st.s, 1, ended);
  sqlite3_bind_text(st.s, 2, result.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_int(st.s, 3, o.exit_code);
  sqlite3_bind_int64(st.s, 4, int64_t(o.bytes));
  sqlite3_bind_text(st.s, 5, o.snapshot.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st.s, 6, o.error.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st.s, 7, o.log.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st.s, 8, id);
  if (sqlite3_step(st.s) != SQLITE_DONE) return DbError(db_, "record the end of a run");
  return Status::Ok();
}

Status History::SetLastSlot(const std::string& job, plan::UnixSeconds slot) {
  std::lock_guard<std::mutex> l(mu_);
  Stmt st;
  if (sqlite3_prepare_v2(db_,
                         "INSERT INTO job_state (job, last_slot) VALUES (?, ?) "
                         "ON CONFLICT (job) DO UPDATE SET last_slot = excluded.last_slot",
                         -1, &st.s, nullptr) != SQLITE_OK)
    return DbError(db_, "prepare");
  sqlite3_bind_text(st.s, 1, job.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st.s, 2, slot);
  if (sqlite3_step(st.s) != SQLITE_DONE) return DbError(db_, "record the last slot");
  return Status::Ok();
}

Result<std::map<std::string, plan::UnixSeconds>> History::LastSlots() {
  std::lock_guard<std::mutex> l(mu_);
  Stmt st;
  if (sqlite3_prepare_v2(db_, "SELECT job, last_slot FROM job_state", -1, &st.s, nullptr) !=
      SQLITE_OK)
    return DbError(db_, "prepare");
  std::map<std::string, plan::UnixSeconds> out;
  int rc;
  while ((rc = sqlite3_step(st.s)) == SQLITE_ROW)
    out[reinterpret_cast<const char*>(sqlite3_column_text(st.s, 0))] =
        sqlite3_column_int64(st.s, 1);
  if (rc != SQLITE_DONE) return DbError(db_, "read the last slots");
  return out;
}

Result<std::vector<RunRecord>> History::Query(const std::string& where, const std::string& tail,
                                              const std::vector<std::string>& params) {
  std::lock_guard<std::mutex> l(mu_);
  Stmt st;
  std::string sql =
      "SELECT id, job, scheduled, started, ended, result, exit_code, bytes, snapshot, error, "
      "attempt FROM runs" +
      (where.empty() ? "" : " WHERE " + where) + " " + tail;
  if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st.s, nullptr) != SQLITE_OK)
    return DbError(db_, "prepare");
  for (size_t i = 0; i < params.size(); ++i)
    sqlite3_bind_text(st.s, int(i + 1), params[i].c_str(), -1, SQLITE_TRANSIENT);
  std::vector<RunRecord> out;
  int rc;
  auto text = [&](int col) {
    const unsigned char* t = sqlite3_column_text(st.s, col);
    return std::string(t ? reinterpret_cast<const char*>(t) : "");
  };
  while ((rc = sqlite3_step(st.s)) == SQLITE_ROW) {
    RunRecord r;
    r.id = sqlite3_column_int64(st.s, 0);
    r.job = text(1);
    r.scheduled = sqlite3_column_int64(st.s, 2);
    r.started = sqlite3_column_double(st.s, 3);
    r.ended = sqlite3_column_double(st.s, 4);
    r.result = RunResultFromName(text(5));
    r.exit_code = sqlite3_column_int(st.s, 6);
    r.bytes = uint64_t(sqlite3_column_int64(st.s, 7));
    r.snapshot = text(8);
    r.error = text(9);
    r.attempt = sqlite3_column_int(st.s, 10);
    out.push_back(std::move(r));
  }
  if (rc != SQLITE_DONE) return DbError(db_, "read runs");
  return out;
}

Result<std::vector<RunRecord>> History::Recent(const std::string& job, size_t limit) {
  return Query(job.empty() ? "" : "job = ?", fmt::format("ORDER BY id DESC LIMIT {}", limit),
               job.empty() ? std::vector<std::string>{} : std::vector<std::string>{job});
}

Result<std::vector<RunRecord>> History::RecentFailures(size_t limit) {
  return Query("result NOT IN ('ok', 'running')", fmt::format("ORDER BY id DESC LIMIT {}", limit),
               {});
}

Result<JobStats> History::Stats(const std::string& job) {
  JobStats s;
  LB_ASSIGN_OR_RETURN(auto last,
                      Query("job = ? AND result != 'running'", "ORDER BY id DESC LIMIT 1", {job}));
  if (!last.empty()) s.last = last[0];
  LB_ASSIGN_OR_RETURN(auto ok,
                      Query("job = ? AND result = 'ok'", "ORDER BY id DESC LIMIT 1", {job}));
  if (!ok.empty()) s.last_success = ok[0];
  LB_ASSIGN_OR_RETURN(auto running,
                      Query("job = ? AND result = 'running'", "ORDER BY id DESC LIMIT 1", {job}));
  if (!running.empty()) s.running = running[0];
  std::lock_guard<std::mutex> l(mu_);
  Stmt st;
  if (sqlite3_prepare_v2(db_,
                         "SELECT count(*), coalesce(sum(result NOT IN ('ok', 'running')), 0) "
                         "FROM runs WHERE job = ?",
                         -1, &st.s, nullptr) != SQLITE_OK)
    return DbError(db_, "prepare");
  sqlite3_bind_text(st.s, 1, job.c_str(), -1, SQLITE_TRANSIENT);
  if (sqlite3_step(st.s) != SQLITE_ROW) return DbError(db_, "count runs");
  s.runs = uint64_t(sqlite3_column_int64(st.s, 0));
  s.failures = uint64_t(sqlite3_column_int64(st.s, 1));
  return s;
}

Result<std::string> History::Log(int64_t id) {
  std::lock_guard<std::mutex> l(mu_);
  Stmt st;
  if (sqlite3_prepare_v2(db_, "SELECT log FROM runs WHERE id = ?", -1, &st.s, nullptr) != SQLITE_OK)
    return DbError(db_, "prepare");
  sqlite3_bind_int64(st.s, 1, id);
  if (sqlite3_step(st.s) != SQLITE_ROW) return Err(Code::kNotFound, "no run {}", id);
  const unsigned char* t = sqlite3_column_text(st.s, 0);
  return std::string(t ? reinterpret_cast<const char*>(t) : "");
}

}  // namespace lb::ops
