// Integration tests of the harness itself (no pgweir needed): the PostgreSQL cluster starts as root or not,
// pg_hba rules take effect, login errors carry their SQLSTATE, and the cluster restarts and cleans up.
#include "common.hpp"

#include <filesystem>

namespace pgweir::test {
namespace {

TEST_CASE("the harness runs a PostgreSQL cluster with per-user pg_hba rules") {
  auto& pg = shared_cluster();
  CHECK(pg.exec("SELECT current_user") == "postgres");
  CHECK(pg.exec("SHOW server_version_num").rfind("15", 0) == 0);

  pg.create_role("h_scram", "scram-pw", "scram-sha-256");
  pg.create_role("h_md5", "md5-pw", "md5");
  CHECK(pg.role_secret("h_scram").rfind("SCRAM-SHA-256$4096:", 0) == 0);
  CHECK(pg.role_secret("h_md5") == pg.exec("SELECT 'md5' || md5('md5-pw' || 'h_md5')"));

  // trust by default: any password works
  CHECK(connect_and_query(pg.conninfo("postgres", "h_scram", "whatever"), "SELECT 1").ok);

  pg.hba("h_scram", "scram-sha-256");
  pg.hba("h_md5", "md5");
  auto good = connect_and_query(pg.conninfo("postgres", "h_scram", "scram-pw"), "SELECT current_user");
  CHECK_MESSAGE(good.ok, good.error.sqlstate << " " << good.error.message);
  CHECK(good.value() == "h_scram");
  auto bad = connect_and_query(pg.conninfo("postgres", "h_scram", "wrong"), "SELECT 1");
  CHECK_MESSAGE(bad.error.sqlstate == "28P01", "got '" << bad.error.sqlstate << "' " << bad.error.message);
  CHECK(bad.error.message == "password authentication failed for user \"h_scram\"");
  CHECK(connect_and_query(pg.conninfo("postgres", "h_md5", "md5-pw"), "SELECT 1").ok);
  auto no_db = connect_and_query(pg.conninfo("no_such_db", "h_md5", "md5-pw"), "SELECT 1");
  CHECK_MESSAGE(no_db.error.sqlstate == "3D000", "got '" << no_db.error.sqlstate << "' " << no_db.error.message);

  pg.hba("h_scram", "trust");
  CHECK(connect_and_query(pg.conninfo("postgres", "h_scram", "wrong"), "SELECT 1").ok);

  auto query_error = PgConn(pg.superuser_conninfo()).exec("SELECT 1/0");
  CHECK(query_error.error.sqlstate == "22012");

  pg.restart();
  CHECK(pg.exec("SELECT 1") == "1");
}

TEST_CASE("a second cluster is removed with its directory when destroyed") {
  std::string dir;
  {
    PostgresCluster other;
    dir = other.socket_dir();
    CHECK(std::filesystem::exists(dir + "/data/PG_VERSION"));
    CHECK(other.exec("SELECT 2") == "2");
  }
  CHECK_MESSAGE(!std::filesystem::exists(dir), dir << " still exists");
}

TEST_CASE("run() captures output and exit codes; TcpClient sees a close") {
  auto ok = run({"sh", "-c", "echo out; echo err >&2; exit 3"});
  CHECK(ok.exit_code == 3);
  CHECK(ok.output.find("out") != std::string::npos);
  CHECK(ok.output.find("err") != std::string::npos);
  auto slow = run({"sleep", "10"}, {}, 200ms);
  CHECK(slow.exit_code == -1);
  auto env = run({"sh", "-c", "echo $PGWEIR_IT_X"}, {{"PGWEIR_IT_X", "value"}});
  CHECK(env.output == "value\n");

  auto& pg = shared_cluster();
  TcpClient raw("127.0.0.1", pg.port());
  // An SSLRequest answered 'N' by PostgreSQL (no TLS configured), then garbage: PostgreSQL closes.
  raw.send(std::string("\x00\x00\x00\x08\x04\xd2\x16\x2f", 8));
  CHECK(raw.receive_some(5s) == "N");
  raw.send(std::string("\x00\x00\x00\x08\x00\x00\x00\x00", 8));
  CHECK(raw.wait_closed(10s));
}

}  // namespace
}  // namespace pgweir::test
