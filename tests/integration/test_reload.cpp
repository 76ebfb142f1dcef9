// Integration tests for reload (SIGHUP): under load with no failed transaction, a failed reload changes nothing,
// a changed DSN takes effect for connections opened after it.
#include "common.hpp"

#include <signal.h>

#include <atomic>
#include <fstream>
#include <future>
#include <regex>
#include <thread>

namespace pgweir::test {
namespace {

std::string reload_config(const std::string& alias, const std::string& target_db, int size,
                          const std::string& mode = "transaction") {
  return with_cluster(R"(
[server]
listen = ["127.0.0.1:@PORT@"]
workers = 2
worker_fill = 0  # clients alternate between the two workers
shutdown_timeout = "5s"

[tls]
mode = "disable"

[auth]
method = "trust"

[pool]
mode = ")" + mode + R"("
size = )" + std::to_string(size) + R"(
max_overflow = 0
timeout = "30s"

[metrics]
listen = ""

[databases.)" + alias + R"(]
dsn = "postgresql://127.0.0.1:@PGPORT@/)" + target_db + R"(?sslmode=disable"
)");
}

int count_in(const std::string& text, const std::string& needle) {
  int n = 0;
  for (auto pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("200 reloads under pgbench load lose no transaction") {
  auto& pg = shared_cluster();
  ensure_database("reloaddb", "reload_user");
  auto init = run({pg_bin("pgbench"), "-i", "-q", "-s", "1", "-h", "127.0.0.1", "-p", std::to_string(pg.port()), "-U",
                   "reload_user", "reloaddb"});
  REQUIRE_MESSAGE(init.exit_code == 0, init.output);
  Pgweir p(reload_config("reloaddb", "reloaddb", 5));
  PGWEIR_LOG_ON_FAILURE(p);

  std::vector<std::string> cmd{pg_bin("pgbench"), "-n", "-M", "extended", "-c", "20", "-j", "2", "-T", "12",
                               "-h", "127.0.0.1", "-p", std::to_string(p.port()), "-U", "reload_user", "reloaddb"};
  auto bench = std::async(std::launch::async, [&] { return run(cmd, {}, 120s); });
  std::this_thread::sleep_for(500ms);
  for (int i = 0; i < 200; ++i) {
    // Alternate pool sizes so every other reload really changes the pools.
    p.rewrite_config(reload_config("reloaddb", "reloaddb", i % 2 == 0 ? 8 : 5));
    p.reload();
    std::this_thread::sleep_for(40ms);
  }
  auto r = bench.get();
  INFO("pgbench output:\n" << r.output);
  CHECK(r.exit_code == 0);
  std::smatch m;
  REQUIRE(std::regex_search(r.output, m, std::regex(R"(number of failed transactions: (\d+))")));
  CHECK_MESSAGE(m[1].str() == "0", m[1].str() << " transactions failed during reloads");
  REQUIRE(std::regex_search(r.output, m, std::regex(R"(number of transactions actually processed: (\d+))")));
  CHECK(std::stol(m[1].str()) > 0);
  CHECK(p.running());
  auto log = p.log_text();
  CHECK_MESSAGE(count_in(log, "config_reloaded") >= 150, "expected ~200 reloads in the log, saw "
                                                             << count_in(log, "config_reloaded"));
}

TEST_CASE("a reload that fails validation changes nothing and is reported") {
  ensure_database("badreload", "badreload_user");
  Pgweir p(reload_config("badreload", "badreload", 2));
  PGWEIR_LOG_ON_FAILURE(p);
  PgConn before(p.conninfo("badreload", "badreload_user"));
  REQUIRE(before.ok());

  // A mistyped key and an unknown database alias in the new text: neither may take effect.
  auto bad = reload_config("renamed", "badreload", 2);
  bad.replace(bad.find("max_overflow = 0"), 16, "max_overflow = 0\nsise = 3");
  p.rewrite_config(bad);
  p.reload();
  bool reported = false;
  for (int i = 0; i < 100 && !reported; ++i) {
    std::this_thread::sleep_for(50ms);
    reported = p.log_text().find("config_reload_failed") != std::string::npos;
  }
  CHECK_MESSAGE(reported, "a failed reload should be logged as config_reload_failed");
  CHECK_MESSAGE(p.log_text().find("sise") != std::string::npos, "the log should name the bad key");
  // The old configuration still serves: the old alias works, the new one does not exist.
  CHECK(before.value("SELECT 1") == "1");
  PgConn again(p.conninfo("badreload", "badreload_user"));
  CHECK_MESSAGE(again.ok(), "the old database alias should still work: " << again.error_text());
  auto renamed = connect_and_query(p.conninfo("renamed", "badreload_user"), "SELECT 1");
  CHECK_MESSAGE(!renamed.ok, "an alias from the rejected config must not exist");
  CHECK(renamed.error.sqlstate == "3D000");
  CHECK(p.running());
}

TEST_CASE("a changed DSN applies to the next transaction; untouched pools keep their connections") {
  ensure_database("dsn_a", "dsn_user");
  ensure_database("dsn_b", "dsn_user");
  ensure_database("dsn_other", "dsn_user");
  auto two_dbs = [](const std::string& target) {
    return reload_config("appdb", target, 2) + R"(
[databases.other]
dsn = "postgresql://127.0.0.1:)" + std::to_string(shared_cluster().port()) + R"(/dsn_other?sslmode=disable"
)";
  };
  Pgweir p(two_dbs("dsn_a"));
  PGWEIR_LOG_ON_FAILURE(p);
  PgConn app(p.conninfo("appdb", "dsn_user"));
  PgConn other(p.conninfo("other", "dsn_user"));
  REQUIRE(app.ok());
  REQUIRE(other.ok());
  CHECK(app.value("SELECT current_database()") == "dsn_a");
  auto other_pid = other.value("SELECT pg_backend_pid()");

  // A client inside a transaction finishes it on the old server.
  app.value("BEGIN");
  CHECK(app.value("SELECT current_database()") == "dsn_a");
  p.rewrite_config(two_dbs("dsn_b"));
  p.reload();
  std::this_thread::sleep_for(500ms);
  CHECK(app.value("SELECT current_database()") == "dsn_a");
  app.value("COMMIT");
  CHECK_MESSAGE(app.value("SELECT current_database()") == "dsn_b", "after COMMIT the new DSN should apply");
  CHECK_MESSAGE(other.value("SELECT pg_backend_pid()") == other_pid,
                "a pool whose settings did not change keeps its server connection");
}

}  // namespace pgweir::test
