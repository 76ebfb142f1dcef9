// The systemd notify protocol as systemd sees it: a real pgweir process started with NOTIFY_SOCKET and WATCHDOG_USEC
// pointing at a datagram socket this test owns, driven through start, SIGHUP and SIGTERM.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// 200 ms, so pgweir must send WATCHDOG=1 every 100 ms.
constexpr long k_watchdog_usec = 200'000;

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/pgweir-notify-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// The receiving end of $NOTIFY_SOCKET.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    REQUIRE(path.size() < sizeof addr.sun_path);
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  }
  ~NotifySocket() { ::close(fd_); }

  // The next datagram, or nullopt after `timeout`.
  std::optional<std::string> receive(std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return std::nullopt;
    char buffer[4096];
    ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
    if (n < 0) return std::nullopt;
    return std::string(buffer, static_cast<std::size_t>(n));
  }

  // Reads datagrams until one contains `line` as a whole line; everything read is appended to `seen`.
  std::optional<std::string> wait_for(std::string_view line, std::chrono::milliseconds timeout,
                                      std::vector<std::string>& seen) {
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      auto message = receive(std::max(left, 1ms));
      if (!message) break;
      seen.push_back(*message);
      if (has_line(*message, line)) return message;
    }
    return std::nullopt;
  }

  static bool has_line(const std::string& message, std::string_view line) {
    std::istringstream in(message);
    for (std::string l; std::getline(in, l);)
      if (l == line) return true;
    return false;
  }

 private:
  int fd_ = -1;
};

// pgweir as a child process; SIGKILLed if the test ends before it exits.
class Daemon {
 public:
  Daemon(const std::string& config, const std::string& notify_socket, const std::string& log) {
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::setenv("NOTIFY_SOCKET", notify_socket.c_str(), 1);
      ::setenv("WATCHDOG_USEC", std::to_string(k_watchdog_usec).c_str(), 1);
      ::unsetenv("WATCHDOG_PID");
      std::FILE* out = std::fopen(log.c_str(), "w");
      if (out) {
        ::dup2(::fileno(out), 1);
        ::dup2(::fileno(out), 2);
      }
      ::execl(PGWEIR_BINARY, PGWEIR_BINARY, "-c", config.c_str(), static_cast<char*>(nullptr));
      std::perror("exec " PGWEIR_BINARY);
      ::_exit(127);
    }
  }
  ~Daemon() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  void signal(int sig) { REQUIRE(::kill(pid_, sig) == 0); }
  // The exit status, or nullopt while it still runs at `timeout`.
  std::optional<int> wait(std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    do {
      int status = 0;
      pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(20ms);
    } while (Clock::now() < deadline);
    return std::nullopt;
  }

 private:
  pid_t pid_ = -1;
};

std::uint64_t monotonic_usec() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000ULL + static_cast<std::uint64_t>(ts.tv_nsec) / 1000;
}

std::string joined(const std::vector<std::string>& messages) {
  std::string out;
  for (const auto& m : messages) out += "[" + m + "] ";
  return out;
}

}  // namespace

TEST_CASE("pgweir speaks the sd_notify protocol: READY, WATCHDOG, RELOADING/READY on SIGHUP, STOPPING on SIGTERM") {
  TempDir dir;
  const std::string socket_path = dir.path + "/notify.sock";
  const std::string config = dir.path + "/pgweir.toml";
  const std::string log = dir.path + "/pgweir.log";
  {
    std::ofstream out(config);
    out << "[server]\nlisten = [\"127.0.0.1:" << free_port() << "\"]\nshutdown_timeout = \"5s\"\n"
        << "[tls]\nmode = \"disable\"\n"
        << "[auth]\nmethod = \"trust\"\n"
        << "[databases.appdb]\n"
        << "dsn = \"host=127.0.0.1 port=" << free_port() << " dbname=appdb sslmode=disable\"\n"
        << "[metrics]\nlisten = \"\"\n";
  }
  NotifySocket notify(socket_path);
  Daemon daemon(config, socket_path, log);
  std::vector<std::string> seen;
  INFO("pgweir log:\n" << read_file(log));

  // Start-up: READY=1 once listening.
  auto ready = notify.wait_for("READY=1", 10s, seen);
  INFO("received: " << joined(seen));
  REQUIRE_MESSAGE(ready, "no READY=1; log:\n" << read_file(log));

  // The watchdog: WATCHDOG=1 every half WATCHDOG_USEC (100 ms), so about 10 in one second.
  {
    int pings = 0;
    auto until = Clock::now() + 1s;
    while (Clock::now() < until) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
      auto message = notify.receive(std::max(left, 1ms));
      if (!message) continue;
      seen.push_back(*message);
      if (NotifySocket::has_line(*message, "WATCHDOG=1")) ++pings;
    }
    CHECK(pings >= 7);
    CHECK(pings <= 14);  // a period of WATCHDOG_USEC/2, not a busy loop
  }

  // SIGHUP: RELOADING=1 with MONOTONIC_USEC=<now>, then READY=1 again.
  const std::uint64_t before_reload = monotonic_usec();
  daemon.signal(SIGHUP);
  auto reloading = notify.wait_for("RELOADING=1", 5s, seen);
  REQUIRE_MESSAGE(reloading, "no RELOADING=1 after SIGHUP");
  auto at = reloading->find("MONOTONIC_USEC=");
  REQUIRE_MESSAGE(at != std::string::npos, "RELOADING=1 without MONOTONIC_USEC: " << *reloading);
  const std::uint64_t stamp = std::strtoull(reloading->c_str() + at + 15, nullptr, 10);
  CHECK(stamp >= before_reload);
  CHECK(stamp <= monotonic_usec());
  CHECK_MESSAGE(notify.wait_for("READY=1", 5s, seen), "no READY=1 after the reload");

  // A reload that fails validation is still bracketed, so systemd leaves the reloading state.
  {
    std::ofstream out(config, std::ios::app);
    out << "[pool]\nsize = \"lots\"\n";
  }
  daemon.signal(SIGHUP);
  CHECK_MESSAGE(notify.wait_for("RELOADING=1", 5s, seen), "no RELOADING=1 for a failing reload");
  CHECK_MESSAGE(notify.wait_for("READY=1", 5s, seen), "no READY=1 after a failed reload");

  // SIGTERM: STOPPING=1, then a clean exit.
  daemon.signal(SIGTERM);
  CHECK_MESSAGE(notify.wait_for("STOPPING=1", 5s, seen), "no STOPPING=1 after SIGTERM");
  auto status = daemon.wait(10s);
  REQUIRE_MESSAGE(status, "pgweir still running 10 s after SIGTERM");
  CHECK(*status == 0);
}
