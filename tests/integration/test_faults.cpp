// Integration tests for faults around pgweir (issue 9): PostgreSQL restarting under load, pooled backends
// terminated, an unreachable or stopped backend, a half-open link (black-holed TCP hop) and descriptor exhaustion.
#include "common.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <future>
#include <mutex>
#include <regex>
#include <sstream>
#include <thread>

namespace pgweir::test {
namespace {

using Clock = std::chrono::steady_clock;

const std::string k_db = "faultdb";
const std::string k_user = "fault_user";

void ensure_database() {
  auto& pg = shared_cluster();
  if (pg.exec("SELECT count(*) FROM pg_roles WHERE rolname = '" + k_user + "'") == "0")
    pg.exec("CREATE ROLE " + k_user + " LOGIN");
  if (pg.exec("SELECT count(*) FROM pg_database WHERE datname = '" + k_db + "'") == "0")
    pg.exec("CREATE DATABASE " + k_db + " OWNER " + k_user);
}

// One alias `db` whose server is `dsn`; `extra_pool` and `extra_server` are appended to [pool] and [server].
std::string fault_config(const std::string& db, const std::string& dsn, int size, const std::string& extra_pool = "",
                         const std::string& extra_server = "") {
  return R"(
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
mode = "transaction"
size = )" + std::to_string(size) + R"(
max_overflow = 0
timeout = "30s"
)" + extra_pool + R"(

[metrics]
listen = ""

[databases.)" + db + R"(]
dsn = ")" + dsn + R"("
)";
}

int backends_of(const std::string& user) {
  return std::stoi(
      shared_cluster().exec("SELECT count(*) FROM pg_stat_activity WHERE usename = '" + user + "'"));
}

// Polls `pred` every 50 ms until it holds or `timeout` passes.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return pred();
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// A query that gives up after `timeout` instead of hanging with a stuck proxy (the connection is then unusable).
QueryResult timed_query(PgConn& conn, const std::string& sql, std::chrono::milliseconds timeout) {
  QueryResult out;
  PGconn* c = conn.raw();
  if (c == nullptr || !PQsendQuery(c, sql.c_str())) {
    out.error = Error{"", c ? PQerrorMessage(c) : "not connected: " + conn.error_text()};
    return out;
  }
  auto deadline = Clock::now() + timeout;
  bool have_result = false;
  for (;;) {
    while (!PQisBusy(c)) {
      PGresult* res = PQgetResult(c);
      if (res == nullptr) {
        if (!have_result) out.error = Error{"", PQerrorMessage(c)};
        return out;
      }
      have_result = true;
      auto status = PQresultStatus(res);
      if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
        out.ok = true;
        out.rows.clear();
        for (int r = 0; r < PQntuples(res); ++r) {
          auto& row = out.rows.emplace_back();
          for (int col = 0; col < PQnfields(res); ++col) row.emplace_back(PQgetvalue(res, r, col));
        }
      } else {
        out.ok = false;
        const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        const char* primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        out.error = Error{state ? state : "", primary ? primary : PQerrorMessage(c)};
      }
      PQclear(res);
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      out.ok = false;
      out.error = Error{"", "harness: no answer within " + std::to_string(timeout.count()) + " ms (hung)"};
      return out;
    }
    pollfd p{PQsocket(c), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 200))) > 0 && !PQconsumeInput(c)) {
      out.ok = false;
      out.error = Error{"", PQerrorMessage(c)};
      return out;
    }
  }
}

// Connect (bounded by `timeout`) and run `sql` (bounded by `timeout`).
QueryResult bounded_connect_and_query(const std::string& conninfo, const std::string& sql,
                                      std::chrono::seconds timeout) {
  PgConn c(conninfo, timeout);
  if (!c.ok()) {
    QueryResult out;
    out.error = c.error();
    return out;
  }
  return timed_query(c, sql, timeout);
}

struct PgbenchOutcome {
  int exit_code = -1;
  std::string output;
  long failed = -1;
  long processed = -1;
};

PgbenchOutcome pgbench(int port, std::vector<std::string> args) {
  std::vector<std::string> cmd{pg_bin("pgbench"), "-n", "-h", "127.0.0.1", "-p", std::to_string(port), "-U", k_user};
  cmd.insert(cmd.end(), args.begin(), args.end());
  cmd.push_back(k_db);
  auto r = run(cmd, {}, 120s);
  PgbenchOutcome o;
  o.exit_code = r.exit_code;
  o.output = r.output;
  std::smatch m;
  if (std::regex_search(r.output, m, std::regex(R"(number of failed transactions: (\d+))"))) o.failed = std::stol(m[1]);
  if (std::regex_search(r.output, m, std::regex(R"(number of transactions actually processed: (\d+))")))
    o.processed = std::stol(m[1]);
  return o;
}

// Starts the shared cluster again when a test that stopped it leaves early.
struct ClusterRestarter {
  ~ClusterRestarter() {
    try {
      shared_cluster().start();
    } catch (...) {
      // Later tests report the cluster being down; a destructor does not throw.
    }
  }
};

// A listening TCP socket on 127.0.0.1 with a kernel-chosen port.
int listen_loopback(int& port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 64) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::string err = std::strerror(errno);
    ::close(fd);
    throw std::runtime_error("cannot listen on 127.0.0.1: " + err);
  }
  port = ntohs(addr.sin_port);
  return fd;
}

// A non-blocking connect to 127.0.0.1:port that waits at most `timeout`; -1 if it did not complete.
int connect_within(int port, std::chrono::milliseconds timeout) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return fd;
  if (errno != EINPROGRESS) {
    ::close(fd);
    return -1;
  }
  pollfd p{fd, POLLOUT, 0};
  int err = 0;
  socklen_t len = sizeof err;
  if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1 ||
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// A TCP hop 127.0.0.1:port() -> 127.0.0.1:target that copies both ways, and on black_hole() stops copying
// and reading on every link it has so far while keeping their sockets open: to both ends the link looks
// alive (the kernel still ACKs) but nothing ever arrives. Links accepted afterwards work normally.
class Forwarder {
 public:
  explicit Forwarder(int target) : target_(target) {
    listen_fd_ = listen_loopback(port_);
    thread_ = std::thread([this] { loop(); });
  }
  ~Forwarder() {
    stop_ = true;
    thread_.join();
    for (auto& l : links_) {
      ::close(l.client);
      ::close(l.server);
    }
    ::close(listen_fd_);
  }
  Forwarder(const Forwarder&) = delete;
  Forwarder& operator=(const Forwarder&) = delete;

  int port() const { return port_; }
  int accepted() const { return accepted_; }
  void black_hole() {
    std::lock_guard lock(mutex_);
    for (auto& l : links_) l.frozen = true;
  }

 private:
  struct Link {
    int client = -1;
    int server = -1;
    bool frozen = false;
    bool closed = false;
  };

  void loop() {
    while (!stop_) {
      std::vector<pollfd> fds{{listen_fd_, POLLIN, 0}};
      std::vector<std::size_t> owner{0};
      {
        std::lock_guard lock(mutex_);
        for (std::size_t i = 0; i < links_.size(); ++i) {
          if (links_[i].frozen || links_[i].closed) continue;
          fds.push_back({links_[i].client, POLLIN, 0});
          owner.push_back(i);
          fds.push_back({links_[i].server, POLLIN, 0});
          owner.push_back(i);
        }
      }
      if (::poll(fds.data(), fds.size(), 100) <= 0) continue;
      std::lock_guard lock(mutex_);
      if (fds[0].revents & POLLIN) accept_one();
      for (std::size_t k = 1; k < fds.size(); ++k) {
        if (fds[k].revents == 0) continue;
        auto& l = links_[owner[k]];
        if (l.frozen || l.closed) continue;
        int from = fds[k].fd;
        int to = from == l.client ? l.server : l.client;
        char buf[65536];
        auto n = ::read(from, buf, sizeof buf);
        if (n <= 0 || !write_all(to, buf, static_cast<std::size_t>(n))) {
          ::shutdown(l.client, SHUT_RDWR);
          ::shutdown(l.server, SHUT_RDWR);
          l.closed = true;
        }
      }
    }
  }

  void accept_one() {
    int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) return;
    int s = connect_within(target_, 5000ms);
    if (s < 0) {
      ::close(c);
      return;
    }
    int flags = ::fcntl(s, F_GETFL);
    ::fcntl(s, F_SETFL, flags & ~O_NONBLOCK);
    links_.push_back(Link{c, s, false, false});
    ++accepted_;
  }

  static bool write_all(int fd, const char* p, std::size_t n) {
    while (n > 0) {
      auto w = ::write(fd, p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return false;
      p += w;
      n -= static_cast<std::size_t>(w);
    }
    return true;
  }

  int target_;
  int port_ = 0;
  int listen_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::mutex mutex_;
  std::vector<Link> links_;
  std::thread thread_;
};

// The PID of the process whose command line names `needle` (pgweir's config path), or -1.
pid_t pid_with_arg(const std::string& needle) {
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return -1;
  pid_t found = -1;
  while (auto* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in("/proc/" + name + "/cmdline", std::ios::binary);
    std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    if (cmdline.find(needle) != std::string::npos && cmdline.find("pgweir") != std::string::npos) {
      found = std::stoi(name);
      break;
    }
  }
  ::closedir(d);
  return found;
}

// utime + stime of a whole process, in seconds.
double cpu_seconds(pid_t pid) {
  std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  auto close_paren = stat.rfind(')');
  if (close_paren == std::string::npos) return -1;
  std::istringstream rest(stat.substr(close_paren + 2));
  std::vector<std::string> fields;
  for (std::string f; rest >> f;) fields.push_back(f);
  // After "pid (comm) ": state is field 3, utime field 14, stime field 15.
  if (fields.size() < 13) return -1;
  return static_cast<double>(std::stoll(fields[11]) + std::stoll(fields[12])) /
         static_cast<double>(::sysconf(_SC_CLK_TCK));
}

int open_descriptors(pid_t pid) {
  DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
  if (d == nullptr) return -1;
  int n = 0;
  while (auto* e = ::readdir(d)) n += e->d_name[0] != '.';
  ::closedir(d);
  return n;
}

}  // namespace

TEST_CASE("PostgreSQL restarting under pgbench load: pgweir survives and the next run is clean") {
  auto& pg = shared_cluster();
  ClusterRestarter restarter;
  ensure_database();
  auto init = run({pg_bin("pgbench"), "-i", "-q", "-s", "1", "-h", "127.0.0.1", "-p", std::to_string(pg.port()), "-U",
                   k_user, k_db});
  REQUIRE_MESSAGE(init.exit_code == 0, "pgbench -i failed:\n" << init.output);
  Pgweir p(with_cluster(fault_config(k_db, "postgresql://127.0.0.1:@PGPORT@/" + k_db + "?sslmode=disable", 5,
                                     "connect_timeout = \"5s\"\n")));
  PGWEIR_LOG_ON_FAILURE(p);
  int pg_port = pg.port();

  auto first = std::async(std::launch::async,
                          [&] { return pgbench(p.port(), {"-S", "-M", "simple", "-c", "10", "-j", "2", "-T", "12"}); });
  std::this_thread::sleep_for(3s);
  pg.restart();  // pg_ctl stop -m fast, then start: backends are terminated mid-transaction
  REQUIRE_MESSAGE(pg.port() == pg_port, "the cluster came back on port " << pg.port() << ", expected " << pg_port
                                                                         << " (pgweir's dsn names the old one)");
  auto o1 = first.get();
  INFO("first pgbench run (during the restart), exit " << o1.exit_code << ":\n" << o1.output);
  CHECK_MESSAGE(p.running(), "expected pgweir still running after the PostgreSQL restart, but it exited");

  auto o2 = pgbench(p.port(), {"-S", "-M", "simple", "-c", "10", "-j", "2", "-T", "5"});
  INFO("second pgbench run (after the restart):\n" << o2.output);
  CHECK_MESSAGE(o2.exit_code == 0, "expected pgbench exit 0 after the restart, got " << o2.exit_code);
  CHECK_MESSAGE(o2.failed == 0, "expected 0 failed transactions after the restart, got " << o2.failed);
  CHECK_MESSAGE(o2.processed > 0, "expected transactions processed after the restart, got " << o2.processed);
  CHECK_MESSAGE(p.running(), "expected pgweir running at the end, but it exited");
}

TEST_CASE("pooled idle server connections killed with pg_terminate_backend are replaced transparently") {
  auto& pg = shared_cluster();
  ensure_database();
  Pgweir p(with_cluster(fault_config(k_db, "postgresql://127.0.0.1:@PGPORT@/" + k_db + "?sslmode=disable", 3)));
  PGWEIR_LOG_ON_FAILURE(p);

  std::vector<PgConn> clients;
  for (int i = 0; i < 3; ++i) {
    clients.emplace_back(p.conninfo(k_db, k_user), 10s);
    REQUIRE_MESSAGE(clients.back().ok(), "client " << i << " could not connect: " << clients.back().error_text());
  }
  // Three open transactions at once hold three server connections; committing leaves all three idle in the pool.
  for (auto& c : clients) {
    auto r = timed_query(c, "BEGIN; SELECT 1", 10s);
    REQUIRE_MESSAGE(r.ok, "BEGIN; SELECT 1 failed: " << r.error.sqlstate << " " << r.error.message);
  }
  for (auto& c : clients) {
    auto r = timed_query(c, "COMMIT", 10s);
    REQUIRE_MESSAGE(r.ok, "COMMIT failed: " << r.error.sqlstate << " " << r.error.message);
  }
  int before = backends_of(k_user);
  CHECK_MESSAGE(before == 3, "expected 3 pooled server connections before terminating them, got " << before);

  auto killed = pg.exec("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = '" + k_user + "'");
  CHECK_MESSAGE(killed == std::to_string(before), "expected to terminate " << before << " backends, terminated " << killed);
  bool gone = eventually([] { return backends_of(k_user) == 0; }, 10s);
  REQUIRE_MESSAGE(gone, "expected the terminated backends to exit within 10 s; still " << backends_of(k_user));
  // pgweir peeks at a connection only once it has been idle a moment (limits::k_idle_check_after, 5 ms);
  // pooled connections are normally idle far longer than that before a backend dies.
  std::this_thread::sleep_for(500ms);

  for (std::size_t i = 0; i < clients.size(); ++i) {
    auto r = timed_query(clients[i], "SELECT 41 + 1", 15s);
    CHECK_MESSAGE(r.ok, "client " << i << ": expected the query after pg_terminate_backend to succeed, got "
                                  << r.error.sqlstate << " " << r.error.message);
    if (r.ok) CHECK_MESSAGE(r.value() == "42", "client " << i << ": expected 42, got " << r.value());
  }
  int after = backends_of(k_user);
  CHECK_MESSAGE(after >= 1, "expected new server connections after the queries, got " << after);
  CHECK_MESSAGE(after <= 3, "expected at most pool size 3 server connections, got " << after);
  CHECK(p.running());
}

TEST_CASE("an unreachable or stopped backend fails clients fast, and service resumes when it is back") {
  auto& pg = shared_cluster();
  ClusterRestarter restarter;
  ensure_database();
  int closed_port = free_port();  // nothing listens here
  Pgweir p(with_cluster(fault_config("gone", "postgresql://127.0.0.1:" + std::to_string(closed_port) +
                                                 "/gone?sslmode=disable",
                                     2, "connect_timeout = \"2s\"\n") +
                        "\n[databases." + k_db + "]\ndsn = \"postgresql://127.0.0.1:@PGPORT@/" + k_db +
                        "?sslmode=disable\"\n"));
  PGWEIR_LOG_ON_FAILURE(p);
  const double k_fast = 2.0 + 3.0;  // connect_timeout + slack

  for (int i = 0; i < 5; ++i) {
    auto start = Clock::now();
    auto r = bounded_connect_and_query(p.conninfo("gone", k_user), "SELECT 1", 20s);
    double took = seconds_since(start);
    CAPTURE(i);
    CHECK_MESSAGE(!r.ok, "expected an error from a database whose server port is closed, got success");
    CHECK_MESSAGE(r.error.sqlstate == "08006",
                  "expected SQLSTATE 08006, got '" << r.error.sqlstate << "' " << r.error.message);
    CHECK_MESSAGE(took < k_fast, "expected the error within " << k_fast << " s, took " << took << " s");
  }

  // A server that was fine, then stops: its pooled connection is dead and new ones are refused.
  auto ok = bounded_connect_and_query(p.conninfo(k_db, k_user), "SELECT 1", 20s);
  REQUIRE_MESSAGE(ok.ok, "expected the live database to work first, got " << ok.error.sqlstate << " " << ok.error.message);
  int pg_port = pg.port();
  pg.stop();
  for (int i = 0; i < 3; ++i) {
    auto start = Clock::now();
    auto r = bounded_connect_and_query(p.conninfo(k_db, k_user), "SELECT 1", 20s);
    double took = seconds_since(start);
    CAPTURE(i);
    CHECK_MESSAGE(!r.ok, "expected an error while PostgreSQL is stopped, got success");
    CHECK_MESSAGE(!r.error.message.empty(), "expected an error message while PostgreSQL is stopped");
    CHECK_MESSAGE(took < k_fast, "expected the error within " << k_fast << " s, took " << took << " s ("
                                                              << r.error.sqlstate << " " << r.error.message << ")");
  }
  pg.start();
  REQUIRE_MESSAGE(pg.port() == pg_port, "the cluster came back on port " << pg.port() << ", expected " << pg_port);
  QueryResult last;
  auto start = Clock::now();
  bool back = eventually(
      [&] {
        last = bounded_connect_and_query(p.conninfo(k_db, k_user), "SELECT 1", 5s);
        return last.ok;
      },
      10s);
  CHECK_MESSAGE(back, "expected clients to succeed within 10 s of PostgreSQL starting again; last error after "
                          << seconds_since(start) << " s: " << last.error.sqlstate << " " << last.error.message);
  CHECK(p.running());
}

TEST_CASE("a black-holed server link is caught by pre_ping and replaced through a new connection") {
  auto& pg = shared_cluster();
  ensure_database();
  Forwarder hop(pg.port());
  Pgweir p(fault_config(k_db, "postgresql://127.0.0.1:" + std::to_string(hop.port()) + "/" + k_db + "?sslmode=disable",
                        1, "pre_ping = \"1s\"\nconnect_timeout = \"3s\"\n"));
  PGWEIR_LOG_ON_FAILURE(p);

  PgConn c(p.conninfo(k_db, k_user), 10s);
  REQUIRE_MESSAGE(c.ok(), "could not connect through pgweir: " << c.error_text());
  auto r1 = timed_query(c, "SELECT 1", 10s);
  REQUIRE_MESSAGE(r1.ok, "expected the first query through the hop to succeed, got " << r1.error.sqlstate << " "
                                                                                       << r1.error.message);
  int links_before = hop.accepted();
  REQUIRE_MESSAGE(links_before >= 1, "expected the hop to have carried a server connection, saw " << links_before);

  hop.black_hole();
  std::this_thread::sleep_for(2s);  // longer than pre_ping: the idle server connection is checked before use

  auto start = Clock::now();
  auto r2 = timed_query(c, "SELECT 2", 20s);
  double took = seconds_since(start);
  CHECK_MESSAGE(r2.ok, "expected the query after the black hole to succeed on a new server connection, got "
                           << r2.error.sqlstate << " " << r2.error.message << " after " << took << " s");
  if (r2.ok) CHECK_MESSAGE(r2.value() == "2", "expected 2, got " << r2.value());
  CHECK_MESSAGE(took < 10.0, "expected an answer within ~10 s (pre_ping timeout 3 s + a new connection), took " << took
                                                                                                             << " s");
  CHECK_MESSAGE(hop.accepted() > links_before, "expected the hop to see a new server connection; it accepted "
                                                   << hop.accepted() << " in all, " << links_before << " before");
  CHECK(p.running());
}

TEST_CASE("descriptor exhaustion: pgweir backs off instead of spinning, logs accept_failed, and recovers") {
  ensure_database();
  Pgweir p(with_cluster(fault_config(k_db, "postgresql://127.0.0.1:@PGPORT@/" + k_db + "?sslmode=disable", 2, "",
                                     "client_login_timeout = \"60s\"\n")));
  PGWEIR_LOG_ON_FAILURE(p);
  auto warm = bounded_connect_and_query(p.conninfo(k_db, k_user), "SELECT 1", 20s);
  REQUIRE_MESSAGE(warm.ok, "expected a query to work before the limit is lowered, got " << warm.error.sqlstate << " "
                                                                                       << warm.error.message);

  pid_t pid = pid_with_arg(p.config_path());
  REQUIRE_MESSAGE(pid > 0, "could not find pgweir's PID by its config path " << p.config_path());
  int open_now = open_descriptors(pid);
  REQUIRE_MESSAGE(open_now > 0, "could not count pgweir's descriptors in /proc/" << pid << "/fd");
  // Room for a handful of clients, then EMFILE on accept.
  rlimit limit{};
  limit.rlim_cur = limit.rlim_max = static_cast<rlim_t>(open_now + 4);
  REQUIRE_MESSAGE(::prlimit(pid, RLIMIT_NOFILE, &limit, nullptr) == 0,
                  "prlimit(" << pid << ", NOFILE, " << open_now + 4 << ") failed: " << std::strerror(errno));

  // The kernel completes connections into the listen backlog even while pgweir cannot accept them.
  std::vector<int> raw;
  struct Closer {
    std::vector<int>& fds;
    ~Closer() {
      for (int fd : fds) ::close(fd);
    }
  } closer{raw};
  for (int i = 0; i < 40; ++i) {
    int fd = connect_within(p.port(), 1000ms);
    if (fd < 0) break;
    raw.push_back(fd);
  }
  CHECK_MESSAGE(raw.size() >= 8, "expected at least 8 raw connections (accepted or queued), got " << raw.size());

  bool logged = eventually([&] { return p.log_text().find("accept_failed") != std::string::npos; }, 10s);
  CHECK_MESSAGE(logged, "expected accept_failed in pgweir's log while out of descriptors");

  double cpu_before = cpu_seconds(pid);
  std::this_thread::sleep_for(3s);
  double cpu_used = cpu_seconds(pid) - cpu_before;
  CHECK_MESSAGE(cpu_before >= 0, "could not read /proc/" << pid << "/stat");
  CHECK_MESSAGE(cpu_used < 1.5, "expected pgweir to back off while out of descriptors (< 1.5 CPU s over 3 s), used "
                                    << cpu_used << " s");
  CHECK(p.running());

  for (int fd : raw) ::close(fd);
  raw.clear();
  QueryResult last;
  bool recovered = eventually(
      [&] {
        last = bounded_connect_and_query(p.conninfo(k_db, k_user), "SELECT 1", 5s);
        return last.ok;
      },
      20s);
  CHECK_MESSAGE(recovered, "expected a normal client to connect within 20 s after the raw connections closed; last: "
                               << last.error.sqlstate << " " << last.error.message);
}

}  // namespace pgweir::test
