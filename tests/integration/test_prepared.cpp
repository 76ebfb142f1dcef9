// Integration tests for named prepared statements and session state in transaction mode (issue 7): pgbench
// -M prepared, libpq PQprepare from many clients, psycopg3 prepare=True, LRU eviction, DEALLOCATE/DISCARD, and
// each kind of session state pinned, counted and reset before the next client.
#include "common.hpp"

#include <libpq-fe.h>

#include <atomic>
#include <fstream>
#include <regex>
#include <thread>

namespace pgweir::test {
namespace {

std::string prepared_config(const std::string& db, int size, const std::string& extra_pool = "",
                            const std::string& timeout = "60s") {
  return with_cluster(R"(
[server]
listen = ["127.0.0.1:@PORT@"]
workers = 2
shutdown_timeout = "5s"

[tls]
mode = "disable"

[auth]
method = "trust"

[pool]
mode = "transaction"
size = )" + std::to_string(size) + R"(
max_overflow = 0
timeout = ")" + timeout + R"("
)" + extra_pool + R"(

[metrics]
listen = ""

[databases.)" + db + R"(]
dsn = "postgresql://127.0.0.1:@PGPORT@/)" + db + R"(?sslmode=disable"
)");
}

long failed_transactions(const std::string& output) {
  std::smatch m;
  if (!std::regex_search(output, m, std::regex(R"(number of failed transactions: (\d+))"))) return -1;
  return std::stol(m[1]);
}

// PQexecPrepared returning the first value, or "ERROR <sqlstate>".
std::string exec_prepared(PGconn* c, const char* name, const std::string& param) {
  const char* values[] = {param.c_str()};
  PGresult* r = PQexecPrepared(c, name, 1, values, nullptr, nullptr, 0);
  std::string out;
  if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
    out = PQgetvalue(r, 0, 0);
  } else {
    const char* st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    out = std::string("ERROR ") + (st ? st : "?") + " " + PQresultErrorMessage(r);
  }
  PQclear(r);
  return out;
}

bool prepare(PGconn* c, const char* name, const std::string& sql, int nparams) {
  PGresult* r = PQprepare(c, name, sql.c_str(), nparams, nullptr);
  bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  PQclear(r);
  return ok;
}

}  // namespace

TEST_CASE("pgbench -M prepared in transaction mode: 50 clients on a pool of 5, no failures") {
  auto& pg = shared_cluster();
  ensure_database("prepbench", "prep_user");
  auto init = run({pg_bin("pgbench"), "-i", "-q", "-s", "1", "-h", "127.0.0.1", "-p", std::to_string(pg.port()), "-U",
                   "prep_user", "prepbench"});
  REQUIRE_MESSAGE(init.exit_code == 0, init.output);
  Pgweir p(prepared_config("prepbench", 5));
  PGWEIR_LOG_ON_FAILURE(p);
  // -S: each statement its own transaction. The read-write script holds a server across BEGIN…END, and pgbench
  // prepares with a blocking PQprepare, so it runs one thread per client (-j 50) to keep a thread waiting for a
  // server from stalling the other clients of that thread.
  const std::vector<std::vector<std::string>> runs = {{"-S", "-c", "50", "-j", "2"}, {"-c", "50", "-j", "50"}};
  for (const auto& args : runs) {
    std::vector<std::string> cmd{pg_bin("pgbench"), "-n", "-M", "prepared", "-T", "5", "-h", "127.0.0.1",
                                 "-p", std::to_string(p.port()), "-U", "prep_user"};
    cmd.insert(cmd.end(), args.begin(), args.end());
    cmd.push_back("prepbench");
    auto r = run(cmd, {}, 120s);
    INFO(describe(cmd) << "\n" << r.output);
    CHECK(r.exit_code == 0);
    CHECK(failed_transactions(r.output) == 0);
    CHECK(r.output.find("number of transactions actually processed: 0") == std::string::npos);
  }
}

TEST_CASE("libpq PQprepare/PQexecPrepared from many clients sharing a small pool") {
  ensure_database("prepdb", "prep_user");
  Pgweir p(prepared_config("prepdb", 3));
  PGWEIR_LOG_ON_FAILURE(p);
  std::atomic<int> wrong{0};
  std::string first_wrong;
  std::mutex mu;
  {
    std::vector<std::jthread> clients;
    for (int t = 0; t < 20; ++t) {
      clients.emplace_back([&, t] {
        PgConn c(p.conninfo("prepdb", "prep_user"));
        if (!c.ok()) {
          ++wrong;
          return;
        }
        // The same client name, a different statement per client: names must not collide on shared servers.
        if (!prepare(c.raw(), "q", "SELECT $1::int + " + std::to_string(t * 1000), 1)) {
          ++wrong;
          return;
        }
        for (int i = 0; i < 50; ++i) {
          auto got = exec_prepared(c.raw(), "q", std::to_string(i));
          if (got != std::to_string(t * 1000 + i)) {
            ++wrong;
            std::lock_guard lock(mu);
            if (first_wrong.empty()) first_wrong = got;
          }
        }
      });
    }
  }
  CHECK_MESSAGE(wrong == 0, wrong.load() << " wrong results; first: " << first_wrong);
}

TEST_CASE("LRU eviction beyond max_prepared_statements, DEALLOCATE and DISCARD ALL") {
  ensure_database("prepdb", "prep_user");
  Pgweir p(prepared_config("prepdb", 1, "max_prepared_statements = 2"));
  PGWEIR_LOG_ON_FAILURE(p);
  PgConn c(p.conninfo("prepdb", "prep_user"));
  REQUIRE(c.ok());
  const char* names[] = {"s0", "s1", "s2", "s3", "s4"};
  for (int i = 0; i < 5; ++i) REQUIRE(prepare(c.raw(), names[i], "SELECT $1::int * " + std::to_string(i + 1), 1));
  for (int round = 0; round < 3; ++round)
    for (int i = 0; i < 5; ++i) CHECK(exec_prepared(c.raw(), names[i], "10") == std::to_string(10 * (i + 1)));
  // The server never holds more than max_prepared_statements of pgweir's statements.
  auto held = c.value("SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'pgweir_%'");
  CHECK_MESSAGE(std::stoi(held) <= 2, held << " statements prepared on the server");

  CHECK(c.exec("DEALLOCATE s1").ok);
  auto gone = exec_prepared(c.raw(), "s1", "1");
  CHECK_MESSAGE(gone.rfind("ERROR 26000", 0) == 0, "a deallocated statement must be unknown: " << gone);
  CHECK(exec_prepared(c.raw(), "s2", "2") == "6");
  CHECK(c.exec("DISCARD ALL").ok);
  CHECK(exec_prepared(c.raw(), "s2", "2").rfind("ERROR 26000", 0) == 0);
  REQUIRE(prepare(c.raw(), "s2", "SELECT $1::int + 1", 1));
  CHECK(exec_prepared(c.raw(), "s2", "2") == "3");
  // An unknown name is reported by PostgreSQL with the client's own name.
  auto unknown = exec_prepared(c.raw(), "nope", "1");
  CHECK(unknown.find("nope") != std::string::npos);
  // A bad statement fails at prepare and leaves the connection usable.
  CHECK_FALSE(prepare(c.raw(), "bad", "SELEC 1", 0));
  CHECK(c.value("SELECT 'fine'") == "fine");
}

TEST_CASE("psycopg3 with prepare=True through transaction pooling") {
  // Debian's python3-psycopg belongs to the system interpreter, whatever python3 comes first on PATH.
  const std::string python = "/usr/bin/python3";
  if (run({python, "-c", "import psycopg"}).exit_code != 0) {
    MESSAGE("python3-psycopg is not installed: skipped");
    return;
  }
  ensure_database("prepdb", "prep_user");
  Pgweir p(prepared_config("prepdb", 2));
  PGWEIR_LOG_ON_FAILURE(p);
  std::string script = R"PY(
import sys, threading, psycopg
dsn = sys.argv[1]
errors = []
def worker(k):
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            for i in range(40):
                row = conn.execute("SELECT %s::int + %s::int", (i, k), prepare=True).fetchone()
                if row[0] != i + k:
                    errors.append(f"client {k}: {row[0]} != {i + k}")
                with conn.transaction():
                    conn.execute("SELECT %s::text", (str(i),), prepare=True).fetchone()
    except Exception as e:
        errors.append(f"client {k}: {e!r}")
threads = [threading.Thread(target=worker, args=(k,)) for k in range(10)]
[t.start() for t in threads]
[t.join() for t in threads]
print("\n".join(errors) if errors else "ok")
sys.exit(1 if errors else 0)
)PY";
  std::string path = p.dir() + "/psycopg_test.py";
  std::ofstream(path) << script;
  auto r = run({python, path, "host=127.0.0.1 port=" + std::to_string(p.port()) + " dbname=prepdb user=prep_user"},
               {}, 120s);
  INFO(r.output);
  CHECK(r.exit_code == 0);
}

TEST_CASE("session state pins the client, is counted, and never reaches the next client") {
  auto& pg = shared_cluster();
  ensure_database("statedb", "state_user");
  pg.exec("GRANT CREATE, TEMPORARY ON DATABASE statedb TO state_user");
  if (pg.exec("SELECT count(*) FROM pg_roles WHERE rolname = 'state_other'") == "0") pg.exec("CREATE ROLE state_other");
  pg.exec("GRANT state_other TO state_user");
  Pgweir p(prepared_config("statedb", 1, "", "2s"));
  PGWEIR_LOG_ON_FAILURE(p);
  PgConn direct(pg.conninfo("statedb", "state_user"));
  const auto default_work_mem = direct.value("SHOW work_mem");

  struct Kind {
    const char* reason;
    std::vector<std::string> sql;
  };
  const Kind kinds[] = {
      {"set", {"SET work_mem = '77MB'"}},
      {"listen", {"LISTEN pgweir_test_channel"}},
      {"prepare", {"PREPARE sqlprep AS SELECT 1"}},
      {"temp_table", {"CREATE TEMP TABLE pinned_tmp (a int)"}},
      {"advisory_lock", {"SELECT pg_advisory_lock(4242)"}},
      {"hold_cursor", {"BEGIN", "DECLARE held CURSOR WITH HOLD FOR SELECT 1", "COMMIT"}},
      {"role", {"SET ROLE state_other"}},
  };
  for (const auto& kind : kinds) {
    CAPTURE(kind.reason);
    {
      PgConn a(p.conninfo("statedb", "state_user"));
      REQUIRE(a.ok());
      for (const auto& sql : kind.sql) REQUIRE_MESSAGE(a.exec(sql).ok, sql);
      auto pid = a.value("SELECT pg_backend_pid()");
      // Pinned: the only server stays with A between its transactions, so B cannot get it.
      auto b = connect_and_query(p.conninfo("statedb", "state_user"), "SELECT 1");
      CHECK_MESSAGE(!b.ok, "B got the server A's session state is on");
      CHECK(a.value("SELECT pg_backend_pid()") == pid);
    }
    // After A leaves, the server is reset before the next client gets it.
    PgConn next(p.conninfo("statedb", "state_user"));
    REQUIRE(next.ok());
    CHECK(next.value("SHOW work_mem") == default_work_mem);
    CHECK(next.value("SELECT count(*) FROM pg_listening_channels()") == "0");
    CHECK(next.value("SELECT count(*) FROM pg_prepared_statements WHERE name = 'sqlprep'") == "0");
    CHECK(next.value("SELECT count(*) FROM pg_class WHERE relname = 'pinned_tmp' AND relpersistence = 't'") == "0");
    CHECK(next.value("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()") == "0");
    CHECK(next.value("SELECT count(*) FROM pg_cursors") == "0");
    CHECK(next.value("SELECT current_user") == "state_user");
    CHECK_MESSAGE(p.log_text().find(std::string("client_pinned")) != std::string::npos, "no client_pinned log line");
    CHECK_MESSAGE(p.log_text().find(std::string("reason=") + kind.reason) != std::string::npos,
                  "the pin should be logged with reason " << kind.reason);
  }
  // SET of a parameter pgweir re-applies does not pin.
  PgConn c(p.conninfo("statedb", "state_user"));
  c.value("SET TimeZone = 'UTC'");
  auto other = connect_and_query(p.conninfo("statedb", "state_user"), "SELECT 1");
  CHECK_MESSAGE(other.ok, "a re-appliable SET must not pin: " << other.error.message);
}

TEST_CASE("session_state = error refuses such statements with 0A000 and keeps serving") {
  ensure_database("statedb", "state_user");
  Pgweir p(prepared_config("statedb", 1, "session_state = \"error\""));
  PGWEIR_LOG_ON_FAILURE(p);
  PgConn a(p.conninfo("statedb", "state_user"));
  REQUIRE(a.ok());
  auto r = a.exec("LISTEN refused_channel");
  CHECK_FALSE(r.ok);
  CHECK(r.error.sqlstate == "0A000");
  CHECK_MESSAGE(r.error.message.find("session state") != std::string::npos, r.error.message);
  CHECK(a.value("SELECT count(*) FROM pg_listening_channels()") == "0");
  // The server was not kept: another client gets it right away.
  PgConn b(p.conninfo("statedb", "state_user"));
  CHECK(b.value("SELECT 2") == "2");
  CHECK(a.value("SELECT 3") == "3");
}

}  // namespace pgweir::test
