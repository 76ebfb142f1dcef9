// Daemon: worker threads with their io_contexts, shared listening sockets, signals (reload, graceful and
// immediate shutdown), the pool janitor, and systemd notifications.
#include "pgweir/daemon/daemon.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/signal_set.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/socket_base.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include "pgweir/client/session.hpp"
#include "pgweir/core/limits.hpp"
#include "pgweir/core/log.hpp"
#include "pgweir/router/router.hpp"
#include "notify.hpp"

namespace pgweir::daemon {
namespace {

namespace asio = boost::asio;
using Acceptor = asio::basic_socket_acceptor<asio::generic::stream_protocol>;

constexpr int k_listen_backlog = 4096;
constexpr auto k_shutdown_poll = std::chrono::milliseconds(100);

void print_errors(const std::vector<config::Diagnostic>& errors) {
  for (const auto& e : errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
}

void apply_logging(const config::Config& cfg) {
  log::Level level = log::Level::info;
  switch (cfg.log.level) {
    case config::LogLevel::error: level = log::Level::error; break;
    case config::LogLevel::warn: level = log::Level::warn; break;
    case config::LogLevel::info: level = log::Level::info; break;
    case config::LogLevel::debug: level = log::Level::debug; break;
  }
  log::configure(level, cfg.log.format == config::LogFormat::json ? log::Format::json : log::Format::text);
}

// A bound, listening socket; workers accept on duplicates of it.
struct Listener {
  int fd = -1;
  asio::generic::stream_protocol protocol{AF_INET, IPPROTO_TCP};
  std::string name;
  std::string unix_path;  // removed at exit
};

Expected<Listener> listen_tcp(const std::string& host, std::uint16_t port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string port_text = std::to_string(port);
  const char* node = host.empty() || host == "*" ? nullptr : host.c_str();
  if (int rc = ::getaddrinfo(node, port_text.c_str(), &hints, &res); rc != 0)
    return make_error("cannot resolve listen address " + host + ": " + gai_strerror(rc));
  std::string name = (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + port_text;
  std::string last = "no address";
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      last = std::strerror(errno);
      continue;
    }
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ai->ai_family == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd, k_listen_backlog) != 0) {
      last = std::strerror(errno);
      ::close(fd);
      continue;
    }
    Listener l;
    l.fd = fd;
    l.protocol = asio::generic::stream_protocol(ai->ai_family, IPPROTO_TCP);
    l.name = name;
    ::freeaddrinfo(res);
    return l;
  }
  ::freeaddrinfo(res);
  return make_error("cannot listen on " + name + ": " + last);
}

Expected<Listener> listen_unix(const std::string& dir, std::uint16_t port) {
  std::string path = dir + "/.s.PGSQL." + std::to_string(port);
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path) return make_error("unix socket path too long: " + path);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return make_error("cannot create unix socket: " + std::string(std::strerror(errno)));
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  // A socket file left by a process that is gone is replaced; one that answers is in use.
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    ::close(fd);
    return make_error("cannot listen on " + path + ": another server is listening there");
  }
  ::unlink(path.c_str());
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, k_listen_backlog) != 0) {
    std::string err = std::strerror(errno);
    ::close(fd);
    return make_error("cannot listen on " + path + ": " + err);
  }
  ::chmod(path.c_str(), 0777);
  Listener l;
  l.fd = fd;
  l.protocol = asio::generic::stream_protocol(AF_UNIX, 0);
  l.name = path;
  l.unix_path = path;
  return l;
}

struct Worker {
  asio::io_context io{1};
  std::vector<std::unique_ptr<Acceptor>> acceptors;
  std::thread thread;
};

asio::awaitable<void> accept_loop(Acceptor& acceptor, client::SessionEnv& env, std::string name) {
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer backoff(ex);
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(net::use_tuple);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      if (ec == asio::error::no_descriptors || ec.value() == ENFILE || ec == asio::error::no_buffer_space ||
          ec == asio::error::no_memory) {
        // Out of descriptors: back off instead of spinning on a listen socket that stays readable.
        log::warn("accept_failed", {{"listener", name}, {"error", ec.message()}});
        backoff.expires_after(limits::k_accept_backoff);
        co_await backoff.async_wait(net::use_tuple);
      }
      continue;
    }
    asio::co_spawn(ex, client::run_session(std::move(socket), env), asio::detached);
  }
}

class Daemon {
 public:
  Daemon(std::string path, std::shared_ptr<const router::Settings> settings)
      : path_(std::move(path)), router_(std::move(settings)), env_{router_, registry_, shutting_down_} {}

  int run();

 private:
  void reload();
  void begin_shutdown();
  void finish();
  asio::awaitable<void> janitor();
  asio::awaitable<void> watch_shutdown();

  std::string path_;
  router::Router router_;
  client::Registry registry_;
  std::atomic<bool> shutting_down_{false};
  client::SessionEnv env_;
  asio::io_context control_{1};
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<Listener> listeners_;
  int signals_seen_ = 0;
  bool stopped_ = false;
};

void Daemon::reload() {
  notify::reloading();
  auto loaded = router::load_settings(path_);
  if (!loaded.errors.empty()) {
    for (const auto& e : loaded.errors) log::error("config_reload_error", {{"error", e.to_string()}});
    log::error("config_reload_failed", {{"file", path_}, {"errors", loaded.errors.size()}});
  } else {
    // Listen addresses and worker count take effect at the next start; everything else now.
    router_.apply(loaded.settings);
    apply_logging(*loaded.settings->config);
    log::info("config_reloaded", {{"file", path_}});
  }
  notify::ready();
}

void Daemon::begin_shutdown() {
  if (shutting_down_.exchange(true)) return;
  notify::stopping();
  log::info("shutdown_started", {{"clients", registry_.size()}});
  for (auto& w : workers_) {
    asio::post(w->io, [w = w.get()] {
      for (auto& a : w->acceptors) {
        boost::system::error_code ignored;
        a->close(ignored);
      }
    });
  }
  registry_.for_each([](client::Session& s) { client::request_shutdown(s); });
  asio::co_spawn(control_, watch_shutdown(), asio::detached);
}

asio::awaitable<void> Daemon::watch_shutdown() {
  auto timeout = router_.settings()->config->server.shutdown_timeout;
  auto deadline = net::Clock::now() + (timeout.count() > 0 ? timeout : std::chrono::hours(24 * 365));
  asio::steady_timer timer(control_);
  while (registry_.size() > 0 && net::Clock::now() < deadline) {
    timer.expires_after(k_shutdown_poll);
    co_await timer.async_wait(net::use_tuple);
  }
  if (registry_.size() > 0) log::warn("shutdown_timeout", {{"clients", registry_.size()}});
  finish();
}

void Daemon::finish() {
  if (stopped_) return;
  stopped_ = true;
  for (auto& p : router_.pools()) p->close();
  for (auto& w : workers_) w->io.stop();
  control_.stop();
}

asio::awaitable<void> Daemon::janitor() {
  asio::steady_timer timer(control_);
  std::size_t next = 0;
  for (;;) {
    timer.expires_after(limits::k_janitor_period);
    auto [ec] = co_await timer.async_wait(net::use_tuple);
    if (ec || shutting_down_) co_return;
    router_.maintain(workers_[next++ % workers_.size()]->io.get_executor());
  }
}

int Daemon::run() {
  auto settings = router_.settings();
  const auto& cfg = *settings->config;
  apply_logging(cfg);

  for (const auto& entry : cfg.server.listen) {
    auto addr = config::parse_listen_address(entry);
    if (!addr) {
      std::fprintf(stderr, "pgweir: invalid listen address \"%s\"\n", entry.c_str());
      return 1;
    }
    auto l = listen_tcp(addr->host, addr->port);
    if (!l) {
      std::fprintf(stderr, "pgweir: %s\n", l.error().message.c_str());
      return 1;
    }
    listeners_.push_back(std::move(*l));
  }
  if (!cfg.server.unix_socket_dir.empty()) {
    auto first = config::parse_listen_address(cfg.server.listen.empty() ? "" : cfg.server.listen.front());
    auto l = listen_unix(cfg.server.unix_socket_dir, first ? first->port : 6432);
    if (!l) {
      std::fprintf(stderr, "pgweir: %s\n", l.error().message.c_str());
      return 1;
    }
    listeners_.push_back(std::move(*l));
  }

  int count = cfg.server.workers > 0 ? cfg.server.workers : static_cast<int>(std::thread::hardware_concurrency());
  if (count <= 0) count = 1;
  for (int i = 0; i < count; ++i) {
    auto w = std::make_unique<Worker>();
    for (const auto& l : listeners_) {
      int fd = ::fcntl(l.fd, F_DUPFD_CLOEXEC, 0);
      auto acc = std::make_unique<Acceptor>(w->io, l.protocol, fd);
      acc->non_blocking(true);
      asio::co_spawn(w->io, accept_loop(*acc, env_, l.name), asio::detached);
      w->acceptors.push_back(std::move(acc));
    }
    workers_.push_back(std::move(w));
  }
  for (auto& l : listeners_) {
    ::close(l.fd);
    log::info("listening", {{"address", l.name}});
  }

  asio::signal_set signals(control_, SIGINT, SIGTERM, SIGHUP);
  std::function<void(const boost::system::error_code&, int)> on_signal = [&](const boost::system::error_code& ec,
                                                                              int sig) {
    if (ec) return;
    if (sig == SIGHUP) {
      reload();
    } else if (++signals_seen_ == 1) {
      log::info("signal", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}, {"action", "graceful shutdown"}});
      begin_shutdown();
    } else {
      log::warn("signal", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}, {"action", "immediate exit"}});
      finish();
      return;
    }
    signals.async_wait(on_signal);
  };
  signals.async_wait(on_signal);
  asio::co_spawn(control_, janitor(), asio::detached);
  notify::start_watchdog(control_);

  for (auto& w : workers_) {
    w->thread = std::thread([w = w.get()] {
      auto guard = asio::make_work_guard(w->io);
      w->io.run();
    });
  }
  log::info("started", {{"version", PGWEIR_VERSION}, {"workers", count}, {"config", path_}});
  notify::ready();
  {
    auto guard = asio::make_work_guard(control_);
    control_.run();
  }
  for (auto& w : workers_) {
    w->io.stop();
    if (w->thread.joinable()) w->thread.join();
  }
  for (auto& l : listeners_)
    if (!l.unix_path.empty()) ::unlink(l.unix_path.c_str());
  log::info("stopped");
  return 0;
}

}  // namespace

int check(const std::string& path) {
  auto loaded = router::load_settings(path);
  if (!loaded.errors.empty()) {
    print_errors(loaded.errors);
    return 1;
  }
  std::printf("%s: configuration is valid\n", path.c_str());
  return 0;
}

int run(const std::string& path) {
  ::signal(SIGPIPE, SIG_IGN);
  auto loaded = router::load_settings(path);
  if (!loaded.errors.empty()) {
    print_errors(loaded.errors);
    return 1;
  }
  Daemon d(path, loaded.settings);
  return d.run();
}

}  // namespace pgweir::daemon
