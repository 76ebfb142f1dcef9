// Integration tests for named prepared statements and session state in transaction mode (issue 7): pgbench
// -M prepared, libpq PQprepare from many clients, psycopg3 prepare=True, LRU eviction, DEALLOCATE/DISCARD, plans
// gone stale after DDL (retried, or passed through inside a transaction block and in pipelines), and each kind of
// session state pinned, counted and reset before the next client.
#include "common.hpp"

#include <libpq-fe.h>

#include <atomic>
#include <fstream>
#include <regex>
#include <thread>

namespace pgweir::test {
namespace {

std::string prepared_config(const std::string& db, int size, const std::string& extra_pool = "",
                            const std::string& timeout = "60s", int metrics_port = 0) {
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
mode = "transaction"
size = )" + std::to_string(size) + R"(
max_overflow = 0
timeout = ")" + timeout + R"("
)" + extra_pool + R"(

[metrics]
listen = ")" + (metrics_port > 0 ? "127.0.0.1:" + std::to_string(metrics_port) : std::string()) + R"("

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

// One result as a test sees it: "ok <columns>x<rows>", "error <sqlstate> <message>", "aborted", "sync" or "end"
// (PQgetResult returned null).
std::string describe_result(PGresult* r) {
  if (r == nullptr) return "end";
  std::string out;
  switch (PQresultStatus(r)) {
    case PGRES_TUPLES_OK: out = "ok " + std::to_string(PQnfields(r)) + "x" + std::to_string(PQntuples(r)); break;
    case PGRES_PIPELINE_ABORTED: out = "aborted"; break;
    case PGRES_PIPELINE_SYNC: out = "sync"; break;
    case PGRES_FATAL_ERROR: {
      const char* st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
      const char* msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
      out = std::string("error ") + (st ? st : "?") + " " + (msg ? msg : "?");
      break;
    }
    default: out = PQresStatus(PQresultStatus(r)); break;
  }
  PQclear(r);
  return out;
}

std::string exec_prepared_shape(PGconn* c, const char* name) {
  return describe_result(PQexecPrepared(c, name, 0, nullptr, nullptr, nullptr, 0));
}

// Reads `n` results of a pipeline.
std::vector<std::string> pipeline_results(PGconn* c, int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back(describe_result(PQgetResult(c)));
  return out;
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : " | ") + s;
  return out;
}

// pgweir_prepared_retries_total for one pool, from /metrics (-1 if absent).
double prepared_retries(int metrics_port, const std::string& db, const std::string& user) {
  auto r = run({"curl", "-s", "--max-time", "10", "http://127.0.0.1:" + std::to_string(metrics_port) + "/metrics"});
  std::smatch m;
  std::regex line("pgweir_prepared_retries_total\\{database=\"" + db + "\",user=\"" + user + "\"\\} ([0-9.e+]+)");
  if (!std::regex_search(r.output, m, line)) return -1;
  return std::stod(m[1]);
}

constexpr const char* k_stale = "cached plan must not change result type";

// A table owned by prep_user, recreated for each test that changes it.
void fresh_table(const std::string& table) {
  PgConn owner(shared_cluster().conninfo("prepdb", "prep_user"));
  REQUIRE(owner.ok());
  REQUIRE(owner.exec("DROP TABLE IF EXISTS " + table).ok);
  REQUIRE(owner.exec("CREATE TABLE " + table + " (a int)").ok);
  REQUIRE(owner.exec("INSERT INTO " + table + " VALUES (1)").ok);
}

void alter(const std::string& sql) {
  PgConn owner(shared_cluster().conninfo("prepdb", "prep_user"));
  REQUIRE(owner.ok());
  REQUIRE_MESSAGE(owner.exec(sql).ok, sql);
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

  // Blanks before the keyword and after the statement, in any case: the tracker still sees the deallocation.
  CHECK(c.exec("\n  deallocate s1 ;").ok);
  auto gone = exec_prepared(c.raw(), "s1", "1");
  CHECK_MESSAGE(gone.rfind("ERROR 26000", 0) == 0, "a deallocated statement must be unknown: " << gone);
  CHECK(exec_prepared(c.raw(), "s2", "2") == "6");
  CHECK(c.exec("\t DISCARD ALL;").ok);
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
  // Through unnamed statements of the extended protocol, as drivers send them: a statement found harmless once is
  // remembered as such, and the next one is still looked at.
  auto unnamed = [&](const std::string& sql) {
    return describe_result(PQexecParams(a.raw(), sql.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 0));
  };
  CHECK(unnamed("SELECT 1") == "ok 1x1");
  CHECK(unnamed("SELECT 1") == "ok 1x1");
  CHECK(unnamed("LISTEN refused_channel").rfind("error 0A000", 0) == 0);
  CHECK(unnamed("SELECT 1") == "ok 1x1");
  CHECK(unnamed("LISTEN refused_channel").rfind("error 0A000", 0) == 0);
  CHECK(a.value("SELECT count(*) FROM pg_listening_channels()") == "0");
}

TEST_CASE("a plan gone stale after ALTER TABLE is prepared again and retried, on every server of the pool") {
  ensure_database("prepdb", "prep_user");
  fresh_table("heal_t");
  const int metrics_port = free_port();
  Pgweir p(prepared_config("prepdb", 2, "", "60s", metrics_port));
  PGWEIR_LOG_ON_FAILURE(p);
  std::vector<PgConn> clients;
  for (int i = 0; i < 4; ++i) {
    clients.emplace_back(p.conninfo("prepdb", "prep_user"));
    REQUIRE(clients.back().ok());
    REQUIRE(prepare(clients.back().raw(), "s", "SELECT * FROM heal_t", 0));
  }
  // Two holders in transaction blocks steer an execution to each of the pool's two servers in turn.
  PgConn h1(p.conninfo("prepdb", "prep_user")), h2(p.conninfo("prepdb", "prep_user"));
  auto on_each_server = [&](PgConn& first, PgConn& second, const std::string& expected) {
    REQUIRE(h1.exec("BEGIN").ok);
    auto pid1 = h1.value("SELECT pg_backend_pid()");
    REQUIRE(h2.exec("BEGIN").ok);
    auto pid2 = h2.value("SELECT pg_backend_pid()");
    REQUIRE(pid1 != pid2);
    REQUIRE(h1.exec("COMMIT").ok);
    CHECK(exec_prepared_shape(first.raw(), "s") == expected);  // on h1's server
    REQUIRE(h1.exec("BEGIN").ok);
    CHECK(h1.value("SELECT pg_backend_pid()") == pid1);
    REQUIRE(h2.exec("COMMIT").ok);
    CHECK(exec_prepared_shape(second.raw(), "s") == expected);  // on h2's server
    REQUIRE(h1.exec("COMMIT").ok);
  };
  on_each_server(clients[0], clients[1], "ok 1x1");  // the statement is prepared on both servers
  CHECK(prepared_retries(metrics_port, "prepdb", "prep_user") == 0);

  alter("ALTER TABLE heal_t ADD COLUMN b text DEFAULT 'x'");
  // Each server's plan is stale: the first execution there is retried, and others (sharing the server-side
  // statement) then find it fresh.
  on_each_server(clients[2], clients[3], "ok 2x1");
  for (auto& c : clients) CHECK(exec_prepared_shape(c.raw(), "s") == "ok 2x1");
  CHECK(prepared_retries(metrics_port, "prepdb", "prep_user") == 2);

  // Again with the clients running at once.
  alter("ALTER TABLE heal_t ADD COLUMN c int DEFAULT 7");
  std::atomic<int> wrong{0};
  std::mutex mu;
  std::string first_wrong;
  {
    std::vector<std::jthread> threads;
    for (auto& c : clients) {
      threads.emplace_back([&, conn = c.raw()] {
        for (int i = 0; i < 25; ++i) {
          auto got = exec_prepared_shape(conn, "s");
          if (got != "ok 3x1") {
            ++wrong;
            std::lock_guard lock(mu);
            if (first_wrong.empty()) first_wrong = got;
          }
        }
      });
    }
  }
  CHECK_MESSAGE(wrong == 0, wrong.load() << " wrong results; first: " << first_wrong);
  auto retries = prepared_retries(metrics_port, "prepdb", "prep_user");
  CHECK(retries >= 3);
  CHECK(retries <= 4);  // once per server
  CHECK(p.log_text().find("server_closed") == std::string::npos);
}

TEST_CASE("inside a transaction block the stale plan error reaches the client as PostgreSQL sent it") {
  ensure_database("prepdb", "prep_user");
  fresh_table("heal_tx");
  const int metrics_port = free_port();
  Pgweir p(prepared_config("prepdb", 1, "", "60s", metrics_port));
  PGWEIR_LOG_ON_FAILURE(p);
  PgConn c(p.conninfo("prepdb", "prep_user"));
  REQUIRE(c.ok());
  REQUIRE(prepare(c.raw(), "s", "SELECT * FROM heal_tx", 0));
  CHECK(exec_prepared_shape(c.raw(), "s") == "ok 1x1");
  alter("ALTER TABLE heal_tx ADD COLUMN b int");

  REQUIRE(c.exec("BEGIN").ok);
  PGresult* r = PQexecPrepared(c.raw(), "s", 0, nullptr, nullptr, nullptr, 0);
  CHECK(PQresultStatus(r) == PGRES_FATAL_ERROR);
  auto field = [&](int code) {
    const char* v = PQresultErrorField(r, code);
    return std::string(v ? v : "");
  };
  CHECK(field(PG_DIAG_SQLSTATE) == "0A000");
  CHECK(field(PG_DIAG_MESSAGE_PRIMARY) == k_stale);
  CHECK(field(PG_DIAG_SEVERITY_NONLOCALIZED) == "ERROR");
  CHECK(field(PG_DIAG_SOURCE_FUNCTION) == "RevalidateCachedQuery");
  PQclear(r);
  CHECK(PQtransactionStatus(c.raw()) == PQTRANS_INERROR);
  auto refused = c.exec("SELECT 1");
  CHECK(refused.error.sqlstate == "25P02");  // the client's transaction is aborted, as on a direct connection
  REQUIRE(c.exec("ROLLBACK").ok);
  CHECK(prepared_retries(metrics_port, "prepdb", "prep_user") == 0);

  // Outside the block the same statement is healed, and the client goes on.
  CHECK(exec_prepared_shape(c.raw(), "s") == "ok 2x1");
  CHECK(prepared_retries(metrics_port, "prepdb", "prep_user") == 1);
  REQUIRE(c.exec("BEGIN").ok);
  CHECK(exec_prepared_shape(c.raw(), "s") == "ok 2x1");
  REQUIRE(c.exec("COMMIT").ok);
  CHECK(c.value("SELECT 'fine'") == "fine");
}

TEST_CASE("pipelined executions of a stale statement: no result lost or reordered, the server stays clean") {
  ensure_database("prepdb", "prep_user");
  fresh_table("heal_pipe");
  const int metrics_port = free_port();
  Pgweir p(prepared_config("prepdb", 1, "", "60s", metrics_port));
  PGWEIR_LOG_ON_FAILURE(p);
  PgConn c(p.conninfo("prepdb", "prep_user"));
  REQUIRE(c.ok());
  REQUIRE(prepare(c.raw(), "s", "SELECT * FROM heal_pipe", 0));
  REQUIRE(prepare(c.raw(), "w", "SELECT $1::text, * FROM heal_pipe", 1));
  CHECK(exec_prepared_shape(c.raw(), "s") == "ok 1x1");
  const std::string aborted_pair = "error 0A000 " + std::string(k_stale);

  SUBCASE("two executions before one Sync") {
    alter("ALTER TABLE heal_pipe ADD COLUMN b int");
    REQUIRE(PQenterPipelineMode(c.raw()) == 1);
    REQUIRE(PQsendQueryPrepared(c.raw(), "s", 0, nullptr, nullptr, nullptr, 0) == 1);
    REQUIRE(PQsendQueryPrepared(c.raw(), "s", 0, nullptr, nullptr, nullptr, 0) == 1);
    REQUIRE(PQpipelineSync(c.raw()) == 1);
    auto got = pipeline_results(c.raw(), 5);
    INFO(join(got));
    // Retried: both see the new columns. Passed through: the error, then the rest of the pipeline aborted.
    bool retried = got == std::vector<std::string>{"ok 2x1", "end", "ok 2x1", "end", "sync"};
    bool passed = got == std::vector<std::string>{aborted_pair, "end", "aborted", "end", "sync"};
    CHECK((retried || passed));
    MESSAGE("one Sync: " << std::string(retried ? "retried" : "passed through"));
    REQUIRE(PQexitPipelineMode(c.raw()) == 1);
  }
  SUBCASE("two executions, each with its Sync") {
    alter("ALTER TABLE heal_pipe ADD COLUMN b int");
    REQUIRE(PQenterPipelineMode(c.raw()) == 1);
    REQUIRE(PQsendQueryPrepared(c.raw(), "s", 0, nullptr, nullptr, nullptr, 0) == 1);
    REQUIRE(PQpipelineSync(c.raw()) == 1);
    REQUIRE(PQsendQueryPrepared(c.raw(), "s", 0, nullptr, nullptr, nullptr, 0) == 1);
    REQUIRE(PQpipelineSync(c.raw()) == 1);
    auto got = pipeline_results(c.raw(), 6);
    INFO(join(got));
    // The first segment is retried only if the second had not been sent yet; the second is the last, so it is.
    CHECK((got[0] == "ok 2x1" || got[0] == aborted_pair));
    CHECK(got == std::vector<std::string>{got[0], "end", "sync", "ok 2x1", "end", "sync"});
    MESSAGE("two Syncs: first " << std::string(got[0] == "ok 2x1" ? "retried" : "passed through"));
    REQUIRE(PQexitPipelineMode(c.raw()) == 1);
  }
  SUBCASE("a segment longer than pgweir keeps is not retried") {
    alter("ALTER TABLE heal_pipe ADD COLUMN b int");
    const std::string big(600 * 1024, 'x');
    const char* values[] = {big.c_str()};
    REQUIRE(PQenterPipelineMode(c.raw()) == 1);
    REQUIRE(PQsendQueryPrepared(c.raw(), "w", 1, values, nullptr, nullptr, 0) == 1);
    REQUIRE(PQsendQueryPrepared(c.raw(), "w", 1, values, nullptr, nullptr, 0) == 1);
    REQUIRE(PQpipelineSync(c.raw()) == 1);
    auto got = pipeline_results(c.raw(), 5);
    CHECK(got == std::vector<std::string>{aborted_pair, "end", "aborted", "end", "sync"});
    REQUIRE(PQexitPipelineMode(c.raw()) == 1);
    // One such Bind fits: retried.
    CHECK(describe_result(PQexecPrepared(c.raw(), "w", 1, values, nullptr, nullptr, 0)) == "ok 3x1");
  }
  // Whatever happened, the connection and the server it used are in step.
  CHECK(exec_prepared_shape(c.raw(), "s") == "ok 2x1");
  CHECK(c.value("SELECT 'fine'") == "fine");
  PgConn other(p.conninfo("prepdb", "prep_user"));
  REQUIRE(other.ok());
  CHECK(other.value("SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'pgweir_%'") == "2");
  CHECK(prepared_retries(metrics_port, "prepdb", "prep_user") >= 1);
  CHECK(p.log_text().find("server_closed") == std::string::npos);
}

TEST_CASE("pgbench -M prepared while columns come and go: no client sees a stale plan") {
  ensure_database("prepdb", "prep_user");
  fresh_table("heal_bench");
  const int metrics_port = free_port();
  Pgweir p(prepared_config("prepdb", 3, "", "60s", metrics_port));
  PGWEIR_LOG_ON_FAILURE(p);
  const std::string script = p.dir() + "/select.sql";
  std::ofstream(script) << "SELECT * FROM heal_bench;\n";
  std::atomic<bool> done{false};
  std::atomic<int> changes{0};
  std::jthread ddl([&] {
    PgConn owner(shared_cluster().conninfo("prepdb", "prep_user"));
    while (!done) {
      bool added = owner.exec("ALTER TABLE heal_bench ADD COLUMN extra int").ok;
      std::this_thread::sleep_for(150ms);
      if (added && owner.exec("ALTER TABLE heal_bench DROP COLUMN extra").ok) ++changes;
      std::this_thread::sleep_for(150ms);
    }
  });
  std::vector<std::string> cmd{pg_bin("pgbench"), "-n", "-M", "prepared", "-T", "4", "-c", "8", "-j", "2",
                               "-f", script, "-h", "127.0.0.1", "-p", std::to_string(p.port()), "-U", "prep_user",
                               "prepdb"};
  auto r = run(cmd, {}, 120s);
  done = true;
  ddl.join();
  INFO(describe(cmd) << "\n" << r.output);
  CHECK(r.exit_code == 0);
  CHECK(failed_transactions(r.output) == 0);
  CHECK(r.output.find("cached plan") == std::string::npos);
  CHECK(changes > 3);
  CHECK(prepared_retries(metrics_port, "prepdb", "prep_user") > 0);
}

}  // namespace pgweir::test
