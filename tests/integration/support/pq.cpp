// Test harness: libpq wrapper. Start-up errors are made verbose before the first poll so their SQLSTATE
// is in the text, then parsed; query errors come from PQresultErrorField.
#include "support/pq.hpp"

#include <libpq-fe.h>
#include <poll.h>
#include <regex>
#include <stdexcept>

namespace pgweir::test {

Error parse_libpq_error(const std::string& text) {
  static const std::regex with_state(R"((?:FATAL|ERROR|PANIC):  ([0-9A-Z]{5}): ([^\n]*))");
  std::smatch m;
  if (std::regex_search(text, m, with_state)) return Error{m[1].str(), m[2].str()};
  auto trimmed = text;
  while (!trimmed.empty() && (trimmed.back() == '\n' || trimmed.back() == ' ')) trimmed.pop_back();
  return Error{"", trimmed};
}

std::string conninfo_quote(const std::string& value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

PgConn::PgConn(const std::string& conninfo, std::chrono::seconds timeout) {
  conn_ = PQconnectStart(conninfo.c_str());
  if (conn_ == nullptr) {
    error_ = Error{"", "PQconnectStart: out of memory"};
    return;
  }
  PQsetErrorVerbosity(conn_, PQERRORS_VERBOSE);
  PQsetNoticeProcessor(conn_, [](void*, const char*) {}, nullptr);  // NOTICEs would clutter the test output
  if (PQstatus(conn_) == CONNECTION_BAD) {
    error_ = parse_libpq_error(PQerrorMessage(conn_));
    return;
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  PostgresPollingStatusType st = PGRES_POLLING_WRITING;
  while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      error_ = Error{"", "harness: connection not established within " + std::to_string(timeout.count()) + " s"};
      PQfinish(conn_);
      conn_ = nullptr;
      return;
    }
    pollfd p{PQsocket(conn_), static_cast<short>(st == PGRES_POLLING_READING ? POLLIN : POLLOUT), 0};
    if (poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 500))) == 0) continue;
    st = PQconnectPoll(conn_);
  }
  if (st == PGRES_POLLING_FAILED) error_ = parse_libpq_error(PQerrorMessage(conn_));
  else PQsetErrorVerbosity(conn_, PQERRORS_DEFAULT);
}

PgConn::~PgConn() { close(); }

PgConn::PgConn(PgConn&& other) noexcept : conn_(other.conn_), error_(std::move(other.error_)) {
  other.conn_ = nullptr;
}

PgConn& PgConn::operator=(PgConn&& other) noexcept {
  if (this != &other) {
    close();
    conn_ = other.conn_;
    error_ = std::move(other.error_);
    other.conn_ = nullptr;
  }
  return *this;
}

bool PgConn::ok() const { return conn_ != nullptr && PQstatus(conn_) == CONNECTION_OK; }

void PgConn::close() {
  if (conn_ != nullptr) PQfinish(conn_);
  conn_ = nullptr;
}

QueryResult PgConn::exec(const std::string& sql) {
  QueryResult out;
  if (conn_ == nullptr) {
    out.error = Error{"", "not connected: " + error_text()};
    return out;
  }
  if (!PQsendQuery(conn_, sql.c_str())) {
    out.error = parse_libpq_error(PQerrorMessage(conn_));
    return out;
  }
  // Every result, as PQexec would read them, but the first error is kept: an error the server sends just before
  // it closes the connection (a FATAL) is what a user sees, not libpq's "server closed the connection" after it.
  bool failed = false;
  while (PGresult* res = PQgetResult(conn_)) {
    auto status = PQresultStatus(res);
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
      out.rows.clear();
      for (int r = 0; r < PQntuples(res); ++r) {
        auto& row = out.rows.emplace_back();
        for (int c = 0; c < PQnfields(res); ++c) row.emplace_back(PQgetvalue(res, r, c));
      }
    } else if (!failed) {
      failed = true;
      const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
      const char* primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
      out.error.sqlstate = state ? state : "";
      out.error.message = primary ? primary : parse_libpq_error(PQerrorMessage(conn_)).message;
    }
    bool copying = status == PGRES_COPY_IN || status == PGRES_COPY_OUT || status == PGRES_COPY_BOTH;
    PQclear(res);
    if (copying) break;  // as PQexec: the caller goes on with the copy
  }
  out.ok = !failed;
  return out;
}

std::string PgConn::value(const std::string& sql) {
  auto r = exec(sql);
  if (!r.ok) throw std::runtime_error("query failed: " + sql + ": " + r.error.sqlstate + " " + r.error.message);
  return r.value();
}

QueryResult connect_and_query(const std::string& conninfo, const std::string& sql) {
  PgConn c(conninfo);
  if (!c.ok()) {
    QueryResult out;
    out.error = c.error();
    return out;
  }
  return c.exec(sql);
}

}  // namespace pgweir::test
