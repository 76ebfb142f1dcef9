// Integration tests for transaction and statement pooling (issue 3): release rules under pgbench, parameter
// isolation, cancel isolation while servers are reused, dirty servers, timeouts, overflow and lifetime.
#include "common.hpp"

#include <libpq-fe.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <regex>
#include <thread>

namespace pgweir::test {
namespace {

std::string tx_config(const std::string& db, const std::string& mode, int size, int overflow,
                      const std::string& extra_pool = "", const std::string& extra_server = "",
                      const std::string& timeout = "60s") {
  return with_cluster(R"(
[server]
listen = ["127.0.0.1:@PORT@"]
workers = 2
worker_fill = 0  # clients alternate between the two workers
shutdown_timeout = "5s"
)" + extra_server + R"(

[tls]
mode = "disable"

[auth]
method = "trust"

[pool]
mode = ")" + mode + R"("
size = )" + std::to_string(size) + R"(
max_overflow = )" + std::to_string(overflow) + R"(
timeout = ")" + timeout + R"("
)" + extra_pool + R"(

[metrics]
listen = ""

[databases.)" + db + R"(]
dsn = "postgresql://127.0.0.1:@PGPORT@/)" + db + R"(?sslmode=disable"
)");
}

int backends_of(const std::string& user, const std::string& extra_where = "") {
  return std::stoi(shared_cluster().exec("SELECT count(*) FROM pg_stat_activity WHERE usename = '" + user + "'" +
                                         extra_where));
}

// Polls `pred` every 50 ms until it holds or `timeout` passes.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return pred();
}

class BackendSampler {
 public:
  explicit BackendSampler(std::string user)
      : user_(std::move(user)), thread_([this] {
          while (!done_) {
            max_ = std::max(max_.load(), backends_of(user_));
            std::this_thread::sleep_for(20ms);
          }
        }) {}
  ~BackendSampler() { finish(); }
  int finish() {
    done_ = true;
    if (thread_.joinable()) thread_.join();
    return max_;
  }

 private:
  std::string user_;
  std::atomic<bool> done_{false};
  std::atomic<int> max_{0};
  std::thread thread_;
};

struct PgbenchOutcome {
  int exit_code = -1;
  std::string output;
  long failed = -1;
  long processed = -1;
};

PgbenchOutcome pgbench(const Pgweir& p, const std::string& user, const std::string& db,
                       std::vector<std::string> args) {
  std::vector<std::string> cmd{pg_bin("pgbench"), "-n", "-h", "127.0.0.1", "-p", std::to_string(p.port()), "-U", user};
  cmd.insert(cmd.end(), args.begin(), args.end());
  cmd.push_back(db);
  auto r = run(cmd, {}, 180s);
  PgbenchOutcome o;
  o.exit_code = r.exit_code;
  o.output = r.output;
  std::smatch m;
  if (std::regex_search(r.output, m, std::regex(R"(number of failed transactions: (\d+))"))) o.failed = std::stol(m[1]);
  if (std::regex_search(r.output, m, std::regex(R"(number of transactions actually processed: (\d+))")))
    o.processed = std::stol(m[1]);
  return o;
}

// Database `db`, owned by user `db`_user, with table t holding the row (1, 0) for a test to lock.
void create_row_table(const std::string& db) {
  auto& pg = shared_cluster();
  ensure_database(db, db + "_user");
  pg.exec("CREATE TABLE IF NOT EXISTS t (id int primary key, v int)", db);
  pg.exec("GRANT ALL ON t TO " + db + "_user", db);
  pg.exec("INSERT INTO t VALUES (1, 0) ON CONFLICT DO NOTHING", db);
}

// Closes a libpq connection's socket without a Terminate message, as a crashed client would.
void vanish(PGconn* conn) { ::shutdown(PQsocket(conn), SHUT_RDWR); }

// Sends `sql` as one Query and the end of the client's stream in the same TCP segment (the FIN rides on the
// corked data), then reads what pgweir sends until it closes the connection or `timeout` passes. True when it
// closed.
bool send_with_fin_and_wait_for_close(PGconn* conn, const char* sql, std::chrono::milliseconds timeout) {
  int fd = PQsocket(conn);
  int one = 1;
  if (::setsockopt(fd, IPPROTO_TCP, TCP_CORK, &one, sizeof one) != 0) return false;
  if (PQsendQuery(conn, sql) != 1 || PQflush(conn) != 0) return false;
  ::shutdown(fd, SHUT_WR);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (::poll(&p, 1, static_cast<int>(std::max<long>(1, left.count()))) <= 0) continue;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return true;
  }
  return false;
}

std::string be32(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

// A raw StartupMessage (protocol 3.0) and a simple Query, as a client that does not wait would send them.
std::string startup_packet(const std::string& user, const std::string& db) {
  std::string body = be32(196608) + "user" + '\0' + user + '\0' + "database" + '\0' + db + '\0' + '\0';
  return be32(static_cast<std::uint32_t>(body.size() + 4)) + body;
}
std::string query_message(const std::string& sql) {
  return "Q" + be32(static_cast<std::uint32_t>(sql.size() + 5)) + sql + '\0';
}

// The messages pgweir sent, as (tag, body), once `ready` ReadyForQuery messages have arrived or `timeout` passed.
std::vector<std::pair<char, std::string>> read_until_ready(TcpClient& c, int ready, std::chrono::milliseconds timeout) {
  std::string bytes;
  std::vector<std::pair<char, std::string>> out;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    bytes += c.receive_some(200ms);
    out.clear();
    int seen = 0;
    std::size_t at = 0;
    while (bytes.size() - at >= 5) {
      auto len = (std::uint32_t(std::uint8_t(bytes[at + 1])) << 24) | (std::uint32_t(std::uint8_t(bytes[at + 2])) << 16) |
                 (std::uint32_t(std::uint8_t(bytes[at + 3])) << 8) | std::uint32_t(std::uint8_t(bytes[at + 4]));
      if (bytes.size() - at < 1 + len) break;
      out.emplace_back(bytes[at], bytes.substr(at + 5, len - 4));
      if (bytes[at] == 'Z') ++seen;
      at += 1 + len;
    }
    if (seen >= ready) break;
  }
  return out;
}

}  // namespace

TEST_CASE("500 clients on a transaction pool of 10: pgbench -S for 30 s, no failures, bounded servers") {
  auto& pg = shared_cluster();
  ensure_database("txbench", "txbench_user");
  auto init = run({pg_bin("pgbench"), "-i", "-q", "-s", "1", "-h", "127.0.0.1", "-p", std::to_string(pg.port()), "-U",
                   "txbench_user", "txbench"});
  REQUIRE_MESSAGE(init.exit_code == 0, "pgbench -i failed:\n" << init.output);
  Pgweir p(tx_config("txbench", "transaction", 10, 0));
  PGWEIR_LOG_ON_FAILURE(p);

  BackendSampler sampler("txbench_user");
  auto o = pgbench(p, "txbench_user", "txbench", {"-S", "-M", "simple", "-c", "500", "-j", "2", "-T", "30"});
  int max_backends = sampler.finish();
  INFO("pgbench output:\n" << o.output);
  CHECK(o.exit_code == 0);
  CHECK_MESSAGE(o.failed == 0, "failed transactions: " << o.failed);
  CHECK_MESSAGE(o.processed > 0, "processed: " << o.processed);
  CHECK_MESSAGE(max_backends <= 10, "size 10 + max_overflow 0, but PostgreSQL had " << max_backends << " backends");
  CHECK(max_backends >= 1);

  // Extended protocol and read-write transactions (BEGIN … END) through the same pool.
  for (const std::string mode : {"extended", "simple"}) {
    CAPTURE(mode);
    BackendSampler s2("txbench_user");
    auto rw = pgbench(p, "txbench_user", "txbench", {"-M", mode, "-c", "50", "-j", "2", "-T", "5"});
    int m2 = s2.finish();
    INFO("pgbench output:\n" << rw.output);
    CHECK(rw.exit_code == 0);
    CHECK(rw.failed == 0);
    CHECK(rw.processed > 0);
    CHECK(m2 <= 10);
  }
}

TEST_CASE("transaction mode: a client's SET of a reported parameter never reaches the next client") {
  ensure_database("txparams", "txparams_user");
  Pgweir p(tx_config("txparams", "transaction", 1, 0));
  PGWEIR_LOG_ON_FAILURE(p);
  PgConn direct(shared_cluster().conninfo("txparams", "txparams_user"));
  const auto default_tz = direct.value("SHOW TimeZone");
  const auto default_ds = direct.value("SHOW DateStyle");

  PgConn a(p.conninfo("txparams", "txparams_user"));
  PgConn b(p.conninfo("txparams", "txparams_user", "", "application_name=client_b"));
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  a.value("SET TimeZone = 'Asia/Tokyo'");
  a.value("SET DateStyle = 'German, DMY'");
  auto pid_a = a.value("SELECT pg_backend_pid()");
  // Pool size 1: B runs on the same server connection A just used.
  CHECK(b.value("SELECT pg_backend_pid()") == pid_a);
  CHECK_MESSAGE(b.value("SHOW TimeZone") == default_tz, "B sees A's TimeZone");
  CHECK_MESSAGE(b.value("SHOW DateStyle") == default_ds, "B sees A's DateStyle");
  CHECK(b.value("SHOW application_name") == "client_b");
  // A's own settings come back with it.
  CHECK(a.value("SHOW TimeZone") == "Asia/Tokyo");
  CHECK(a.value("SHOW DateStyle") == "German, DMY");
  CHECK(b.value("SHOW TimeZone") == default_tz);
  // A transaction's SET LOCAL ends with it.
  a.value("BEGIN");
  a.value("SET LOCAL TimeZone = 'UTC'");
  a.value("COMMIT");
  CHECK(a.value("SHOW TimeZone") == "Asia/Tokyo");
}

TEST_CASE("transaction mode: a server is held through a transaction and released after it") {
  ensure_database("txhold", "txhold_user");
  Pgweir p(tx_config("txhold", "transaction", 1, 0, "", "", "2s"));
  PGWEIR_LOG_ON_FAILURE(p);
  PgConn a(p.conninfo("txhold", "txhold_user"));
  REQUIRE(a.ok());
  a.value("BEGIN");
  a.value("SELECT 1");
  // B logs in while A holds the only server: the pool welcomes it with what that server reported at its login,
  // B's own application_name in. B's query must wait for the server (A is inside a transaction) and gives up
  // after pool.timeout.
  {
    PgConn b(p.conninfo("txhold", "txhold_user", "", "application_name=txhold_b"));
    REQUIRE_MESSAGE(b.ok(), "B could not log in while A held the only server: " << b.error_text());
    const char* app = PQparameterStatus(b.raw(), "application_name");
    CHECK(std::string(app ? app : "") == "txhold_b");
    const char* version = PQparameterStatus(b.raw(), "server_version");
    CHECK(std::string(version ? version : "").substr(0, 2) == "15");
    auto r = b.exec("SELECT 1");
    CHECK_MESSAGE(!r.ok, "B got a server while A was inside a transaction on the only one");
    CHECK(r.error.sqlstate == "53300");
  }
  a.value("COMMIT");
  auto c = connect_and_query(p.conninfo("txhold", "txhold_user"), "SELECT 1");
  CHECK_MESSAGE(c.ok, "after A's COMMIT the server should be free: " << c.error.sqlstate << " " << c.error.message);
  // A client idle outside a transaction holds nothing.
  PgConn idle(p.conninfo("txhold", "txhold_user"));
  REQUIRE(idle.ok());
  idle.value("SELECT 1");
  auto d = connect_and_query(p.conninfo("txhold", "txhold_user"), "SELECT 2");
  CHECK(d.ok);
}

TEST_CASE("cancel reaches the client's own query, and nothing when the client holds no server") {
  ensure_database("txcancel", "txcancel_user");
  Pgweir p(tx_config("txcancel", "transaction", 2, 0));
  PGWEIR_LOG_ON_FAILURE(p);

  PgConn a(p.conninfo("txcancel", "txcancel_user"));
  REQUIRE(a.ok());
  PGcancel* cancel = PQgetCancel(a.raw());
  REQUIRE(cancel != nullptr);
  auto started = std::chrono::steady_clock::now();
  REQUIRE(PQsendQuery(a.raw(), "SELECT pg_sleep(30)") == 1);
  std::this_thread::sleep_for(300ms);
  char err[256];
  CHECK(PQcancel(cancel, err, sizeof err) == 1);
  PGresult* res = PQgetResult(a.raw());
  REQUIRE(res != nullptr);
  const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
  CHECK_MESSAGE(std::string(state ? state : "") == "57014", "expected 57014 query_canceled");
  PQclear(res);
  while ((res = PQgetResult(a.raw())) != nullptr) PQclear(res);
  CHECK(std::chrono::steady_clock::now() - started < 20s);

  // A holds no server now; its cancel must not hit B's query on the server A used.
  PgConn b(p.conninfo("txcancel", "txcancel_user"));
  REQUIRE(b.ok());
  REQUIRE(PQsendQuery(b.raw(), "SELECT pg_sleep(1), 'b done'") == 1);
  std::this_thread::sleep_for(200ms);
  CHECK(PQcancel(cancel, err, sizeof err) == 1);
  res = PQgetResult(b.raw());
  REQUIRE(res != nullptr);
  CHECK_MESSAGE(PQresultStatus(res) == PGRES_TUPLES_OK, "B's query was cancelled by A's cancel: "
                                                            << PQresultErrorMessage(res));
  PQclear(res);
  while ((res = PQgetResult(b.raw())) != nullptr) PQclear(res);
  PQfreeCancel(cancel);
  CHECK(a.value("SELECT 'a still works'") == "a still works");
}

TEST_CASE("100 concurrent cancels while servers are reused never hit another client's query") {
  ensure_database("txstorm", "txstorm_user");
  Pgweir p(tx_config("txstorm", "transaction", 3, 0));
  PGWEIR_LOG_ON_FAILURE(p);

  std::atomic<int> victim_errors{0};
  std::atomic<int> victim_queries{0};
  std::atomic<int> cancels_sent{0};
  std::atomic<bool> stop{false};
  std::string first_victim_error;
  std::mutex mu;
  std::vector<std::jthread> threads;
  // Victims: never cancel; any error they see came from someone else.
  for (int v = 0; v < 4; ++v) {
    threads.emplace_back([&] {
      PgConn c(p.conninfo("txstorm", "txstorm_user"));
      if (!c.ok()) {
        ++victim_errors;
        return;
      }
      while (!stop) {
        auto r = c.exec("SELECT pg_sleep(0.002)");
        ++victim_queries;
        if (!r.ok) {
          ++victim_errors;
          std::lock_guard lock(mu);
          if (first_victim_error.empty()) first_victim_error = r.error.sqlstate + " " + r.error.message;
        }
      }
    });
  }
  // Cancellers: each cancels its own queries, some while running and some just after they finished (late).
  for (int k = 0; k < 10; ++k) {
    threads.emplace_back([&, k] {
      PgConn c(p.conninfo("txstorm", "txstorm_user"));
      if (!c.ok()) return;
      PGcancel* cancel = PQgetCancel(c.raw());
      char err[256];
      for (int i = 0; i < 10; ++i) {
        if (PQsendQuery(c.raw(), "SELECT pg_sleep(0.01)") != 1) break;
        if ((i + k) % 2 == 0) {
          std::this_thread::sleep_for(2ms);
          PQcancel(cancel, err, sizeof err);
          ++cancels_sent;
        }
        PGresult* res;
        while ((res = PQgetResult(c.raw())) != nullptr) PQclear(res);
        if ((i + k) % 2 == 1) {
          PQcancel(cancel, err, sizeof err);  // late: the query is over and the server may be someone else's
          ++cancels_sent;
        }
      }
      PQfreeCancel(cancel);
    });
  }
  for (std::size_t i = 4; i < threads.size(); ++i) threads[i].join();
  stop = true;
  threads.clear();
  CHECK(cancels_sent == 100);
  CHECK(victim_queries > 0);
  CHECK_MESSAGE(victim_errors == 0, victim_errors.load() << " of " << victim_queries.load()
                                                         << " victim queries failed; first: " << first_victim_error);
}

TEST_CASE("a client that vanishes inside a transaction leaves no lock and no idle-in-transaction backend") {
  auto& pg = shared_cluster();
  create_row_table("txdirty");
  Pgweir p(tx_config("txdirty", "transaction", 2, 0));
  PGWEIR_LOG_ON_FAILURE(p);

  SUBCASE("idle in a transaction after an UPDATE") {
    PgConn a(p.conninfo("txdirty", "txdirty_user"));
    REQUIRE(a.ok());
    a.value("BEGIN");
    a.exec("UPDATE t SET v = v + 1 WHERE id = 1");
    vanish(a.raw());
  }
  SUBCASE("mid-query") {
    PgConn a(p.conninfo("txdirty", "txdirty_user"));
    REQUIRE(a.ok());
    a.value("BEGIN");
    a.exec("UPDATE t SET v = v + 1 WHERE id = 1");
    REQUIRE(PQsendQuery(a.raw(), "SELECT pg_sleep(60)") == 1);
    std::this_thread::sleep_for(200ms);
    vanish(a.raw());
  }
  SUBCASE("mid-pipeline: Parse/Bind/Execute without Sync") {
    PgConn a(p.conninfo("txdirty", "txdirty_user"));
    REQUIRE(a.ok());
    a.value("BEGIN");
    a.exec("UPDATE t SET v = v + 1 WHERE id = 1");
    REQUIRE(PQenterPipelineMode(a.raw()) == 1);
    const char* values[] = {"1"};
    REQUIRE(PQsendQueryParams(a.raw(), "SELECT $1::int", 1, nullptr, values, nullptr, nullptr, 0) == 1);
    REQUIRE(PQsendFlushRequest(a.raw()) == 1);
    REQUIRE(PQflush(a.raw()) == 0);
    std::this_thread::sleep_for(200ms);
    vanish(a.raw());
  }
  SUBCASE("mid-COPY") {
    PgConn a(p.conninfo("txdirty", "txdirty_user"));
    REQUIRE(a.ok());
    a.value("BEGIN");
    a.exec("UPDATE t SET v = v + 1 WHERE id = 1");
    PGresult* r = PQexec(a.raw(), "COPY t FROM STDIN");
    REQUIRE(PQresultStatus(r) == PGRES_COPY_IN);
    PQclear(r);
    REQUIRE(PQputCopyData(a.raw(), "100\t1\n", 6) == 1);
    REQUIRE(PQflush(a.raw()) == 0);
    std::this_thread::sleep_for(200ms);
    vanish(a.raw());
  }

  // The row lock is released: a direct UPDATE of the same row succeeds within 5 s.
  PgConn direct(pg.conninfo("txdirty", "txdirty_user"));
  direct.value("SET lock_timeout = '5s'");
  auto upd = direct.exec("UPDATE t SET v = 0 WHERE id = 1");
  CHECK_MESSAGE(upd.ok, "row lock still held: " << upd.error.sqlstate << " " << upd.error.message);
  CHECK(eventually([] { return backends_of("txdirty_user", " AND state LIKE 'idle in transaction%'") == 0; }, 5s));
  CHECK(eventually([] { return backends_of("txdirty_user", " AND state = 'active'") == 0; }, 5s));
  // The next client sees a clean session.
  PgConn next(p.conninfo("txdirty", "txdirty_user"));
  REQUIRE(next.ok());
  CHECK(next.value("SELECT count(*) FROM t WHERE id = 100") == "0");
  CHECK(next.value("SELECT now() = statement_timestamp()") == "t");  // not inside someone's transaction
}

TEST_CASE("a statement and the client's FIN in one segment: pgweir answers, sees the end and frees the server") {
  // pgweir lets a read that follows one that drained the socket wait without trying a recv first; a FIN that
  // came in the same segment as the last statement raises no edge of its own, and must still be seen.
  create_row_table("txfin");
  Pgweir p(tx_config("txfin", "transaction", 1, 0, "", "", "10s"));
  PGWEIR_LOG_ON_FAILURE(p);

  SUBCASE("a statement outside a transaction") {
    PgConn a(p.conninfo("txfin", "txfin_user"));
    REQUIRE(a.ok());
    a.value("SELECT 1");  // a first transaction, so the next read follows one that drained the socket
    CHECK(send_with_fin_and_wait_for_close(a.raw(), "SELECT 2", 5s));
  }
  SUBCASE("the statement that opens a transaction") {
    PgConn a(p.conninfo("txfin", "txfin_user"));
    REQUIRE(a.ok());
    a.value("SELECT 1");
    CHECK(send_with_fin_and_wait_for_close(a.raw(), "BEGIN; UPDATE t SET v = v + 1 WHERE id = 1", 5s));
    CHECK(eventually([] { return backends_of("txfin_user", " AND state LIKE 'idle in transaction%'") == 0; }, 5s));
  }
  // The only server of the pool is free for the next client, outside any transaction.
  PgConn next(p.conninfo("txfin", "txfin_user"));
  REQUIRE(next.ok());
  CHECK(next.value("SELECT now() = statement_timestamp()") == "t");
}

TEST_CASE("a query sent in the same segment as the startup packet is answered, not lost") {
  // pgweir reads a login ahead and gives back what follows the startup packet; a client welcomed without a server
  // is parked at once, unless such bytes are already held: then its relay starts with them.
  ensure_database("txpipe", "txpipe_user");
  Pgweir p(tx_config("txpipe", "transaction", 2, 0));
  PGWEIR_LOG_ON_FAILURE(p);
  // The pool's first login takes a server; the later ones are welcomed with what it reported.
  for (int i = 0; i < 3; ++i) {
    CAPTURE(i);
    TcpClient c("127.0.0.1", p.port());
    c.send(startup_packet("txpipe_user", "txpipe") + query_message("SELECT 40 + " + std::to_string(i)));
    auto msgs = read_until_ready(c, 2, 10s);
    std::string rows, tags;
    for (const auto& [tag, body] : msgs) {
      tags += tag;
      if (tag == 'D') rows += body.substr(6);  // one column: count, length, value
    }
    INFO("message types: " << tags);
    CHECK(tags.find('R') == 0);
    CHECK(rows == std::to_string(40 + i));
    CHECK(std::count(tags.begin(), tags.end(), 'Z') == 2);
  }
}

TEST_CASE("idle_transaction_timeout, query_timeout and client_idle_timeout") {
  auto& pg = shared_cluster();
  ensure_database("txtime", "txtime_user");
  pg.exec("CREATE TABLE IF NOT EXISTS t (id int primary key)", "txtime");
  pg.exec("GRANT ALL ON t TO txtime_user", "txtime");
  pg.exec("INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING", "txtime");
  Pgweir p(tx_config("txtime", "transaction", 2, 0, "idle_transaction_timeout = \"1s\"\nquery_timeout = \"1s\"",
                     "client_idle_timeout = \"2s\""));
  PGWEIR_LOG_ON_FAILURE(p);

  {
    PgConn a(p.conninfo("txtime", "txtime_user"));
    REQUIRE(a.ok());
    a.value("BEGIN");
    a.exec("SELECT * FROM t WHERE id = 1 FOR UPDATE");
    std::this_thread::sleep_for(2500ms);
    auto r = a.exec("SELECT 1");
    CHECK_MESSAGE(!r.ok, "a client idle in a transaction past idle_transaction_timeout should be closed");
    PgConn direct(pg.conninfo("txtime", "txtime_user"));
    direct.value("SET lock_timeout = '5s'");
    CHECK(direct.exec("SELECT * FROM t WHERE id = 1 FOR UPDATE").ok);
  }
  {
    PgConn b(p.conninfo("txtime", "txtime_user"));
    REQUIRE(b.ok());
    auto r = b.exec("SELECT pg_sleep(10)");
    CHECK(!r.ok);
    CHECK_MESSAGE(r.error.sqlstate == "57014", "query_timeout should cancel: " << r.error.sqlstate << " "
                                                                              << r.error.message);
    CHECK(b.value("SELECT 'still connected'") == "still connected");
  }
  {
    PgConn c(p.conninfo("txtime", "txtime_user"));
    REQUIRE(c.ok());
    c.value("SELECT 1");
    std::this_thread::sleep_for(3500ms);
    CHECK_MESSAGE(!c.exec("SELECT 1").ok, "a client idle past client_idle_timeout should be closed");
  }
}

TEST_CASE("statement mode: single statements pool, transaction blocks are refused") {
  ensure_database("stmtdb", "stmt_user");
  Pgweir p(tx_config("stmtdb", "statement", 1, 0));
  PGWEIR_LOG_ON_FAILURE(p);
  PgConn a(p.conninfo("stmtdb", "stmt_user"));
  PgConn b(p.conninfo("stmtdb", "stmt_user"));
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(a.value("SELECT 1") == "1");
  CHECK(b.value("SELECT 2") == "2");
  CHECK(a.value("SELECT 3") == "3");
  auto r = a.exec("BEGIN");
  auto r2 = a.exec("SELECT 1");
  CHECK_MESSAGE((!r.ok || !r2.ok), "a transaction block in statement mode must be refused");
  std::string msg = r.ok ? r2.error.message : r.error.message;
  CHECK_MESSAGE(msg.find("statement pooling") != std::string::npos, "message: " << msg);
  CHECK(b.value("SELECT 4") == "4");
}

TEST_CASE("overflow connections open only under load and close after idle_timeout") {
  ensure_database("txover", "txover_user");
  Pgweir p(tx_config("txover", "transaction", 2, 2, "idle_timeout = \"1s\""));
  PGWEIR_LOG_ON_FAILURE(p);
  PgConn first(p.conninfo("txover", "txover_user"));
  REQUIRE(first.ok());
  CHECK_MESSAGE(backends_of("txover_user") == 1, "one client, one query: only one server connection");
  {
    std::vector<std::jthread> t;
    for (int i = 0; i < 4; ++i)
      t.emplace_back([&] { PgConn(p.conninfo("txover", "txover_user")).exec("SELECT pg_sleep(1)"); });
    std::this_thread::sleep_for(500ms);
    int during = backends_of("txover_user");
    CHECK_MESSAGE(during == 4, "4 concurrent transactions on size 2 + overflow 2: " << during << " backends");
  }
  CHECK_MESSAGE(eventually([] { return backends_of("txover_user") == 0; }, 6s),
                "idle connections should close after idle_timeout (min_idle 0)");
}

TEST_CASE("max_lifetime replaces a busy server connection when it is released") {
  ensure_database("txlife", "txlife_user");
  Pgweir p(tx_config("txlife", "transaction", 1, 0, "max_lifetime = \"1s\""));
  PGWEIR_LOG_ON_FAILURE(p);
  PgConn c(p.conninfo("txlife", "txlife_user"));
  REQUIRE(c.ok());
  auto pid1 = c.value("SELECT pg_backend_pid()");
  std::string pid2 = pid1;
  for (int i = 0; i < 30 && pid2 == pid1; ++i) {
    std::this_thread::sleep_for(100ms);
    pid2 = c.value("SELECT pg_backend_pid()");
  }
  CHECK_MESSAGE(pid1 != pid2, "a server connection older than max_lifetime should be replaced");
  c.value("BEGIN");
  auto in_tx = c.value("SELECT pg_backend_pid()");
  std::this_thread::sleep_for(1500ms);
  CHECK_MESSAGE(c.value("SELECT pg_backend_pid()") == in_tx, "a connection is never recycled inside a transaction");
  c.value("COMMIT");
}

}  // namespace pgweir::test
