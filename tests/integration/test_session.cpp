// Integration tests, SPEC §2 [pool] in session mode: bounded server connections under pgbench and 200
// concurrent clients, pool.timeout (53300), and the reset of a server connection between clients.
#include "common.hpp"

#include <atomic>
#include <future>
#include <mutex>
#include <regex>
#include <thread>

namespace pgweir::test {
namespace {

std::string session_config(const std::string& db, int size, const std::string& timeout,
                           const std::string& extra_pool = "") {
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
mode = "session"
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

int server_connections_of(const std::string& user) {
  return std::stoi(shared_cluster().exec("SELECT count(*) FROM pg_stat_activity WHERE usename = '" + user + "'"));
}

// Samples pg_stat_activity for `user` until `done` is set; returns the most backends seen at once.
class BackendSampler {
 public:
  explicit BackendSampler(std::string user)
      : user_(std::move(user)), thread_([this] {
          while (!done_) {
            max_ = std::max(max_.load(), server_connections_of(user_));
            samples_++;
            std::this_thread::sleep_for(10ms);
          }
        }) {}
  ~BackendSampler() { finish(); }
  int finish() {
    done_ = true;
    if (thread_.joinable()) thread_.join();
    return max_;
  }
  int samples() const { return samples_; }

 private:
  std::string user_;
  std::atomic<bool> done_{false};
  std::atomic<int> max_{0};
  std::atomic<int> samples_{0};
  std::thread thread_;
};

TEST_CASE("pgbench -C, 20 clients through a session pool of 5 (simple and extended protocol)") {
  auto& pg = shared_cluster();
  ensure_database("bench", "bench_user");
  auto init = run({pg_bin("pgbench"), "-i", "-q", "-s", "1", "-h", "127.0.0.1", "-p", std::to_string(pg.port()), "-U",
                   "bench_user", "bench"});
  REQUIRE_MESSAGE(init.exit_code == 0, "pgbench -i directly on PostgreSQL failed:\n" << init.output);

  Pgweir p(session_config("bench", 5, "30s"));
  PGWEIR_LOG_ON_FAILURE(p);

  for (const std::string protocol : {"simple", "extended"}) {
    CAPTURE(protocol);
    // -C: in session mode a client holds its server connection until it disconnects, so 20 clients share 5
    // only by reconnecting. -j 20: pgbench -C connects with a blocking call, so a pgbench thread waiting in
    // the pool queue at login would stall the other clients of that thread, which hold the servers it waits for.
    std::vector<std::string> cmd{pg_bin("pgbench"), "-n", "-S", "-M", protocol, "-C", "-c", "20", "-j", "20", "-T", "5",
                                 "-h", "127.0.0.1", "-p", std::to_string(p.port()), "-U", "bench_user", "bench"};
    BackendSampler sampler("bench_user");
    auto bench = std::async(std::launch::async, [&] { return run(cmd, {}, 90s); });
    auto result = bench.get();
    int max_backends = sampler.finish();
    INFO("command: " << describe(cmd) << "\noutput:\n" << result.output);

    CHECK_MESSAGE(result.exit_code == 0, "pgbench exited with " << result.exit_code);
    std::smatch m;
    bool has_failed_line = std::regex_search(result.output, m, std::regex(R"(number of failed transactions: (\d+))"));
    CHECK_MESSAGE(has_failed_line, "pgbench printed no 'number of failed transactions' line");
    if (has_failed_line) CHECK_MESSAGE(m[1].str() == "0", "pgbench reports " << m[1].str() << " failed transactions");
    bool has_processed =
        std::regex_search(result.output, m, std::regex(R"(number of transactions actually processed: (\d+))"));
    CHECK_MESSAGE(has_processed, "pgbench printed no 'number of transactions actually processed' line");
    if (has_processed) CHECK_MESSAGE(std::stol(m[1].str()) > 0, "pgbench processed no transactions");
    CHECK_MESSAGE(max_backends <= 5, "pool size 5 + max_overflow 0, but PostgreSQL had " << max_backends
                                                                                        << " backends of bench_user");
    CHECK_MESSAGE(max_backends >= 1, "never saw a bench_user backend in " << sampler.samples()
                                                                          << " samples of pg_stat_activity");
  }
}

TEST_CASE("pool.timeout: a client waiting longer than the timeout gets 53300 naming the pool") {
  ensure_database("pooldb", "pool_user");
  Pgweir p(session_config("pooldb", 1, "1s"));
  PGWEIR_LOG_ON_FAILURE(p);

  PgConn a(p.conninfo("pooldb", "pool_user"));
  REQUIRE_MESSAGE(a.ok(), "client A could not connect: " << a.error_text());
  REQUIRE_MESSAGE(a.exec("SELECT 1").ok, "client A could not run a query");

  auto b = connect_and_query(p.conninfo("pooldb", "pool_user"), "SELECT 1");
  CHECK_MESSAGE(!b.ok, "client B got a server connection although A holds the only one (size 1, session mode)");
  CHECK_MESSAGE(b.error.sqlstate == "53300", "client B: expected SQLSTATE 53300, got " << b.error.sqlstate << " "
                                                                                       << b.error.message);
  CHECK_MESSAGE(b.error.message.find("pooldb") != std::string::npos,
                "the 53300 message should name the database: " << b.error.message);
  CHECK_MESSAGE(b.error.message.find("pool_user") != std::string::npos,
                "the 53300 message should name the user: " << b.error.message);

  a.close();
  auto c = connect_and_query(p.conninfo("pooldb", "pool_user"), "SELECT 1");
  CHECK_MESSAGE(c.ok, "after A left, a new client was refused: " << c.error.sqlstate << " " << c.error.message);
}

TEST_CASE("200 concurrent clients share a session pool of 10") {
  ensure_database("manydb", "many_user");
  Pgweir p(session_config("manydb", 10, "60s"));
  PGWEIR_LOG_ON_FAILURE(p);

  constexpr int k_clients = 200;
  std::atomic<int> succeeded{0};
  std::mutex errors_mutex;
  std::vector<std::string> errors;
  BackendSampler sampler("many_user");
  {
    std::vector<std::jthread> clients;
    for (int i = 0; i < k_clients; ++i) {
      clients.emplace_back([&] {
        auto r = connect_and_query(p.conninfo("manydb", "many_user"), "SELECT pg_sleep(0.05), 1");
        if (r.ok && r.rows.size() == 1 && r.rows[0].size() == 2 && r.rows[0][1] == "1") {
          ++succeeded;
        } else {
          std::lock_guard lock(errors_mutex);
          errors.push_back(r.error.sqlstate + " " + r.error.message);
        }
      });
    }
  }
  int max_backends = sampler.finish();

  std::string first_errors;
  for (size_t i = 0; i < errors.size() && i < 5; ++i) first_errors += "\n  " + errors[i];
  CHECK_MESSAGE(succeeded == k_clients, succeeded.load() << " of " << k_clients << " clients succeeded; first errors:"
                                                         << first_errors);
  CHECK_MESSAGE(max_backends <= 10, "pool size 10 + max_overflow 0, but PostgreSQL had " << max_backends
                                                                                         << " backends of many_user");
  CHECK_MESSAGE(max_backends >= 1, "never saw a many_user backend in " << sampler.samples() << " samples");
}

TEST_CASE("session mode resets the server connection between clients and honours application_name") {
  auto& pg = shared_cluster();
  ensure_database("resetdb", "reset_user");
  Pgweir p(session_config("resetdb", 1, "10s"));
  PGWEIR_LOG_ON_FAILURE(p);
  auto default_timeout = PgConn(pg.conninfo("resetdb", "reset_user")).value("SHOW statement_timeout");

  PgConn a(p.conninfo("resetdb", "reset_user", "", "application_name=client_a"));
  REQUIRE_MESSAGE(a.ok(), "client A could not connect: " << a.error_text());
  a.value("SET statement_timeout = '1234ms'");
  CHECK(a.value("SHOW statement_timeout") == "1234ms");
  auto pid_a = a.value("SELECT pg_backend_pid()");
  auto name_in_activity = pg.exec("SELECT application_name FROM pg_stat_activity WHERE pid = " + pid_a);
  CHECK_MESSAGE(name_in_activity == "client_a", "pg_stat_activity.application_name of A's backend: expected client_a, got '"
                                                    << name_in_activity << "'");
  a.close();

  PgConn b(p.conninfo("resetdb", "reset_user", "", "application_name=client_b"));
  REQUIRE_MESSAGE(b.ok(), "client B could not connect: " << b.error_text());
  auto pid_b = b.value("SELECT pg_backend_pid()");
  CHECK_MESSAGE(pid_b == pid_a, "with pool size 1, B should reuse A's server connection (backend "
                                    << pid_a << "), got " << pid_b << "; A's backend is "
                                    << (pg.exec("SELECT count(*) FROM pg_stat_activity WHERE pid = " + pid_a) == "1"
                                            ? std::string("still open")
                                            : std::string("gone")));
  auto timeout_b = b.value("SHOW statement_timeout");
  CHECK_MESSAGE(timeout_b == default_timeout, "B sees statement_timeout " << timeout_b << ", expected the default "
                                                                          << default_timeout << " (reset_query not run?)");
  auto name_b = b.value("SHOW application_name");
  CHECK_MESSAGE(name_b == "client_b", "SHOW application_name for B: expected client_b, got " << name_b);
}

}  // namespace
}  // namespace pgweir::test
