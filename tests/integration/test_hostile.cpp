// Integration tests, issue 9 items 1 and 2: hostile clients (bad lengths, malformed startup packets, negotiation
// loops, slow and stalled logins, broken SCRAM, idle floods, memory) and hostile backends (a scripted fake server).
// Every case wants a clear error or a close within the login timeout, a living daemon that still serves a normal
// client, and no sanitizer report in pgweir's log.
#include "common.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <future>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

namespace pgweir::test {
namespace {

const std::string k_user = "hostile_user";
const std::string k_password = "hostile-secret";
constexpr auto k_close_bound = 10s;  // client_login_timeout is 2 s; this is the generous bound we assert

// PGWEIR_HOSTILE_VERBOSE=1 reports what pgweir answered to every case, also when it passes.
bool verbose() { return std::getenv("PGWEIR_HOSTILE_VERBOSE") != nullptr; }

// ---- wire bytes ----

std::string be32(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}
std::string be16(std::uint16_t v) { return {static_cast<char>(v >> 8), static_cast<char>(v)}; }

std::uint32_t get32(std::string_view b, std::size_t at) {
  return (std::uint32_t(static_cast<unsigned char>(b[at])) << 24) |
         (std::uint32_t(static_cast<unsigned char>(b[at + 1])) << 16) |
         (std::uint32_t(static_cast<unsigned char>(b[at + 2])) << 8) | std::uint32_t(static_cast<unsigned char>(b[at + 3]));
}

// A typed message: tag, int32 length (body + 4), body.
std::string message(char tag, std::string_view body) {
  return std::string(1, tag) + be32(static_cast<std::uint32_t>(body.size() + 4)) + std::string(body);
}

using Params = std::vector<std::pair<std::string, std::string>>;

// A StartupMessage for protocol 3.0; `terminator` = false drops the final zero byte.
std::string startup(const Params& params, bool terminator = true) {
  std::string body = be32(196608);
  for (const auto& [k, v] : params) body += k + '\0' + v + '\0';
  if (terminator) body += '\0';
  return be32(static_cast<std::uint32_t>(body.size() + 4)) + body;
}

std::string ssl_request() { return be32(8) + be32(80877103); }
std::string gssenc_request() { return be32(8) + be32(80877104); }

// SASLInitialResponse: mechanism, int32 length of data, data.
std::string sasl_initial(const std::string& mechanism, const std::string& data) {
  return message('p', mechanism + '\0' + be32(static_cast<std::uint32_t>(data.size())) + data);
}

std::string base64(std::string_view in) {
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    std::uint32_t n = (std::uint32_t(static_cast<unsigned char>(in[i])) << 16) |
                      (std::uint32_t(static_cast<unsigned char>(in[i + 1])) << 8) | static_cast<unsigned char>(in[i + 2]);
    out += k[(n >> 18) & 63];
    out += k[(n >> 12) & 63];
    out += k[(n >> 6) & 63];
    out += k[n & 63];
  }
  if (i + 1 == in.size()) {
    std::uint32_t n = std::uint32_t(static_cast<unsigned char>(in[i])) << 16;
    out += k[(n >> 18) & 63];
    out += k[(n >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    std::uint32_t n = (std::uint32_t(static_cast<unsigned char>(in[i])) << 16) |
                      (std::uint32_t(static_cast<unsigned char>(in[i + 1])) << 8);
    out += k[(n >> 18) & 63];
    out += k[(n >> 12) & 63];
    out += k[(n >> 6) & 63];
    out += '=';
  }
  return out;
}

std::string printable(std::string_view bytes, std::size_t max = 400) {
  std::string out;
  for (std::size_t i = 0; i < bytes.size() && i < max; ++i) {
    auto c = static_cast<unsigned char>(bytes[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
  }
  if (bytes.size() > max) out += "…(" + std::to_string(bytes.size()) + " bytes)";
  return out;
}

struct Msg {
  char tag = 0;
  std::string body;
};

// Complete backend messages at the start of `bytes` (after `skip` one-byte answers such as 'N' or 'S').
std::vector<Msg> parse_messages(std::string_view bytes) {
  std::vector<Msg> out;
  std::size_t at = 0;
  while (bytes.size() - at >= 5) {
    auto len = get32(bytes, at + 1);
    if (len < 4 || bytes.size() - at - 1 < len) break;
    out.push_back({bytes[at], std::string(bytes.substr(at + 5, len - 4))});
    at += 1 + len;
  }
  return out;
}

// A field ('C' = SQLSTATE, 'M' = message) of an ErrorResponse body; "" if absent.
std::string error_field(const std::string& body, char field) {
  std::size_t at = 0;
  while (at < body.size() && body[at] != '\0') {
    char f = body[at];
    auto end = body.find('\0', at + 1);
    if (end == std::string::npos) return {};
    if (f == field) return body.substr(at + 1, end - at - 1);
    at = end + 1;
  }
  return {};
}

std::string summary(const std::vector<Msg>& msgs) {
  std::string s;
  for (const auto& m : msgs) {
    if (!s.empty()) s += ", ";
    s += m.tag;
    if (m.tag == 'E') s += "(" + error_field(m.body, 'C') + " " + error_field(m.body, 'M') + ")";
    if (m.tag == 'R' && m.body.size() >= 4) s += "(" + std::to_string(get32(m.body, 0)) + ")";
  }
  return s.empty() ? "(nothing)" : s;
}

// ---- blocking socket I/O with deadlines ----

bool write_fd(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

struct ReadResult {
  std::string bytes;
  bool closed = false;  // EOF or reset seen
};

// Reads until the peer closes or `timeout` passes.
ReadResult read_until_closed(int fd, std::chrono::milliseconds timeout) {
  ReadResult r;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[16384];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return r;
    pollfd p{fd, POLLIN, 0};
    int n = poll(&p, 1, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) return r;
    ssize_t got = recv(fd, buf, sizeof buf, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      r.closed = true;
      return r;
    }
    r.bytes.append(buf, static_cast<std::size_t>(got));
  }
}

// Reads until `done(bytes)` holds, the peer closes, or `timeout` passes.
ReadResult read_until(int fd, std::chrono::milliseconds timeout, const std::function<bool(std::string_view)>& done) {
  ReadResult r;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[16384];
  while (!done(r.bytes)) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return r;
    pollfd p{fd, POLLIN, 0};
    int n = poll(&p, 1, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) return r;
    ssize_t got = recv(fd, buf, sizeof buf, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      r.closed = true;
      return r;
    }
    r.bytes.append(buf, static_cast<std::size_t>(got));
  }
  return r;
}

// True once `bytes` holds a complete message with tag `tag`.
std::function<bool(std::string_view)> has_message(char tag) {
  return [tag](std::string_view b) {
    for (const auto& m : parse_messages(b))
      if (m.tag == tag) return true;
    return false;
  };
}

std::optional<std::string> read_exact(int fd, std::size_t n, std::chrono::milliseconds timeout) {
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (out.size() < n) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{fd, POLLIN, 0};
    int r = poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) return std::nullopt;
    std::string buf(n - out.size(), '\0');
    ssize_t got = recv(fd, buf.data(), buf.size(), 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return std::nullopt;
    out.append(buf.data(), static_cast<std::size_t>(got));
  }
  return out;
}

// ---- the daemon ----

void ensure_role() {
  auto& pg = shared_cluster();
  if (pg.exec("SELECT count(*) FROM pg_roles WHERE rolname = '" + k_user + "'") == "0")
    pg.exec("CREATE ROLE " + k_user + " LOGIN");
}

std::string real_dsn() {
  return "host=127.0.0.1 port=" + std::to_string(shared_cluster().port()) + " dbname=postgres sslmode=disable";
}

// Session pooling, client_login_timeout 2 s, connect_timeout 3 s, [databases.real] = the shared cluster.
std::string config(const std::string& tls = "mode = \"disable\"\n", const std::string& auth = "method = \"trust\"\n",
                   const std::string& more_databases = "") {
  return with_cluster(R"(
[server]
listen = ["127.0.0.1:@PORT@"]
workers = 2
worker_fill = 0  # clients alternate between the two workers
client_login_timeout = "2s"
shutdown_timeout = "5s"

[tls]
)" + tls + R"(
[auth]
)" + auth + R"(
[pool]
mode = "session"
size = 5
max_overflow = 0
connect_timeout = "3s"

[metrics]
listen = ""

[databases.real]
dsn = ')" + real_dsn() + R"('
)" + more_databases);
}

std::string scram_auth(const TempDir& dir) {
  auto path = dir.write("userlist.txt", "\"" + k_user + "\" \"" + k_password + "\"\n");
  return "method = \"scram-sha-256\"\nusers_file = \"" + path + "\"\n";
}

std::string outcome(const QueryResult& r) {
  if (r.ok) return "success (first value '" + r.value() + "')";
  return "error " + (r.error.sqlstate.empty() ? std::string("(no SQLSTATE)") : r.error.sqlstate) + " " +
         r.error.message;
}

std::string sanitizer_text(const std::string& log) {
  for (const char* needle : {"AddressSanitizer", "LeakSanitizer", "runtime error", "UndefinedBehaviorSanitizer"}) {
    auto at = log.find(needle);
    if (at != std::string::npos) return log.substr(at > 200 ? at - 200 : 0, 2000);
  }
  return {};
}

// pgweir is running, a normal libpq client runs a query on [databases.real], and the log has no sanitizer report.
void expect_healthy(Pgweir& p, const std::string& what, const std::string& password = "") {
  CHECK_MESSAGE(p.running(), what << ": expected pgweir to be running afterwards, it has exited");
  auto r = connect_and_query(p.conninfo("real", k_user, password), "SELECT 1");
  CHECK_MESSAGE((r.ok && r.value() == "1"),
                what << ": expected a normal client to run SELECT 1 afterwards, got " << outcome(r));
  auto san = sanitizer_text(p.log_text());
  CHECK_MESSAGE(san.empty(), what << ": expected no sanitizer report in pgweir's log, got:\n" << san);
}

// A raw connection's fate after hostile bytes: what pgweir wrote, whether and when it closed.
struct Fate {
  std::string bytes;
  std::vector<Msg> msgs;
  bool closed = false;
  std::chrono::milliseconds took{};
};

Fate await_close(TcpClient& c, std::chrono::steady_clock::time_point since) {
  auto r = read_until_closed(c.fd(), k_close_bound);
  Fate f;
  f.bytes = std::move(r.bytes);
  f.msgs = parse_messages(f.bytes);
  f.closed = r.closed;
  f.took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - since);
  return f;
}

bool got_auth_ok(const std::vector<Msg>& msgs) {
  for (const auto& m : msgs)
    if ((m.tag == 'R' && m.body.size() >= 4 && get32(m.body, 0) == 0) || m.tag == 'Z') return true;
  return false;
}

const Msg* find_error(const std::vector<Msg>& msgs) {
  for (const auto& m : msgs)
    if (m.tag == 'E') return &m;
  return nullptr;
}

// Closed within the bound, never logged in; an ErrorResponse, if any, carries an SQLSTATE.
void expect_refused(const std::string& what, const Fate& f, bool error_required,
                    std::initializer_list<std::string> sqlstates = {}) {
  INFO(what << ": pgweir wrote '" << printable(f.bytes) << "' = " << summary(f.msgs));
  CHECK_MESSAGE(f.closed, what << ": expected pgweir to close the connection within 10 s, still open after "
                               << f.took.count() << " ms");
  CHECK_MESSAGE(!got_auth_ok(f.msgs), what << ": expected no AuthenticationOk/ReadyForQuery, got " << summary(f.msgs));
  if (verbose()) MESSAGE(what << ": pgweir wrote " << summary(f.msgs) << ", closed=" << f.closed << " after " << f.took.count() << " ms");
  const Msg* e = find_error(f.msgs);
  if (error_required) CHECK_MESSAGE(e != nullptr, what << ": expected an ErrorResponse, got " << summary(f.msgs));
  if (e) {
    auto state = error_field(e->body, 'C');
    CHECK_MESSAGE(!state.empty(), what << ": expected the ErrorResponse to carry an SQLSTATE, got none");
    if (sqlstates.size() > 0) {
      bool ok = false;
      std::string want;
      for (const auto& s : sqlstates) {
        ok = ok || s == state;
        want += (want.empty() ? "" : " or ") + s;
      }
      CHECK_MESSAGE(ok, what << ": expected SQLSTATE " << want << ", got " << state << " " << error_field(e->body, 'M'));
    }
  }
}

// Sends `bytes` on a fresh connection and waits for pgweir to answer/close.
Fate send_and_wait(const Pgweir& p, std::string_view bytes) {
  TcpClient c("127.0.0.1", p.port());
  auto t0 = std::chrono::steady_clock::now();
  write_fd(c.fd(), bytes);
  return await_close(c, t0);
}

// Logs in over a raw socket with trust: StartupMessage, then reads up to ReadyForQuery.
std::unique_ptr<TcpClient> raw_login(const Pgweir& p, std::string& transcript) {
  auto c = std::make_unique<TcpClient>("127.0.0.1", p.port());
  write_fd(c->fd(), startup({{"user", k_user}, {"database", "real"}}));
  auto r = read_until(c->fd(), 10s, has_message('Z'));
  transcript = r.bytes;
  return has_message('Z')(r.bytes) ? std::move(c) : nullptr;
}

std::optional<long> vm_rss_kb(const Pgweir& p) {
  auto r = run({"pgrep", "-f", "--", p.config_path()});
  if (r.exit_code != 0) return std::nullopt;
  long pid = std::atol(r.output.c_str());
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return std::nullopt;
}

// ---- a scripted fake PostgreSQL server ----

// Listens on 127.0.0.1; runs `script(fd)` for each accepted connection on its own thread (at most 32).
class FakeBackend {
 public:
  using Script = std::function<void(int fd)>;
  explicit FakeBackend(Script script) : script_(std::move(script)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0) throw std::runtime_error("fake backend: socket failed");
    int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(listen_fd_, 64) != 0)
      throw std::runtime_error("fake backend: bind/listen failed");
    socklen_t len = sizeof addr;
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { serve(); });
  }
  ~FakeBackend() {
    stop_ = true;
    acceptor_.join();
    {
      std::lock_guard lock(mutex_);
      for (int fd : open_) ::shutdown(fd, SHUT_RDWR);  // wakes scripts blocked in poll
    }
    for (auto& t : handlers_) t.join();
    ::close(listen_fd_);
  }
  FakeBackend(const FakeBackend&) = delete;
  FakeBackend& operator=(const FakeBackend&) = delete;

  int port() const { return port_; }
  int connections() const { return connections_; }
  std::string dsn(const std::string& sslmode = "disable") const {
    return "host=127.0.0.1 port=" + std::to_string(port_) + " dbname=fake sslmode=" + sslmode;
  }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      if (handlers_.size() >= 32) {
        ::close(fd);
        continue;
      }
      ++connections_;
      {
        std::lock_guard lock(mutex_);
        open_.push_back(fd);
      }
      handlers_.emplace_back([this, fd] {
        script_(fd);
        std::lock_guard lock(mutex_);
        std::erase(open_, fd);
        ::close(fd);
      });
    }
  }

  Script script_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::mutex mutex_;
  std::vector<int> open_;
  std::vector<std::thread> handlers_;
  std::thread acceptor_;
};

// The first packet pgweir sends (StartupMessage or SSLRequest), as its body after the length word.
std::optional<std::string> read_packet(int fd) {
  auto len = read_exact(fd, 4, 10s);
  if (!len) return std::nullopt;
  auto n = get32(*len, 0);
  if (n < 8 || n > 100000) return std::nullopt;
  return read_exact(fd, n - 4, 10s);
}

std::optional<Msg> read_msg(int fd, std::chrono::milliseconds timeout = 10s) {
  auto head = read_exact(fd, 5, timeout);
  if (!head) return std::nullopt;
  auto n = get32(*head, 1);
  if (n < 4 || n > (1u << 20)) return std::nullopt;
  auto body = read_exact(fd, n - 4, timeout);
  if (!body) return std::nullopt;
  return Msg{(*head)[0], *body};
}

void drain(int fd) { read_until_closed(fd, 10s); }

std::string auth_ok() { return message('R', be32(0)); }
std::string parameter_status(const std::string& k, const std::string& v) { return message('S', k + '\0' + v + '\0'); }
std::string ready_for_query() { return message('Z', "I"); }
std::string error_response(const std::string& fields) { return message('E', fields + '\0'); }

std::string login_ok() {
  std::string s = auth_ok();
  for (const auto& [k, v] : Params{{"server_version", "15.0"},
                                   {"server_encoding", "UTF8"},
                                   {"client_encoding", "UTF8"},
                                   {"DateStyle", "ISO, MDY"},
                                   {"IntervalStyle", "postgres"},
                                   {"TimeZone", "UTC"},
                                   {"integer_datetimes", "on"},
                                   {"standard_conforming_strings", "on"},
                                   {"is_superuser", "off"},
                                   {"session_authorization", k_user},
                                   {"application_name", ""}})
    s += parameter_status(k, v);
  s += message('K', be32(4242) + be32(0x12345678));
  return s + ready_for_query();
}

std::string row_description() {
  return message('T', be16(1) + "x" + '\0' + be32(0) + be16(0) + be32(25) + be16(0xffff) + be32(0xffffffff) + be16(0));
}

// Connects a libpq client to database "fake" through pgweir and runs `sql`; must fail, and not hang.
void expect_fake_fails(Pgweir& p, const FakeBackend& fake, const std::string& what,
                       const std::string& sql = "SELECT 1") {
  auto t0 = std::chrono::steady_clock::now();
  auto r = connect_and_query(p.conninfo("fake", k_user), sql);
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  CHECK_MESSAGE(!r.ok, what << ": expected the client to get an error, got " << outcome(r));
  CHECK_MESSAGE(took < 15s, what << ": expected the error within 15 s (connect_timeout = 3s), it took " << took.count()
                                 << " ms (" << outcome(r) << ")");
  CHECK_MESSAGE(fake.connections() >= 1, what << ": expected pgweir to connect to the fake server, it never did");
  if (verbose()) MESSAGE(what << ": client got " << outcome(r) << " after " << took.count() << " ms");
}

}  // namespace

// ================================================================================================ hostile clients

TEST_CASE("hostile startup lengths: oversize, negative, short and just above the limit") {
  ensure_role();
  Pgweir p(config());
  PGWEIR_LOG_ON_FAILURE(p);
  struct Case {
    std::string what;
    std::string bytes;
  };
  std::vector<Case> cases = {
      {"startup length 0x7fffffff", be32(0x7fffffff) + be32(196608)},
      {"startup length 0xffffffff", be32(0xffffffff) + be32(196608)},
      {"startup length 0x80000000", be32(0x80000000) + be32(196608)},
      {"startup length 0", be32(0)},
      {"startup length 4", be32(4) + be32(196608)},
      {"startup length 7", be32(7) + std::string("\0\3\0", 3)},
      {"startup length 10001 (limit 10000), body follows", be32(10001) + be32(196608) + std::string(9993, 'a')},
      {"startup length 10001, nothing follows", be32(10001)},
  };
  for (const auto& c : cases) {
    CAPTURE(c.what);
    auto f = send_and_wait(p, c.bytes);
    expect_refused(c.what, f, false);
  }
  expect_healthy(p, "after hostile startup lengths");
}

TEST_CASE("hostile message lengths after a trust login: oversize, negative, short") {
  ensure_role();
  Pgweir p(config());
  PGWEIR_LOG_ON_FAILURE(p);
  struct Case {
    std::string what;
    std::string bytes;
  };
  std::vector<Case> cases = {
      {"Query length 0x7fffffff", std::string("Q") + be32(0x7fffffff) + "SELECT 1"},
      {"Query length 0xffffffff", std::string("Q") + be32(0xffffffff) + "SELECT 1"},
      {"Query length 3", std::string("Q") + be32(3) + "SELECT 1"},
      {"Query length 0", std::string("Q") + be32(0)},
      {"Sync length 2", std::string("S") + be32(2)},
      {"unknown tag 0x01 length 0x7fffffff", std::string("\x01") + be32(0x7fffffff)},
  };
  for (const auto& c : cases) {
    CAPTURE(c.what);
    std::string transcript;
    auto conn = raw_login(p, transcript);
    REQUIRE_MESSAGE(conn != nullptr, c.what << ": raw trust login expected ReadyForQuery, got '"
                                            << printable(transcript) << "' = " << summary(parse_messages(transcript)));
    auto t0 = std::chrono::steady_clock::now();
    write_fd(conn->fd(), c.bytes);
    auto r = read_until_closed(conn->fd(), k_close_bound);
    auto msgs = parse_messages(r.bytes);
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
    INFO(c.what << ": pgweir wrote '" << printable(r.bytes) << "' = " << summary(msgs));
    CHECK_MESSAGE(r.closed, c.what << ": expected pgweir to close the connection within 10 s, still open after "
                                   << took.count() << " ms");
    for (const auto& m : msgs)
      CHECK_MESSAGE(m.tag != 'C', c.what << ": expected the bad message not to run as a query, got CommandComplete");
  }
  expect_healthy(p, "after hostile message lengths after login");
}

TEST_CASE("malformed StartupMessages are refused with an error") {
  ensure_role();
  Pgweir p(config());
  PGWEIR_LOG_ON_FAILURE(p);

  Params many;
  for (int i = 0; i < 1000; ++i) many.emplace_back("p" + std::to_string(i), "v");
  many.emplace_back("user", k_user);
  Params sixty_five{{"user", k_user}, {"database", "real"}};
  for (int i = 0; i < 63; ++i) sixty_five.emplace_back("application_name" + std::to_string(i), "v");

  // A parameter name with no value: PostgreSQL says "expected terminator as last byte".
  std::string orphan_body = be32(196608) + "user" + '\0' + k_user + '\0' + "lonely" + '\0' + '\0';
  std::string orphan = be32(static_cast<std::uint32_t>(orphan_body.size() + 4)) + orphan_body;
  // Odd number of strings and no terminator at all.
  std::string orphan2_body = be32(196608) + "user" + '\0' + k_user + '\0' + "lonely";
  std::string orphan2 = be32(static_cast<std::uint32_t>(orphan2_body.size() + 4)) + orphan2_body;

  struct Case {
    std::string what;
    std::string bytes;
  };
  std::vector<Case> cases = {
      {"no user parameter", startup({{"database", "real"}})},
      {"empty user", startup({{"user", ""}, {"database", "real"}})},
      {"no parameters at all", startup({})},
      {"missing final terminator", startup({{"user", k_user}, {"database", "real"}}, false)},
      {"1000 parameters", startup(many)},
      {"65 parameters (limit 64)", startup(sixty_five)},
      {"parameter name without value", orphan},
      {"parameter name without value or terminator", orphan2},
      {"protocol version 2.0", be32(8 + 5 + 1 + static_cast<std::uint32_t>(k_user.size()) + 1) + be32(0x00020000) +
                                   "user" + '\0' + k_user + '\0' + '\0'},
      {"protocol version 4.0", be32(8 + 5 + 1 + static_cast<std::uint32_t>(k_user.size()) + 1) + be32(0x00040000) +
                                   "user" + '\0' + k_user + '\0' + '\0'},
  };
  for (const auto& c : cases) {
    CAPTURE(c.what);
    auto f = send_and_wait(p, c.bytes);
    expect_refused(c.what, f, true, {"28000", "08P01", "0A000", "42704"});
  }
  expect_healthy(p, "after malformed StartupMessages");
}

TEST_CASE("protocol 3.2 and _pq_ options get a NegotiateProtocolVersion before the login; replication is refused") {
  ensure_role();
  Pgweir p(config());
  PGWEIR_LOG_ON_FAILURE(p);
  auto startup_32 = [](const Params& params) {
    std::string body = be32(0x00030002);  // protocol 3.2
    for (const auto& [k, v] : params) body += k + '\0' + v + '\0';
    body += '\0';
    return be32(static_cast<std::uint32_t>(body.size() + 4)) + body;
  };

  // pgweir speaks 3.0 and no protocol options: it says so first (newest minor 0, the option it did not take), and
  // the login goes on to ReadyForQuery and a query.
  TcpClient c("127.0.0.1", p.port());
  write_fd(c.fd(), startup_32({{"user", k_user}, {"database", "real"}, {"_pq_.test_option", "on"}}));
  auto r = read_until(c.fd(), 10s, has_message('Z'));
  auto msgs = parse_messages(r.bytes);
  INFO("pgweir wrote '" << printable(r.bytes) << "' = " << summary(msgs));
  REQUIRE_MESSAGE(!msgs.empty(), "expected an answer to a protocol 3.2 StartupMessage");
  CHECK_MESSAGE(msgs.front().tag == 'v', "expected NegotiateProtocolVersion first, got " << summary(msgs));
  CHECK(msgs.front().body == be32(0) + be32(1) + "_pq_.test_option" + '\0');
  bool ready = got_auth_ok(msgs) && msgs.back().tag == 'Z';
  REQUIRE_MESSAGE(ready, "expected the login to reach ReadyForQuery");
  write_fd(c.fd(), message('Q', std::string("SELECT 41 + 1") + '\0'));
  auto q = read_until(c.fd(), 10s, has_message('Z'));
  CHECK_MESSAGE(q.bytes.find("42") != std::string::npos, "expected SELECT 41 + 1 to return 42, got '"
                                                              << printable(q.bytes) << "'");

  // Replication connections are refused with 08P01, after the NegotiateProtocolVersion when one is due.
  auto f = send_and_wait(p, startup({{"user", k_user}, {"database", "real"}, {"replication", "database"}}));
  expect_refused("replication=database", f, true, {"08P01"});
  auto g = send_and_wait(p, startup_32({{"user", k_user}, {"replication", "true"}}));
  expect_refused("protocol 3.2, replication=true", g, true, {"08P01"});
  CHECK_MESSAGE((!g.msgs.empty() && g.msgs.front().tag == 'v'),
                "expected NegotiateProtocolVersion before the refusal, got " << summary(g.msgs));
  // replication=false is an ordinary connection.
  TcpClient plain("127.0.0.1", p.port());
  write_fd(plain.fd(), startup({{"user", k_user}, {"database", "real"}, {"replication", "false"}}));
  CHECK(has_message('Z')(read_until(plain.fd(), 10s, has_message('Z')).bytes));
  expect_healthy(p, "after protocol 3.2 and replication StartupMessages");
}

TEST_CASE("endless SSLRequest and GSSENCRequest loops get a bounded number of answers, then a close") {
  ensure_role();
  Pgweir p(config());
  PGWEIR_LOG_ON_FAILURE(p);
  for (const std::string kind : {"SSLRequest", "GSSENCRequest", "alternating"}) {
    CAPTURE(kind);
    TcpClient c("127.0.0.1", p.port());
    auto t0 = std::chrono::steady_clock::now();
    int answers = 0;
    bool closed = false;
    std::string other;
    for (int i = 0; i < 100 && !closed; ++i) {
      bool ssl = kind == "SSLRequest" || (kind == "alternating" && i % 2 == 0);
      if (!write_fd(c.fd(), ssl ? ssl_request() : gssenc_request())) {
        closed = true;
        break;
      }
      auto r = read_until(c.fd(), 5s, [](std::string_view b) { return !b.empty(); });
      if (r.bytes == "N") {
        ++answers;
      } else {
        other += r.bytes;
        auto rest = read_until_closed(c.fd(), k_close_bound);
        other += rest.bytes;
        closed = r.closed || rest.closed;
        break;
      }
      if (r.closed) closed = true;
    }
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
    INFO(kind << ": 'N' answers " << answers << ", then '" << printable(other) << "' = " << summary(parse_messages(other)));
    if (verbose()) MESSAGE(kind << ": " << answers << " 'N' answers, then " << summary(parse_messages(other)) << ", closed=" << closed);
    CHECK_MESSAGE(answers >= 1, kind << ": expected the first request to be answered 'N', got '" << printable(other) << "'");
    CHECK_MESSAGE(answers <= 10, kind << ": expected at most 10 'N' answers on one connection, got " << answers);
    CHECK_MESSAGE(closed, kind << ": expected pgweir to close the connection, still open after " << took.count() << " ms");
    CHECK_MESSAGE(took < 20s, kind << ": expected the loop to end within 20 s, took " << took.count() << " ms");
  }
  expect_healthy(p, "after SSLRequest/GSSENCRequest loops");
}

TEST_CASE("TLS enabled: plaintext bytes after SSLRequest in the same packet, and a stalled TLS handshake") {
  ensure_role();
  TempDir pki("pgweir-hostile-pki");
  auto gen = run({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", pki.file("key.pem"), "-out",
                  pki.file("cert.pem"), "-days", "2", "-subj", "/CN=localhost", "-addext",
                  "subjectAltName=DNS:localhost,IP:127.0.0.1"});
  REQUIRE_MESSAGE(gen.exit_code == 0, "openssl req failed:\n" << gen.output);
  std::string tls = "mode = \"prefer\"\ncert_file = \"" + pki.file("cert.pem") + "\"\nkey_file = \"" +
                    pki.file("key.pem") + "\"\n";
  Pgweir p(config(tls));
  PGWEIR_LOG_ON_FAILURE(p);

  for (const std::string& tail : {std::string("hello, this is plaintext"),
                                  startup({{"user", k_user}, {"database", "real"}}),
                                  std::string(5000, 'x')}) {
    CAPTURE(printable(tail, 40));
    auto f = send_and_wait(p, ssl_request() + tail);
    INFO("pgweir wrote '" << printable(f.bytes) << "'");
    CHECK_MESSAGE(f.closed, "plaintext after SSLRequest: expected pgweir to close within 10 s, still open after "
                                << f.took.count() << " ms");
    std::string_view rest = f.bytes;
    if (!rest.empty() && (rest[0] == 'S' || rest[0] == 'N')) rest.remove_prefix(1);
    CHECK_MESSAGE(!got_auth_ok(parse_messages(rest)),
                  "plaintext after SSLRequest: expected no login, got " << summary(parse_messages(rest)));
  }

  {
    TcpClient c("127.0.0.1", p.port());
    auto t0 = std::chrono::steady_clock::now();
    write_fd(c.fd(), ssl_request());
    auto s = read_until(c.fd(), 5s, [](std::string_view b) { return !b.empty(); });
    CHECK_MESSAGE(s.bytes == "S", "stalled TLS handshake: expected 'S' to the SSLRequest, got '" << printable(s.bytes) << "'");
    auto f = await_close(c, t0);
    CHECK_MESSAGE(f.closed, "stalled TLS handshake: expected pgweir to close within 10 s (login timeout 2 s), still open after "
                                << f.took.count() << " ms");
  }
  {
    // A ClientHello cut short: the handshake starts, then the client stops.
    TcpClient c("127.0.0.1", p.port());
    auto t0 = std::chrono::steady_clock::now();
    write_fd(c.fd(), ssl_request());
    auto s = read_until(c.fd(), 5s, [](std::string_view b) { return !b.empty(); });
    REQUIRE(s.bytes == "S");
    write_fd(c.fd(), std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11));
    auto f = await_close(c, t0);
    CHECK_MESSAGE(f.closed, "truncated ClientHello: expected pgweir to close within 10 s, still open after "
                                << f.took.count() << " ms");
  }
  {
    // Garbage in place of a ClientHello.
    TcpClient c("127.0.0.1", p.port());
    auto t0 = std::chrono::steady_clock::now();
    write_fd(c.fd(), ssl_request());
    auto s = read_until(c.fd(), 5s, [](std::string_view b) { return !b.empty(); });
    REQUIRE(s.bytes == "S");
    write_fd(c.fd(), startup({{"user", k_user}, {"database", "real"}}));
    auto f = await_close(c, t0);
    CHECK_MESSAGE(f.closed, "plaintext instead of a ClientHello: expected pgweir to close within 10 s, still open after "
                                << f.took.count() << " ms");
    CHECK_MESSAGE(!got_auth_ok(f.msgs), "plaintext instead of a ClientHello: expected no login, got " << summary(f.msgs));
  }
  expect_healthy(p, "after TLS injection and stalled handshakes");
  auto r = connect_and_query(p.conninfo("real", k_user, "", "sslmode=require"), "SELECT 1");
  CHECK_MESSAGE(r.ok, "a TLS client afterwards: expected SELECT 1 to succeed, got " << outcome(r));
}

TEST_CASE("a client sending its startup one byte per 0.5 s is closed by the 2 s login timeout") {
  ensure_role();
  Pgweir p(config());
  PGWEIR_LOG_ON_FAILURE(p);
  TcpClient c("127.0.0.1", p.port());
  auto bytes = startup({{"user", k_user}, {"database", "real"}, {"application_name", "slowloris"}});
  auto t0 = std::chrono::steady_clock::now();
  bool closed = false;
  std::string got;
  for (std::size_t i = 0; i < bytes.size() && !closed; ++i) {
    if (!write_fd(c.fd(), bytes.substr(i, 1))) {
      closed = true;
      break;
    }
    auto r = read_until(c.fd(), 500ms, [](std::string_view) { return false; });
    got += r.bytes;
    closed = r.closed;
    if (std::chrono::steady_clock::now() - t0 > k_close_bound) break;
  }
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  CHECK_MESSAGE(closed, "slow startup (" << bytes.size() << " bytes at 2 bytes/s): expected a close within 10 s, "
                                        << "still open after " << took.count() << " ms; got '" << printable(got) << "'");
  CHECK_MESSAGE(!got_auth_ok(parse_messages(got)), "slow startup: expected no login, got " << summary(parse_messages(got)));
  expect_healthy(p, "after a slow startup");
}

TEST_CASE("SCRAM: an abandoned exchange is closed by the login timeout; broken messages get 28P01/08P01") {
  ensure_role();
  TempDir files("pgweir-hostile-users");
  Pgweir p(config("mode = \"disable\"\n", scram_auth(files)));
  PGWEIR_LOG_ON_FAILURE(p);

  // Opens a connection and reads up to AuthenticationSASL.
  auto begin = [&](std::string& transcript) {
    auto c = std::make_unique<TcpClient>("127.0.0.1", p.port());
    write_fd(c->fd(), startup({{"user", k_user}, {"database", "real"}}));
    auto r = read_until(c->fd(), 10s, has_message('R'));
    transcript = r.bytes;
    auto msgs = parse_messages(r.bytes);
    bool sasl = !msgs.empty() && msgs[0].tag == 'R' && msgs[0].body.size() >= 4 && get32(msgs[0].body, 0) == 10;
    return sasl ? std::move(c) : nullptr;
  };

  {
    std::string t;
    auto c = begin(t);
    REQUIRE_MESSAGE(c != nullptr, "expected AuthenticationSASL, got '" << printable(t) << "'");
    auto f = await_close(*c, std::chrono::steady_clock::now());
    CHECK_MESSAGE(f.closed, "abandoned SCRAM after AuthenticationSASL: expected a close within 10 s, still open after "
                                << f.took.count() << " ms");
  }
  {
    std::string t;
    auto c = begin(t);
    REQUIRE(c != nullptr);
    write_fd(c->fd(), sasl_initial("SCRAM-SHA-256", "n,,n=,r=abandonedabandonedabandon"));
    auto f = await_close(*c, std::chrono::steady_clock::now());
    CHECK_MESSAGE(f.closed, "abandoned SCRAM after server-first: expected a close within 10 s, still open after "
                                << f.took.count() << " ms");
    CHECK_MESSAGE(!got_auth_ok(f.msgs), "abandoned SCRAM: expected no login, got " << summary(f.msgs));
  }

  const std::string client_nonce = "rOprNGfwEbeRWgbNEkqO";
  const std::string good_proof = base64(std::string(32, '\x01'));
  struct Case {
    std::string what;
    std::string first;                                           // SASLInitialResponse
    std::function<std::string(const std::string&)> final_from;  // server-first → SASLResponse; null: none
  };
  auto final_msg = [](const std::string& s) { return message('p', s); };
  auto nonce_of = [](const std::string& server_first) {
    auto at = server_first.find("r=");
    if (at == std::string::npos) return std::string();
    return server_first.substr(at + 2, server_first.find(',', at) - at - 2);
  };
  std::vector<Case> cases = {
      {"wrong gs2 header 'x,,'", sasl_initial("SCRAM-SHA-256", "x,,n=,r=" + client_nonce), nullptr},
      {"gs2 header 'p=tls-server-end-point' without TLS",
       sasl_initial("SCRAM-SHA-256", "p=tls-server-end-point,,n=,r=" + client_nonce), nullptr},
      {"client-first without nonce", sasl_initial("SCRAM-SHA-256", "n,,n="), nullptr},
      {"mechanism SCRAM-SHA-1", sasl_initial("SCRAM-SHA-1", "n,,n=,r=" + client_nonce), nullptr},
      {"SASLInitialResponse data length 0x7fffffff",
       message('p', std::string("SCRAM-SHA-256") + '\0' + be32(0x7fffffff) + "n,,n=,r=x"), nullptr},
      {"SASLInitialResponse data length 0xfffffffe",
       message('p', std::string("SCRAM-SHA-256") + '\0' + be32(0xfffffffe) + "n,,n=,r=x"), nullptr},
      {"nonce mismatch in client-final", sasl_initial("SCRAM-SHA-256", "n,,n=,r=" + client_nonce),
       [&](const std::string&) { return final_msg("c=biws,r=" + client_nonce + "WRONG,p=" + good_proof); }},
      {"bad base64 in proof", sasl_initial("SCRAM-SHA-256", "n,,n=,r=" + client_nonce),
       [&](const std::string& sf) { return final_msg("c=biws,r=" + nonce_of(sf) + ",p=!!!not*base64!!!"); }},
      {"proof of 16 bytes", sasl_initial("SCRAM-SHA-256", "n,,n=,r=" + client_nonce),
       [&](const std::string& sf) {
         return final_msg("c=biws,r=" + nonce_of(sf) + ",p=" + base64(std::string(16, '\x02')));
       }},
      {"proof of 1000 bytes", sasl_initial("SCRAM-SHA-256", "n,,n=,r=" + client_nonce),
       [&](const std::string& sf) {
         return final_msg("c=biws,r=" + nonce_of(sf) + ",p=" + base64(std::string(1000, '\x02')));
       }},
      {"wrong channel binding c=", sasl_initial("SCRAM-SHA-256", "n,,n=,r=" + client_nonce),
       [&](const std::string& sf) { return final_msg("c=eSws,r=" + nonce_of(sf) + ",p=" + good_proof); }},
      {"client-final without proof", sasl_initial("SCRAM-SHA-256", "n,,n=,r=" + client_nonce),
       [&](const std::string& sf) { return final_msg("c=biws,r=" + nonce_of(sf)); }},
      {"wrong proof of the right length", sasl_initial("SCRAM-SHA-256", "n,,n=,r=" + client_nonce),
       [&](const std::string& sf) { return final_msg("c=biws,r=" + nonce_of(sf) + ",p=" + good_proof); }},
      {"client-final length 0x7fffffff", sasl_initial("SCRAM-SHA-256", "n,,n=,r=" + client_nonce),
       [&](const std::string&) { return std::string("p") + be32(0x7fffffff) + "c=biws"; }},
      {"client-final length 0xffffffff", sasl_initial("SCRAM-SHA-256", "n,,n=,r=" + client_nonce),
       [&](const std::string&) { return std::string("p") + be32(0xffffffff) + "c=biws"; }},
      {"client-final length 3", sasl_initial("SCRAM-SHA-256", "n,,n=,r=" + client_nonce),
       [&](const std::string&) { return std::string("p") + be32(3); }},
  };
  for (const auto& c : cases) {
    CAPTURE(c.what);
    std::string t;
    auto conn = begin(t);
    REQUIRE_MESSAGE(conn != nullptr, c.what << ": expected AuthenticationSASL, got '" << printable(t) << "'");
    auto t0 = std::chrono::steady_clock::now();
    write_fd(conn->fd(), c.first);
    if (c.final_from) {
      auto r = read_until(conn->fd(), 10s, has_message('R'));
      auto msgs = parse_messages(r.bytes);
      bool cont = !msgs.empty() && msgs[0].tag == 'R' && msgs[0].body.size() >= 4 && get32(msgs[0].body, 0) == 11;
      REQUIRE_MESSAGE(cont, c.what << ": expected AuthenticationSASLContinue, got '" << printable(r.bytes) << "'");
      write_fd(conn->fd(), c.final_from(msgs[0].body.substr(4)));
    }
    auto f = await_close(*conn, t0);
    bool length_case = c.what.find("length") != std::string::npos;
    // A bad length may be answered by a plain close; everything else must end with an ErrorResponse.
    expect_refused(c.what, f, !length_case, {"28P01", "08P01"});
    if (!length_case && !f.msgs.empty())
      CHECK_MESSAGE(f.msgs.back().tag == 'E', c.what << ": expected the last message to be an ErrorResponse, got "
                                                     << summary(f.msgs));
  }
  expect_healthy(p, "after broken SCRAM exchanges", k_password);
}

TEST_CASE("200 concurrent idle raw connections do not stop a normal client") {
  ensure_role();
  Pgweir p(config());
  PGWEIR_LOG_ON_FAILURE(p);
  std::vector<std::unique_ptr<TcpClient>> idle;
  for (int i = 0; i < 200; ++i) idle.push_back(std::make_unique<TcpClient>("127.0.0.1", p.port()));
  auto r = connect_and_query(p.conninfo("real", k_user), "SELECT 1");
  CHECK_MESSAGE(r.ok, "with 200 idle raw connections open: expected SELECT 1 to succeed, got " << outcome(r));
  // The login timeout (2 s) then closes all of them.
  int still_open = 0;
  for (auto& c : idle)
    if (!c->wait_closed(k_close_bound)) ++still_open;
  CHECK_MESSAGE(still_open == 0, "expected all 200 idle connections closed by the 2 s login timeout, " << still_open
                                                                                                    << " still open");
  expect_healthy(p, "after 200 idle connections");
}

TEST_CASE("memory stays bounded over 500 malformed-startup connections") {
  ensure_role();
  Pgweir p(config());
  PGWEIR_LOG_ON_FAILURE(p);
  std::vector<std::string> bad = {
      be32(0x7fffffff) + be32(196608),
      be32(0xffffffff),
      be32(4),
      startup({{"database", "real"}}),
      startup({{"user", k_user}}, false),
      be32(9000) + be32(196608) + std::string(8992, 'z'),  // 9000 bytes of one unterminated name
  };
  {
    Params many;
    for (int i = 0; i < 1000; ++i) many.emplace_back("p" + std::to_string(i), "v");
    bad.push_back(startup(many));
  }
  auto batch = [&](int count) {
    int open_after = 0;
    for (int done = 0; done < count; done += 50) {
      std::vector<std::unique_ptr<TcpClient>> conns;
      for (int i = 0; i < 50 && done + i < count; ++i) {
        conns.push_back(std::make_unique<TcpClient>("127.0.0.1", p.port()));
        write_fd(conns.back()->fd(), bad[static_cast<std::size_t>(done + i) % bad.size()]);
      }
      for (auto& c : conns)
        if (!c->wait_closed(k_close_bound)) ++open_after;
    }
    return open_after;
  };
  CHECK(batch(50) == 0);  // warm-up: thread pools, allocator arenas
  auto before = vm_rss_kb(p);
  REQUIRE_MESSAGE(before.has_value(), "could not read pgweir's VmRSS via pgrep -f " << p.config_path());
  int open_after = batch(500);
  auto after = vm_rss_kb(p);
  REQUIRE(after.has_value());
  if (verbose()) MESSAGE("pgweir VmRSS before " << *before << " kB, after 500 malformed startups " << *after << " kB");
  CHECK_MESSAGE(open_after == 0, "expected every malformed-startup connection closed within 10 s, " << open_after
                                                                                                     << " were not");
  CHECK_MESSAGE(*after - *before <= 50 * 1024, "expected VmRSS within +50 MB, before " << *before << " kB, after "
                                                                                        << *after << " kB");
  expect_healthy(p, "after 500 malformed startups");
}

// ================================================================================================ hostile backends

namespace {

// Config with [databases.fake] on `dsn`, password "x".
std::string fake_config(const std::string& dsn) {
  return config("mode = \"disable\"\n", "method = \"trust\"\n",
                "\n[databases.fake]\ndsn = '" + dsn + "'\npassword = \"x\"\n");
}

}  // namespace

namespace {

// A SCRAM server-first message built from the client-first's nonce by `make(client_nonce)`.
FakeBackend::Script scram_server_first(std::function<std::string(const std::string&)> make) {
  return [make](int fd) {
    if (!read_packet(fd)) return;
    write_fd(fd, message('R', be32(10) + "SCRAM-SHA-256" + '\0' + '\0'));
    auto first = read_msg(fd);
    if (!first || first->tag != 'p') return drain(fd);
    auto at = first->body.find("r=");
    std::string nonce = at == std::string::npos ? "" : first->body.substr(at + 2, first->body.find(',', at) - at - 2);
    write_fd(fd, message('R', be32(11) + make(nonce)));
    drain(fd);
  };
}

}  // namespace

TEST_CASE("hostile backend: a 1 MB SCRAM server nonce") {
  ensure_role();
  FakeBackend fake(scram_server_first([](const std::string& nonce) {
    return "r=" + nonce + std::string(1 << 20, 'A') + ",s=" + base64("saltsaltsalt") + ",i=4096";
  }));
  Pgweir p(fake_config(fake.dsn()));
  PGWEIR_LOG_ON_FAILURE(p);
  expect_fake_fails(p, fake, "1 MB SCRAM nonce");
  expect_healthy(p, "after a 1 MB SCRAM nonce");
}

TEST_CASE("hostile backend: SCRAM server-first with a nonce that does not extend ours") {
  ensure_role();
  FakeBackend fake(scram_server_first(
      [](const std::string&) { return "r=notyournonce,s=" + base64("saltsaltsalt") + ",i=4096"; }));
  Pgweir p(fake_config(fake.dsn()));
  PGWEIR_LOG_ON_FAILURE(p);
  expect_fake_fails(p, fake, "SCRAM nonce not extending the client's");
  expect_healthy(p, "after a SCRAM nonce mismatch");
}

TEST_CASE("hostile backend: SCRAM iteration count 2147483647 neither hangs the client nor blocks a worker") {
  ensure_role();
  FakeBackend fake(scram_server_first([](const std::string& nonce) {
    return "r=" + nonce + "srv,s=" + base64("saltsaltsalt") + ",i=2147483647";
  }));
  Pgweir p(fake_config(fake.dsn()));
  PGWEIR_LOG_ON_FAILURE(p);
  // The victim waits at most 20 s; meanwhile normal clients (spread over both workers) must still get in.
  auto victim = std::async(std::launch::async, [&] {
    auto t0 = std::chrono::steady_clock::now();
    auto r = connect_and_query(p.conninfo("fake", k_user, "", "connect_timeout=20"), "SELECT 1");
    return std::make_pair(r, std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0));
  });
  std::this_thread::sleep_for(1s);
  int served = 0;
  std::string failures;
  for (int i = 0; i < 4; ++i) {
    auto r = connect_and_query(p.conninfo("real", k_user, "", "connect_timeout=5"), "SELECT 1");
    if (r.ok) {
      ++served;
    } else {
      failures += "\n  " + outcome(r);
    }
  }
  auto [r, took] = victim.get();
  CHECK_MESSAGE(!r.ok, "i=2147483647: expected the client of [databases.fake] to get an error, got " << outcome(r));
  CHECK_MESSAGE(took < 15s, "i=2147483647: expected an error within 15 s (connect_timeout = 3s), waited "
                                << took.count() << " ms and got " << outcome(r));
  CHECK_MESSAGE(served == 4, "i=2147483647: while pgweir logged in to the fake server, expected 4 of 4 normal clients "
                             "(connect_timeout=5) to run SELECT 1, " << served << " did:" << failures);
  expect_healthy(p, "after SCRAM i=2147483647");
}

TEST_CASE("hostile backend: ErrorResponse without an SQLSTATE still gives the client an error") {
  ensure_role();
  FakeBackend fake([](int fd) {
    if (!read_packet(fd)) return;
    write_fd(fd, error_response(std::string("SFATAL") + '\0' + "Mfake server says no" + '\0'));
    drain(fd);
  });
  Pgweir p(fake_config(fake.dsn()));
  PGWEIR_LOG_ON_FAILURE(p);
  expect_fake_fails(p, fake, "ErrorResponse without SQLSTATE");
  expect_healthy(p, "after an ErrorResponse without SQLSTATE");
}

TEST_CASE("hostile backend: TLS negotiation with sslmode=require") {
  ensure_role();
  struct Case {
    std::string what;
    std::string reply;
  };
  std::vector<Case> cases = {
      {"bytes after 'S'", std::string("S") + "this is not a TLS ServerHello"},
      {"'S' followed by AuthenticationOk", std::string("S") + auth_ok()},
      {"ErrorResponse to SSLRequest",
       error_response(std::string("SFATAL") + '\0' + "C08P01" + '\0' + "Munsupported frontend protocol" + '\0')},
      {"'N' (TLS refused)", "N"},
      {"'X' (neither S nor N)", "X"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.what);
    std::string reply = c.reply;
    FakeBackend fake([reply](int fd) {
      auto first = read_packet(fd);
      if (!first) return;
      write_fd(fd, reply);
      drain(fd);
    });
    Pgweir p(fake_config(fake.dsn("require")));
    PGWEIR_LOG_ON_FAILURE(p);
    expect_fake_fails(p, fake, c.what);
    expect_healthy(p, "after " + c.what);
  }
}

TEST_CASE("hostile backend: unexpected message types during login") {
  ensure_role();
  std::string data_row = message('D', be16(1) + be32(3) + "abc");
  struct Case {
    std::string what;
    std::string reply;
  };
  std::vector<Case> cases = {
      {"DataRow instead of an authentication request", data_row},
      {"AuthenticationOk then DataRow", auth_ok() + data_row},
      {"AuthenticationOk then CopyInResponse", auth_ok() + message('G', std::string(1, '\0') + be16(0))},
      {"unknown authentication request 99", message('R', be32(99))},
      {"AuthenticationOk with a 0xffffffff length", std::string("R") + be32(0xffffffff) + be32(0)},
      {"message length 2", std::string("R") + be32(2)},
      {"ReadyForQuery before AuthenticationOk", ready_for_query()},
      {"2 MB ParameterStatus", auth_ok() + parameter_status("x", std::string(2 << 20, 'y'))},
  };
  for (const auto& c : cases) {
    CAPTURE(c.what);
    std::string reply = c.reply;
    FakeBackend fake([reply](int fd) {
      if (!read_packet(fd)) return;
      write_fd(fd, reply);
      drain(fd);
    });
    Pgweir p(fake_config(fake.dsn()));
    PGWEIR_LOG_ON_FAILURE(p);
    expect_fake_fails(p, fake, c.what);
    expect_healthy(p, "after " + c.what);
  }
}

TEST_CASE("hostile backend: a reset in the middle of a result; other databases keep working") {
  ensure_role();
  FakeBackend fake([](int fd) {
    if (!read_packet(fd)) return;
    write_fd(fd, login_ok());
    for (int i = 0; i < 50; ++i) {
      auto m = read_msg(fd);
      if (!m || m->tag == 'X') return;
      if (m->tag != 'Q') continue;
      if (m->body.find("hostile") != std::string::npos) {
        // RowDescription and half a DataRow that promises 100 bytes, then the connection drops.
        std::string row = std::string("D") + be32(4 + 2 + 4 + 100) + be16(1) + be32(100) + std::string(20, 'h');
        write_fd(fd, row_description() + row);
        return;
      }
      write_fd(fd, message('C', std::string("SET") + '\0') + ready_for_query());
    }
  });
  Pgweir p(fake_config(fake.dsn()));
  PGWEIR_LOG_ON_FAILURE(p);

  PgConn real(p.conninfo("real", k_user));
  REQUIRE_MESSAGE(real.ok(), "client on [databases.real]: " << real.error_text());
  PgConn victim(p.conninfo("fake", k_user));
  if (victim.ok()) {
    auto t0 = std::chrono::steady_clock::now();
    auto r = victim.exec("SELECT 'hostile'");
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
    CHECK_MESSAGE(!r.ok, "reset mid-result: expected the client's query to fail, got " << outcome(r));
    CHECK_MESSAGE(took < 15s, "reset mid-result: expected the error within 15 s, took " << took.count() << " ms");
    if (verbose()) MESSAGE("reset mid-result: client got " << outcome(r) << " after " << took.count() << " ms");
  } else {
    FAIL_CHECK("client on [databases.fake]: expected the scripted login to succeed, got " << victim.error_text());
  }
  CHECK_MESSAGE(real.value("SELECT 2") == "2", "the existing [databases.real] client stopped working");
  expect_healthy(p, "after a reset mid-result");
  // The fake works again for a fresh client up to the hostile query.
  auto again = connect_and_query(p.conninfo("fake", k_user), "SET x = 1");
  CHECK_MESSAGE(again.ok, "a fresh client on [databases.fake] after the reset: expected its SET to succeed, got "
                              << outcome(again));
}

}  // namespace pgweir::test
