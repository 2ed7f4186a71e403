#include "pg/session.h"

#include <libpq-fe.h>

namespace lb::pg {

namespace {
std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}
}  // namespace

Result<std::unique_ptr<Session>> Session::Connect(const std::string& conninfo) {
  std::unique_ptr<Session> s(new Session());
  // Connection parameters from the environment (PGHOST, PGPORT, ...) fill what conninfo
  // leaves out; a connect timeout keeps "server gone" bounded.
  std::string ci = conninfo;
  if (ci.find("connect_timeout") == std::string::npos) ci += (ci.empty() ? "" : " ") + std::string("connect_timeout=10");
  if (ci.find("application_name") == std::string::npos) ci += " application_name=lifeboat";
  s->conn_ = PQconnectdb(ci.c_str());
  if (!s->conn_ || PQstatus(s->conn_) != CONNECTION_OK) {
    std::string msg = s->conn_ ? Trim(PQerrorMessage(s->conn_)) : "out of memory";
    return Status(Code::kUnavailable, "connect to PostgreSQL: " + msg)
        .WithHint("set PGHOST/PGPORT/PGUSER (or --dbname CONNINFO) to reach the cluster");
  }
  s->server_version_ = PQserverVersion(s->conn_);
  return s;
}

Session::~Session() {
  if (conn_) PQfinish(conn_);
}

Result<std::vector<Row>> Session::Query(const std::string& sql) { return Query(sql, {}); }

Result<std::vector<Row>> Session::Query(const std::string& sql,
                                        const std::vector<std::string>& params) {
  std::vector<const char*> values;
  for (const auto& p : params) values.push_back(p.c_str());
  PGresult* res = PQexecParams(conn_, sql.c_str(), int(values.size()), nullptr,
                               values.empty() ? nullptr : values.data(), nullptr, nullptr, 0);
  struct Clear {
    PGresult* r;
    ~Clear() { PQclear(r); }
  } clear{res};
  ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
    std::string msg = Trim(res ? PQresultErrorMessage(res) : PQerrorMessage(conn_));
    if (msg.empty()) msg = Trim(PQerrorMessage(conn_));
    if (PQstatus(conn_) != CONNECTION_OK)
      return Status(Code::kUnavailable, "PostgreSQL connection lost: " + msg, true);
    return Err(Code::kFailedPrecondition, "PostgreSQL: {}", msg);
  }
  std::vector<Row> rows;
  int n = PQntuples(res), m = PQnfields(res);
  for (int i = 0; i < n; ++i) {
    Row row;
    for (int j = 0; j < m; ++j) row.emplace_back(PQgetvalue(res, i, j), PQgetlength(res, i, j));
    rows.push_back(std::move(row));
  }
  return rows;
}

Result<std::string> Session::Scalar(const std::string& sql) {
  LB_ASSIGN_OR_RETURN(auto rows, Query(sql));
  if (rows.empty() || rows[0].empty())
    return Err(Code::kInternal, "query returned no value: {}", sql);
  return rows[0][0];
}

std::string QuoteLiteral(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "''";
    else out += c;
  }
  return out + "'";
}

}  // namespace lb::pg
