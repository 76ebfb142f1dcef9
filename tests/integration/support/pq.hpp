// Test harness: an RAII libpq connection that reports errors as values (SQLSTATE + message text),
// including errors during connection start-up, which plain libpq only gives as text.
#pragma once

#include <chrono>
#include <string>
#include <vector>

typedef struct pg_conn PGconn;

namespace pgweir::test {

using namespace std::chrono_literals;

struct Error {
  std::string sqlstate;  // "" when the failure was not a server error (refused, closed, timeout)
  std::string message;   // the server's primary message, or libpq's text
};

struct QueryResult {
  bool ok = false;
  std::vector<std::vector<std::string>> rows;  // NULL reads as ""
  Error error;
  // First column of the first row; "" if none.
  std::string value() const { return rows.empty() || rows[0].empty() ? std::string() : rows[0][0]; }
};

class PgConn {
 public:
  // Connects (never throws on a refused login: check ok()). `conninfo` is libpq's key=value form.
  explicit PgConn(const std::string& conninfo, std::chrono::seconds timeout = 30s);
  ~PgConn();
  PgConn(PgConn&& other) noexcept;
  PgConn& operator=(PgConn&& other) noexcept;
  PgConn(const PgConn&) = delete;
  PgConn& operator=(const PgConn&) = delete;

  bool ok() const;
  const Error& error() const { return error_; }  // why the connection failed
  std::string error_text() const { return error_.sqlstate + " " + error_.message; }

  QueryResult exec(const std::string& sql);
  // exec() that throws std::runtime_error (naming the SQL and the error) unless it succeeds; returns value().
  std::string value(const std::string& sql);
  void close();
  PGconn* raw() { return conn_; }

 private:
  PGconn* conn_ = nullptr;
  Error error_;
};

// Connects, then runs `sql` if the connection succeeded: a failure in either step is the outcome's error.
// Pools may refuse a client at login or only at its first query; this is what a user sees either way.
QueryResult connect_and_query(const std::string& conninfo, const std::string& sql);

// Parses "... FATAL:  28P01: message" (libpq's verbose form) into an Error.
Error parse_libpq_error(const std::string& text);

// Quotes a value for a libpq conninfo string.
std::string conninfo_quote(const std::string& value);

}  // namespace pgweir::test
