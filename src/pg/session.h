// A libpq connection for the few queries lifeboat needs (backup start/stop, cluster facts).
// Connection settings come from the standard PG* environment or a conninfo string.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "util/status.h"

struct pg_conn;

namespace lb::pg {

using Row = std::vector<std::string>;

class Session {
 public:
  // Connects; kUnavailable (with the server's message, never a password) when it cannot.
  static Result<std::unique_ptr<Session>> Connect(const std::string& conninfo);
  ~Session();

  // Runs a query; returns its rows as text (NULL as ""). Errors: kUnavailable when the
  // connection is gone, kFailedPrecondition for an SQL error.
  Result<std::vector<Row>> Query(const std::string& sql);
  Result<std::vector<Row>> Query(const std::string& sql, const std::vector<std::string>& params);
  // First column of the first row.
  Result<std::string> Scalar(const std::string& sql);

  int server_version() const { return server_version_; }  // e.g. 150018

 private:
  Session() = default;
  pg_conn* conn_ = nullptr;
  int server_version_ = 0;
};

// Quotes a string literal for SQL ('...', doubled quotes).
std::string QuoteLiteral(const std::string& s);

}  // namespace lb::pg
