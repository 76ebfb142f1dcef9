// Integration tests, SPEC §1 and §2 [server]: the command line (--check, --version), psql over TCP, unix
// socket and IPv6, client limits and login timeout, and graceful shutdown on SIGTERM.
#include "common.hpp"

#include <csignal>
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>
#include <vector>

namespace pgweir::test {
namespace {

void ensure_role(const std::string& user) {
  auto& pg = shared_cluster();
  if (pg.exec("SELECT count(*) FROM pg_roles WHERE rolname = '" + user + "'") == "0")
    pg.exec("CREATE ROLE " + user + " LOGIN");
}

// Session-mode pgweir, trust auth, [databases.appdb] = the cluster's "postgres" database.
std::string config(const std::string& server_extra = "", const std::string& auth = "method = \"trust\"",
                   const std::string& listen = "\"127.0.0.1:@PORT@\"") {
  return with_cluster(R"(
[server]
listen = [)" + listen + R"(]
shutdown_timeout = "30s"
)" + server_extra + R"(

[tls]
mode = "disable"

[auth]
)" + auth + R"(

[pool]
mode = "session"
size = 5
max_overflow = 0

[metrics]
listen = ""

[databases.appdb]
dsn = "postgresql://127.0.0.1:@PGPORT@/postgres?sslmode=disable"
)");
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

RunResult psql(const std::string& conninfo, const std::string& sql, const std::string& password) {
  return run({pg_bin("psql"), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", conninfo, "-c", sql},
             {{"PGPASSWORD", password}, {"PGSSLMODE", "disable"}}, 60s);
}

// ---- command line ----

TEST_CASE("pgweir --version exits 0 and prints the version") {
  auto r = run({pgweir_binary(), "--version"});
  CHECK_MESSAGE(r.exit_code == 0, "pgweir --version exited " << r.exit_code << ":\n" << r.output);
  CHECK_MESSAGE(r.output.find(PGWEIR_EXPECTED_VERSION) != std::string::npos,
                "pgweir --version should print " << PGWEIR_EXPECTED_VERSION << ", printed:\n" << r.output);
}

TEST_CASE("pgweir --check validates a config file") {
  TempDir dir;
  const std::string valid_text = R"([server]
listen = ["127.0.0.1:6432"]

[tls]
mode = "disable"

[auth]
method = "trust"

[pool]
mode = "session"
size = 5

[databases.appdb]
dsn = "${PGWEIR_IT_DSN:-postgresql://127.0.0.1:5432/postgres}"
)";

  SUBCASE("a valid config exits 0") {
    auto file = dir.write("valid.toml", valid_text);
    auto r = run({pgweir_binary(), "--check", "-c", file}, {}, 30s);
    CHECK_MESSAGE(r.exit_code == 0, "--check of a valid config exited " << r.exit_code << ":\n" << r.output);
  }

  SUBCASE("a mistyped key is reported at its line with a suggestion") {
    auto file = dir.write("typo.toml", R"([server]
listen = ["127.0.0.1:6432"]

[pool]
sise = 5
)");
    auto r = run({pgweir_binary(), "--check", "-c", file}, {}, 30s);
    INFO("output:\n" << r.output);
    CHECK_MESSAGE(r.exit_code == 1, "--check of a config with an unknown key: expected exit 1, got " << r.exit_code);
    CHECK_MESSAGE(std::regex_search(r.output, std::regex(std::regex_replace(file, std::regex(R"([.^$|()\[\]{}*+?\\])"),
                                                                            R"(\$&)") + R"(:5:\d+: )")),
                  "expected an error at " << file << ":5:COL: (the line of `sise`)");
    CHECK_MESSAGE(r.output.find("sise") != std::string::npos, "the message should name the unknown key `sise`");
    CHECK_MESSAGE(r.output.find("did you mean") != std::string::npos, "expected a \"did you mean\" hint");
    CHECK_MESSAGE(r.output.find("size") != std::string::npos, "the hint should suggest `size`");
  }

  SUBCASE("every error is reported, not just the first") {
    auto file = dir.write("two.toml", R"([server]
lisen = ["127.0.0.1:6432"]

[pool]
sise = 5
)");
    auto r = run({pgweir_binary(), "--check", "-c", file}, {}, 30s);
    INFO("output:\n" << r.output);
    CHECK(r.exit_code == 1);
    CHECK_MESSAGE(r.output.find(file + ":2:") != std::string::npos, "expected an error at " << file << ":2: (lisen)");
    CHECK_MESSAGE(r.output.find(file + ":5:") != std::string::npos, "expected an error at " << file << ":5: (sise)");
  }

  SUBCASE("an unset ${VAR} is an error naming the variable") {
    auto file = dir.write("unset.toml", substitute(valid_text, {{"PGWEIR_IT_DSN:-postgresql://127.0.0.1:5432/postgres",
                                                                 "PGWEIR_IT_UNSET_VARIABLE"}}));
    auto r = run({pgweir_binary(), "--check", "-c", file}, {}, 30s);
    INFO("output:\n" << r.output);
    CHECK_MESSAGE(r.exit_code == 1, "--check with an unset variable: expected exit 1, got " << r.exit_code);
    CHECK_MESSAGE(r.output.find("PGWEIR_IT_UNSET_VARIABLE") != std::string::npos, "the error should name the variable");
    CHECK_MESSAGE(r.output.find(file + ":15:") != std::string::npos, "expected the error at " << file << ":15:");
  }

  SUBCASE("a set ${VAR} is substituted") {
    auto file = dir.write("set.toml", substitute(valid_text, {{"PGWEIR_IT_DSN:-postgresql://127.0.0.1:5432/postgres",
                                                               "PGWEIR_IT_SET_VARIABLE"}}));
    auto r = run({pgweir_binary(), "--check", "-c", file},
                 {{"PGWEIR_IT_SET_VARIABLE", "postgresql://127.0.0.1:5432/postgres"}}, 30s);
    CHECK_MESSAGE(r.exit_code == 0, "--check with a set variable exited " << r.exit_code << ":\n" << r.output);
  }
}

// ---- listeners ----

TEST_CASE("psql through pgweir over TCP and the unix socket") {
  auto& pg = shared_cluster();
  pg.create_role("psql_user", "psql-pw");
  TempDir files;
  auto users = files.write("userlist.txt", "\"psql_user\" \"psql-pw\"\n");
  Pgweir p(config("unix_socket_dir = \"@DIR@\"", "method = \"scram-sha-256\"\nusers_file = \"" + users + "\""));
  PGWEIR_LOG_ON_FAILURE(p);
  auto port = std::to_string(p.port());

  auto tcp = psql("host=127.0.0.1 port=" + port + " dbname=appdb user=psql_user", "select 1", "psql-pw");
  CHECK_MESSAGE(tcp.exit_code == 0, "psql over TCP exited " << tcp.exit_code << ":\n" << tcp.output);
  CHECK_MESSAGE(trimmed(tcp.output) == "1", "psql over TCP printed '" << tcp.output << "', expected 1");

  auto unix_socket = psql("host=" + p.dir() + " port=" + port + " dbname=appdb user=psql_user",
                          "select current_user", "psql-pw");
  CHECK_MESSAGE(unix_socket.exit_code == 0, "psql over the unix socket " << p.dir() << "/.s.PGSQL." << port
                                                                         << " exited " << unix_socket.exit_code << ":\n"
                                                                         << unix_socket.output);
  CHECK_MESSAGE(trimmed(unix_socket.output) == "psql_user", "psql over the unix socket printed '" << unix_socket.output
                                                                                                  << "'");

  auto wrong = psql("host=127.0.0.1 port=" + port + " dbname=appdb user=psql_user", "select 1", "not-the-password");
  CHECK_MESSAGE(wrong.exit_code != 0, "psql with a wrong password succeeded");
}

// ---- server.io ----

// What the kernel says of pgweir's descriptors: how many are io_uring instances, and how many descriptors its epoll
// sets watch (one "tfd:" line each in the epoll descriptor's fdinfo).
struct KernelView {
  int rings = 0;
  int epoll_watched = 0;
};
KernelView kernel_view(pid_t pid) {
  namespace fs = std::filesystem;
  KernelView v;
  auto proc = "/proc/" + std::to_string(pid);
  for (const auto& entry : fs::directory_iterator(proc + "/fd")) {
    std::error_code ec;
    auto target = fs::read_symlink(entry.path(), ec).string();
    if (target == "anon_inode:[io_uring]") ++v.rings;
    if (target != "anon_inode:[eventpoll]") continue;
    std::ifstream info(proc + "/fdinfo/" + entry.path().filename().string());
    for (std::string line; std::getline(info, line);) {
      if (line.rfind("tfd:", 0) == 0) ++v.epoll_watched;
    }
  }
  return v;
}

// How server.io is set in a case below, and whether io_uring is refused to the process (a seccomp filter, as the
// default profile of a container runtime such as Docker's installs).
struct IoCase {
  const char* name;
  std::string io_line;  // "" leaves server.io at its default
  bool refused;
  bool wants_ring() const { return io_line.find("epoll") == std::string::npos; }
};

TEST_CASE("server.io: each worker has a ring by default, plain clients and servers wait there and not in epoll; "
          "with io_uring refused, pgweir says so and serves through epoll") {
  for (const IoCase& c : {IoCase{"default", "", false}, IoCase{"io_uring", "io = \"io_uring\"", false},
                          IoCase{"epoll", "io = \"epoll\"", false}, IoCase{"default, io_uring refused", "", true}}) {
    CAPTURE(c.name);
    PgweirOptions options;
    if (c.refused) options.wrapper = {PGWEIR_WITHOUT_IO_URING};
    Pgweir p(config("workers = 2\nworker_fill = 0\n" + c.io_line), options);
    PGWEIR_LOG_ON_FAILURE(p);
    auto conninfo = p.conninfo("appdb", "postgres");
    {
      PgConn first(conninfo);  // the workers are running once a client is served
      REQUIRE_MESSAGE(first.ok(), first.error_text());
      CHECK(first.value("select 1") == "1");
    }
    auto before = kernel_view(p.pid());
    auto log = p.log_text();
    bool unavailable = log.find("io_uring_unavailable") != std::string::npos;
    bool ring = c.wants_ring() && !unavailable;
    if (c.refused) {
      // Each worker tried, was refused, and said why.
      CHECK(unavailable);
      CHECK(log.find("Operation not permitted") != std::string::npos);
      CHECK(before.rings == 0);
    } else if (!c.wants_ring()) {
      CHECK_FALSE(unavailable);  // epoll does not try
      CHECK(before.rings == 0);
    } else if (unavailable) {
      // This kernel has no io_uring (or it is disabled): pgweir says so and serves through epoll.
      MESSAGE("io_uring is not available here; pgweir fell back to epoll:\n" << log);
      CHECK(before.rings == 0);
    } else {
      CHECK(before.rings == 2);
    }
    std::vector<PgConn> clients;
    for (int i = 0; i < 5; ++i) {  // the pool's size: each client holds a server (session mode)
      clients.emplace_back(conninfo);
      REQUIRE_MESSAGE(clients.back().ok(), clients.back().error_text());
      CHECK(clients.back().value("select " + std::to_string(i)) == std::to_string(i));
    }
    auto after = kernel_view(p.pid());
    if (ring) {
      CHECK_MESSAGE(after.epoll_watched == before.epoll_watched,
                    "five session clients (and their servers) added " << after.epoll_watched - before.epoll_watched
                                                                     << " descriptors to pgweir's epoll sets");
    } else {
      // Five clients (and the servers session mode opens for four of them): each is in its worker's epoll set.
      CHECK(after.epoll_watched >= before.epoll_watched + 5);
    }
    for (auto& client : clients) CHECK(client.value("select 'still here'") == "still here");
  }
}

TEST_CASE("psql through an IPv6 listener") {
  if (!has_ipv6_loopback()) {
    MESSAGE("skipped: this machine has no ::1");
    return;
  }
  ensure_role("it_user");
  PgweirOptions options;
  options.wait_host = "::1";
  Pgweir p(config("", "method = \"trust\"", "\"[::1]:@PORT@\""), options);
  PGWEIR_LOG_ON_FAILURE(p);
  auto r = psql("host=::1 port=" + std::to_string(p.port()) + " dbname=appdb user=it_user", "select 1", "");
  CHECK_MESSAGE(r.exit_code == 0, "psql over [::1] exited " << r.exit_code << ":\n" << r.output);
  CHECK_MESSAGE(trimmed(r.output) == "1", "psql over [::1] printed '" << r.output << "'");
}

// ---- limits ----

TEST_CASE("max_client_connections = 3 refuses a 4th client with 53300") {
  ensure_role("it_user");
  Pgweir p(config("max_client_connections = 3"));
  PGWEIR_LOG_ON_FAILURE(p);

  std::vector<PgConn> clients;
  for (int i = 0; i < 3; ++i) {
    clients.emplace_back(p.conninfo("appdb", "it_user"));
    REQUIRE_MESSAGE(clients.back().ok(), "client " << i + 1 << " of 3 was refused: " << clients.back().error_text());
    REQUIRE(clients.back().exec("SELECT 1").ok);
  }
  auto fourth = connect_and_query(p.conninfo("appdb", "it_user"), "SELECT 1");
  CHECK_MESSAGE(!fourth.ok, "a 4th client got in with max_client_connections = 3");
  CHECK_MESSAGE(fourth.error.sqlstate == "53300", "4th client: expected SQLSTATE 53300, got " << fourth.error.sqlstate
                                                                                            << " " << fourth.error.message);

  // Once one leaves there is room again (pgweir notices the close asynchronously: retry for a while).
  clients.front().close();
  QueryResult again;
  auto deadline = std::chrono::steady_clock::now() + 10s;
  do {
    again = connect_and_query(p.conninfo("appdb", "it_user"), "SELECT 1");
    if (!again.ok) std::this_thread::sleep_for(100ms);
  } while (!again.ok && std::chrono::steady_clock::now() < deadline);
  CHECK_MESSAGE(again.ok, "after a client left, a new one was still refused: " << again.error.sqlstate << " "
                                                                              << again.error.message);
}

TEST_CASE("client_login_timeout closes a client that never sends a startup packet") {
  ensure_role("it_user");
  Pgweir p(config("client_login_timeout = \"1s\""));
  PGWEIR_LOG_ON_FAILURE(p);

  TcpClient silent("127.0.0.1", p.port());
  CHECK_MESSAGE(silent.wait_closed(10s), "pgweir kept a silent client open for 10 s with client_login_timeout = 1s");

  auto r = connect_and_query(p.conninfo("appdb", "it_user"), "SELECT 1");
  CHECK_MESSAGE(r.ok, "a normal client after the timed-out one failed: " << r.error.sqlstate << " " << r.error.message);
}

// ---- wake-ups ----

// Wake-ups of all of the process's threads: voluntary context switches, each a sleep that something ended.
// Preemptions (nonvoluntary switches) are left out: they count how busy the rest of the machine is (a parallel
// ctest once pushed the total to 35 where the wake-ups alone are 8-10), not what wakes pgweir.
long context_switches(pid_t pid) {
  long total = 0;
  for (const auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task")) {
    std::ifstream status(task.path() / "status");
    std::string line;
    while (std::getline(status, line))
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0) total += std::stol(line.substr(line.find(':') + 1));
  }
  return total;
}

TEST_CASE("an idle daemon, and one whose only client is parked, is not woken every few milliseconds") {
  ensure_role("it_user");
  // Two workers, a transaction pool whose idle clients park after 200 ms. What may still wake the process in 3 s:
  // the control loop's janitor (every 500 ms) and one or two readiness pings to PostgreSQL (every 2 s, a connection
  // each). A worker that swept its clients every 250 ms with none to sweep, or a health thread that looked for
  // shutdown every 100 ms, adds 24 and 30 more.
  auto text = config("workers = 2\nclient_park_after = \"200ms\"");
  const auto mode = text.find("mode = \"session\"");
  REQUIRE(mode != std::string::npos);
  text.replace(mode, std::string("mode = \"session\"").size(), "mode = \"transaction\"");
  Pgweir p(text);
  PGWEIR_LOG_ON_FAILURE(p);
  constexpr long k_most = 30;
  auto switches_in = [&](std::chrono::milliseconds window) {
    long before = context_switches(p.pid());
    std::this_thread::sleep_for(window);
    return context_switches(p.pid()) - before;
  };

  std::this_thread::sleep_for(1s);  // past the start-up
  long idle = switches_in(3s);
  CHECK_MESSAGE(idle <= k_most, "an idle pgweir was switched in " << idle << " times in 3 s");

  PgConn client(p.conninfo("appdb", "it_user"));
  REQUIRE_MESSAGE(client.ok(), client.error_text());
  CHECK(client.value("SELECT 'awake'") == "awake");
  std::this_thread::sleep_for(1s);  // parked after 200 ms, at the next sweep
  long parked = switches_in(3s);
  CHECK_MESSAGE(parked <= k_most, "pgweir with one parked client was switched in " << parked << " times in 3 s");
  CHECK_MESSAGE(client.value("SELECT 'back'") == "back", "the parked client did not come back");
}

// ---- shutdown ----

TEST_CASE("SIGTERM with an idle client: the client is closed and pgweir exits 0") {
  ensure_role("it_user");
  Pgweir p(config());
  PGWEIR_LOG_ON_FAILURE(p);
  PgConn idle(p.conninfo("appdb", "it_user"));
  REQUIRE_MESSAGE(idle.ok(), idle.error_text());
  REQUIRE(idle.exec("SELECT 1").ok);

  p.signal(SIGTERM);
  // shutdown_timeout is 30s: an idle client must be closed at once, not waited for.
  auto code = p.wait(20s);
  CHECK_MESSAGE(code.has_value(), "pgweir was still running 20 s after SIGTERM with only an idle client");
  if (code) CHECK_MESSAGE(*code == 0, "pgweir exited " << *code << " after SIGTERM, expected 0");
  CHECK_MESSAGE(!idle.exec("SELECT 1").ok, "the idle client could still run a query after pgweir shut down");
}

TEST_CASE("SIGTERM with a client inside BEGIN: it may COMMIT, then is disconnected, and pgweir exits 0") {
  auto& pg = shared_cluster();
  ensure_role("it_user");
  pg.exec("DROP TABLE IF EXISTS shutdown_rows; CREATE TABLE shutdown_rows (id int); "
          "GRANT ALL ON shutdown_rows TO it_user");
  Pgweir p(config());
  PGWEIR_LOG_ON_FAILURE(p);
  PgConn client(p.conninfo("appdb", "it_user"));
  REQUIRE_MESSAGE(client.ok(), client.error_text());
  REQUIRE(client.exec("BEGIN").ok);
  REQUIRE(client.exec("INSERT INTO shutdown_rows VALUES (1)").ok);

  p.signal(SIGTERM);
  // "Stop accepting" is the sign that pgweir has begun shutting down.
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (can_connect("127.0.0.1", p.port()) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(50ms);
  CHECK_MESSAGE(!can_connect("127.0.0.1", p.port()), "pgweir still accepts connections 10 s after SIGTERM");

  auto insert = client.exec("INSERT INTO shutdown_rows VALUES (2)");
  CHECK_MESSAGE(insert.ok, "a query inside the open transaction failed after SIGTERM: " << insert.error.sqlstate << " "
                                                                                      << insert.error.message);
  auto commit = client.exec("COMMIT");
  CHECK_MESSAGE(commit.ok, "COMMIT after SIGTERM failed: " << commit.error.sqlstate << " " << commit.error.message);
  auto rows = pg.exec("SELECT count(*) FROM shutdown_rows");
  CHECK_MESSAGE(rows == "2", "expected both rows of the committed transaction in the table, found " << rows);

  bool disconnected = false;
  deadline = std::chrono::steady_clock::now() + 10s;
  while (!disconnected && std::chrono::steady_clock::now() < deadline) {
    disconnected = !client.exec("SELECT 1").ok;
    if (!disconnected) std::this_thread::sleep_for(100ms);
  }
  CHECK_MESSAGE(disconnected, "the client was still served 10 s after its transaction ended during shutdown");

  auto code = p.wait(20s);
  CHECK_MESSAGE(code.has_value(), "pgweir was still running 20 s after its last client left");
  if (code) CHECK_MESSAGE(*code == 0, "pgweir exited " << *code << " after SIGTERM, expected 0");
}

}  // namespace
}  // namespace pgweir::test
