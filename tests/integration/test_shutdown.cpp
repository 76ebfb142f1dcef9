// Integration tests for shutdown (SPEC §1, §4): the console's SHUTDOWN, SHUTDOWN WAIT_FOR_SERVERS and
// SHUTDOWN WAIT_FOR_CLIENTS, and a second SIGTERM exiting at once.
#include "common.hpp"

#include <signal.h>

#include <thread>

namespace pgweir::test {
namespace {

std::string shutdown_config(const std::string& shutdown_timeout = "20s") {
  return with_cluster(R"(
[server]
listen = ["127.0.0.1:@PORT@"]
workers = 2
worker_fill = 0  # clients alternate between the two workers
shutdown_timeout = ")" + shutdown_timeout + R"("

[tls]
mode = "disable"

[auth]
method = "trust"

[admin]
users = ["shut_admin"]

[pool]
mode = "transaction"
size = 2
max_overflow = 0

[metrics]
listen = ""

[databases.shutdb]
dsn = "postgresql://127.0.0.1:@PGPORT@/shutdb?sslmode=disable"
)");
}

// Runs a console command; the connection may be cut right after the answer.
QueryResult console(const Pgweir& p, const std::string& command) {
  PgConn admin(p.conninfo("pgweir", "shut_admin"));
  if (!admin.ok()) return QueryResult{false, {}, admin.error()};
  return admin.exec(command);
}

bool accepts_new_clients(const Pgweir& p) {
  return connect_and_query(p.conninfo("shutdb", "shut_user"), "SELECT 1").ok;
}

}  // namespace

TEST_CASE("SHUTDOWN WAIT_FOR_SERVERS lets a transaction finish, then exits 0") {
  ensure_database("shutdb", "shut_user");
  Pgweir p(shutdown_config());
  PGWEIR_LOG_ON_FAILURE(p);
  PgConn a(p.conninfo("shutdb", "shut_user"));
  REQUIRE(a.ok());
  a.value("BEGIN");
  a.value("SELECT 1");
  auto r = console(p, "SHUTDOWN WAIT_FOR_SERVERS");
  CHECK_MESSAGE(r.ok, r.error.sqlstate << " " << r.error.message);
  std::this_thread::sleep_for(300ms);
  CHECK_MESSAGE(!accepts_new_clients(p), "new clients must be refused once shutdown began");
  CHECK_MESSAGE(a.exec("SELECT 2").ok, "the open transaction must be allowed to go on");
  CHECK(a.exec("COMMIT").ok);
  auto code = p.wait(15s);
  REQUIRE_MESSAGE(code.has_value(), "pgweir did not exit after the last transaction ended");
  CHECK(*code == 0);
  CHECK_FALSE(a.exec("SELECT 3").ok);
}

TEST_CASE("SHUTDOWN WAIT_FOR_CLIENTS keeps serving connected clients and exits when the last one leaves") {
  ensure_database("shutdb", "shut_user");
  Pgweir p(shutdown_config());
  PGWEIR_LOG_ON_FAILURE(p);
  PgConn a(p.conninfo("shutdb", "shut_user"));
  REQUIRE(a.ok());
  auto r = console(p, "SHUTDOWN WAIT_FOR_CLIENTS");
  CHECK_MESSAGE(r.ok, r.error.sqlstate << " " << r.error.message);
  std::this_thread::sleep_for(300ms);
  CHECK_FALSE(accepts_new_clients(p));
  // Idle or not, a connected client is not cut off.
  CHECK(a.value("SELECT 'still here'") == "still here");
  std::this_thread::sleep_for(1s);
  CHECK(a.value("SELECT 'and now'") == "and now");
  CHECK(p.running());
  a.close();
  auto code = p.wait(15s);
  REQUIRE_MESSAGE(code.has_value(), "pgweir did not exit after its last client left");
  CHECK(*code == 0);
}

TEST_CASE("SHUTDOWN exits at once") {
  ensure_database("shutdb", "shut_user");
  Pgweir p(shutdown_config());
  PGWEIR_LOG_ON_FAILURE(p);
  PgConn a(p.conninfo("shutdb", "shut_user"));
  REQUIRE(a.ok());
  a.value("BEGIN");
  console(p, "SHUTDOWN");
  auto code = p.wait(10s);
  REQUIRE_MESSAGE(code.has_value(), "SHUTDOWN should exit without waiting for the open transaction");
  CHECK(*code == 0);
}

TEST_CASE("a second SIGTERM exits at once") {
  ensure_database("shutdb", "shut_user");
  Pgweir p(shutdown_config("60s"));
  PGWEIR_LOG_ON_FAILURE(p);
  PgConn a(p.conninfo("shutdb", "shut_user"));
  REQUIRE(a.ok());
  a.value("BEGIN");
  p.signal(SIGTERM);
  std::this_thread::sleep_for(500ms);
  CHECK_MESSAGE(p.running(), "a client inside a transaction keeps the first SIGTERM waiting");
  p.signal(SIGTERM);
  auto code = p.wait(10s);
  REQUIRE_MESSAGE(code.has_value(), "the second SIGTERM should end pgweir at once");
  CHECK(*code == 0);
}

}  // namespace pgweir::test
