// Daemon: worker threads with their io_contexts, shared listening sockets, signals (reload, graceful and
// immediate shutdown), the pool janitor, and systemd notifications.
#include "pgweir/daemon/daemon.hpp"

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
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "pgweir/admin/inventory.hpp"
#include "pgweir/client/session.hpp"
#include "pgweir/metrics/http.hpp"
#include "pgweir/metrics/pgweir_metrics.hpp"
#include "pgweir/metrics/registry.hpp"
#include "pgweir/net/ring.hpp"
#include "pgweir/net/signal.hpp"
#include "pgweir/net/transport.hpp"
#include "pgweir/pq/ping.hpp"
#include "pgweir/core/limits.hpp"
#include "pgweir/core/log.hpp"
#include "pgweir/router/router.hpp"
#include "notify.hpp"

namespace pgweir::daemon {
namespace {

namespace asio = boost::asio;
using net::Acceptor;

constexpr int k_listen_backlog = 4096;
constexpr auto k_shutdown_poll = std::chrono::milliseconds(100);

// A steady-clock time (what the relay and the pool read) as wall-clock time, for the console.
std::chrono::system_clock::time_point wall_time(net::TimePoint t) {
  return std::chrono::system_clock::now() -
         std::chrono::duration_cast<std::chrono::system_clock::duration>(net::Clock::now() - t);
}

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

// A bound, listening socket; the first worker's acceptor takes its fd over.
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
  // Before io: sessions the io_context still holds when it is destroyed unlink themselves from the lot, and their
  // signals from the list of waits.
  client::ParkingLot lot;
  net::SignalList waits;
  asio::io_context io{1};
  // Waits at max() for the worker's life. A session's wake-up timer also waits at max(); with this one in the
  // loop's timer heap first, it never becomes the earliest timer, so arming it does not re-program the loop's
  // timerfd (with a single client that was a timerfd_settime per transaction).
  asio::steady_timer parked{io};
  // Every limits::k_park_sweep_period while the lot holds sessions: parks the loop's idle pool clients and ends
  // overlong logins (ParkingLot::sweep). A loop whose clients are all parked, or that has none, is not woken.
  asio::steady_timer sweep{io};
  bool sweeping = false;
  void sweep_soon() {
    sweeping = true;
    sweep.expires_after(limits::k_park_sweep_period);
    sweep.async_wait([this](boost::system::error_code ec) {
      if (!ec && lot.sweep(net::Clock::now())) {
        sweep_soon();
      } else {
        sweeping = false;
      }
    });
  }
  std::vector<std::unique_ptr<Acceptor>> acceptors;
  std::thread thread;

  // With the loop stopped: the clients still waiting for a server are held by their waits alone (net::SignalList),
  // and go with the io_context like those waiting on anything else.
  ~Worker() { waits.abandon(); }
};

using Workers = std::vector<std::unique_ptr<Worker>>;

// The worker a new client goes to (server.worker_fill): the first serving fewer than `fill` clients, else the one
// serving the fewest. Filling one loop before the next gets any is what saves CPU at light load: a loop that is
// woken finds more to do, where clients spread over every loop wake each loop for about every message (two
// workers at 10 clients: 1.5 epoll_wait per transaction against 0.4 with one, bench/RESULTS.md).
Worker& place_client(const Workers& workers, int fill) {
  Worker* fewest = workers.front().get();
  for (const auto& w : workers) {
    int n = w->lot.clients();
    if (n < fill) return *w;
    if (n < fewest->lot.clients()) fewest = w.get();
  }
  return *fewest;
}

// Runs on the first worker, the only one watching the listening sockets: one loop wakes per new connection,
// instead of every loop with all but one finding nothing to accept. Each readiness accepts what is queued, and
// each client's socket is made on the loop of the worker chosen for it.
net::Task<void> accept_loop(Acceptor& acceptor, asio::generic::stream_protocol protocol, const Workers& workers,
                            router::Router& router, client::SessionEnv& env, std::string name) {
  auto ex = co_await asio::this_coro::executor;
  net::Timer backoff(ex);
  for (;;) {
    for (;;) {
      sockaddr_storage addr{};
      socklen_t length = sizeof addr;
      int fd = ::accept4(acceptor.native_handle(), reinterpret_cast<sockaddr*>(&addr), &length, SOCK_CLOEXEC);
      if (fd >= 0) {
        Worker& target = place_client(workers, router.settings()->config->server.worker_fill);
        net::Socket socket(target.io);
        // Registers it with the target loop's reactor, unless that loop's plain sockets wait in its ring.
        auto ec = net::assign_accepted(socket, protocol, fd);
        if (ec) {
          log::warn("accept_failed", {{"listener", name}, {"error", ec.message()}});
          ::close(fd);
          continue;
        }
        target.lot.place();
        net::Endpoint peer(&addr, length);
        asio::co_spawn(target.io, client::run_session(std::move(socket), net::peer_address(peer), env),
                       asio::detached);
        continue;
      }
      int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK) break;
      if (err == EBADF || err == EINVAL || !acceptor.is_open()) co_return;  // closed, or no longer listening
      if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        // Out of descriptors: back off, then try again; the connections still queued raise no new readiness.
        log::warn("accept_failed", {{"listener", name}, {"error", std::strerror(err)}});
        backoff.expires_after(limits::k_accept_backoff);
        co_await backoff.async_wait(net::use_tuple);
        if (!acceptor.is_open()) co_return;
      }
      // Anything else (EINTR, a peer that reset before its accept) concerns that connection only.
    }
    // The queue was found empty on this thread, which is also the one that polls: a connection that arrives from
    // now on raises an edge of its own for the wait below.
    auto ec = co_await net::wait_acceptable(acceptor);
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
  }
}

class Daemon;

// The console's view of the process.
class DaemonInventory final : public admin::Inventory {
 public:
  explicit DaemonInventory(Daemon& d) : d_(d) {}
  std::vector<admin::PoolInfo> pools() override;
  std::vector<admin::DatabaseStats> stats() override;
  std::vector<admin::DatabaseInfo> databases() override;
  std::vector<admin::ConnectionInfo> clients() override;
  std::vector<admin::ConnectionInfo> servers() override;
  std::vector<admin::UserInfo> users() override;
  std::vector<admin::ConfigEntry> config() override;
  admin::ListCounts lists() override;
  std::string version() override { return "pgweir " PGWEIR_VERSION; }
  Expected<void> pause(const std::optional<std::string>& database) override;
  Expected<void> resume(const std::optional<std::string>& database) override;
  Expected<void> reconnect(const std::optional<std::string>& database) override;
  Expected<void> kill(const std::string& database) override;
  Expected<void> kill_client(std::uint64_t id) override;
  Expected<void> reload() override;
  Expected<void> shutdown(admin::ShutdownMode mode) override;

  std::vector<std::pair<std::string, admin::StatsTotals>> totals();
  admin::StatsWindow window;

 private:
  // Pools of `database` (all when nullopt); an error when a named database has none and is not configured.
  Expected<std::vector<std::shared_ptr<pool::Pool>>> pools_of(const std::optional<std::string>& database);
  Daemon& d_;
};

class Daemon {
 public:
  Daemon(std::string path, std::shared_ptr<const router::Settings> settings)
      : path_(std::move(path)),
        metrics_(registry_, PGWEIR_VERSION),
        router_(std::move(settings), metrics_),
        inventory_(*this),
        env_{router_, sessions_, shutting_down_, &inventory_} {}

  int run();

 private:
  friend class DaemonInventory;
  Expected<void> reload();
  void begin_shutdown(bool close_idle_clients);
  void finish();
  net::Task<void> janitor();
  net::Task<void> watch_shutdown();
  Expected<void> start_metrics();
  void check_health();
  void remove_socket_files();
  std::vector<metrics::PoolGauges> pool_gauges();

  std::string path_;
  metrics::Registry registry_;
  metrics::Metrics metrics_;
  router::Router router_;
  client::Registry sessions_;
  DaemonInventory inventory_;
  std::atomic<bool> shutting_down_{false};
  std::atomic<bool> listening_{false};
  std::atomic<bool> reachable_{true};
  std::string unreachable_reason_;
  std::uint64_t answered_seen_ = 0;  // the pools' answered queries at the last health check (health thread only)
  std::mutex reload_mutex_;
  std::mutex health_mutex_;
  client::SessionEnv env_;
  asio::io_context control_{1};
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<Listener> listeners_;
  std::unique_ptr<metrics::Acceptor> metrics_acceptor_;
  std::jthread health_thread_;
  int signals_seen_ = 0;
  bool stopped_ = false;
};

Expected<void> Daemon::reload() {
  std::lock_guard lock(reload_mutex_);
  notify::reloading();
  auto loaded = router::load_settings(path_);
  if (!loaded.errors.empty()) {
    std::string text;
    for (const auto& e : loaded.errors) {
      log::error("config_reload_error", {{"error", e.to_string()}});
      if (!text.empty()) text += "\n";
      text += e.to_string();
    }
    log::error("config_reload_failed", {{"file", path_}, {"errors", loaded.errors.size()}});
    metrics_.config_reloads.with({"failed"}).inc();
    notify::ready();
    return make_error(text);
  }
  // Listen addresses and worker count take effect at the next start; everything else now.
  router_.apply(loaded.settings);
  apply_logging(*loaded.settings->config);
  log::info("config_reloaded", {{"file", path_}});
  metrics_.config_reloads.with({"ok"}).inc();
  notify::ready();
  return {};
}

void Daemon::begin_shutdown(bool close_idle_clients) {
  if (shutting_down_.exchange(true)) return;
  notify::stopping();
  log::info("shutdown_started", {{"clients", sessions_.size()}});
  for (auto& w : workers_) {
    asio::post(w->io, [w = w.get()] {
      for (auto& a : w->acceptors) {
        boost::system::error_code ignored;
        a->close(ignored);
      }
    });
  }
  if (close_idle_clients) sessions_.for_each([](client::Session& s) { client::request_shutdown(s); });
  if (metrics_acceptor_) {
    asio::post(workers_.front()->io, [this] {
      boost::system::error_code ignored;
      metrics_acceptor_->close(ignored);
    });
  }
  asio::co_spawn(control_, watch_shutdown(), asio::detached);
}

net::Task<void> Daemon::watch_shutdown() {
  auto timeout = router_.settings()->config->server.shutdown_timeout;
  auto deadline = net::Clock::now() + (timeout.count() > 0 ? timeout : std::chrono::hours(24 * 365));
  net::Timer timer(control_.get_executor());
  while (sessions_.size() > 0 && net::Clock::now() < deadline) {
    timer.expires_after(k_shutdown_poll);
    co_await timer.async_wait(net::use_tuple);
  }
  if (sessions_.size() > 0) log::warn("shutdown_timeout", {{"clients", sessions_.size()}});
  finish();
}

void Daemon::finish() {
  if (stopped_) return;
  stopped_ = true;
  for (auto& p : router_.pools()) p->close();
  for (auto& w : workers_) w->io.stop();
  control_.stop();
}

net::Task<void> Daemon::janitor() {
  net::Timer timer(control_.get_executor());
  std::size_t next = 0;
  long ticks = 0;
  inventory_.window.roll(std::chrono::steady_clock::now(), inventory_.totals());
  for (;;) {
    timer.expires_after(limits::k_janitor_period);
    auto [ec] = co_await timer.async_wait(net::use_tuple);
    if (ec || shutting_down_) co_return;
    router_.maintain(workers_[next++ % workers_.size()]->io.get_executor());
    // SHOW STATS averages are over whole periods.
    if (++ticks % (std::chrono::seconds(60) / limits::k_janitor_period) == 0)
      inventory_.window.roll(std::chrono::steady_clock::now(), inventory_.totals());
  }
}

int Daemon::run() {
  auto settings = router_.settings();
  const auto& cfg = *settings->config;
  apply_logging(cfg);

  // The unix socket first: the kernel accepts TCP connections from listen() on, and whoever sees the TCP port
  // answer (a health check, a test, a script) may go on to the socket file at once.
  if (!cfg.server.unix_socket_dir.empty()) {
    auto first = config::parse_listen_address(cfg.server.listen.empty() ? "" : cfg.server.listen.front());
    auto l = listen_unix(cfg.server.unix_socket_dir, first ? first->port : 6432);
    if (!l) {
      std::fprintf(stderr, "pgweir: %s\n", l.error().message.c_str());
      return 1;
    }
    listeners_.push_back(std::move(*l));
  }
  // A TCP listener that fails takes the socket file made above with it.
  auto fail = [this](const std::string& message) {
    std::fprintf(stderr, "pgweir: %s\n", message.c_str());
    remove_socket_files();
    return 1;
  };
  for (const auto& entry : cfg.server.listen) {
    auto addr = config::parse_listen_address(entry);
    if (!addr) return fail("invalid listen address \"" + entry + "\"");
    auto l = listen_tcp(addr->host, addr->port);
    if (!l) return fail(l.error().message);
    listeners_.push_back(std::move(*l));
  }

  int count = cfg.server.workers > 0 ? cfg.server.workers : static_cast<int>(std::thread::hardware_concurrency());
  if (count <= 0) count = 1;
  for (int i = 0; i < count; ++i) workers_.push_back(std::make_unique<Worker>());
  auto& first = *workers_.front();
  for (auto& l : listeners_) {
    auto acc = std::make_unique<Acceptor>(first.io, l.protocol, std::exchange(l.fd, -1));
    acc->non_blocking(true);
    asio::co_spawn(first.io, accept_loop(*acc, l.protocol, workers_, router_, env_, l.name), asio::detached);
    first.acceptors.push_back(std::move(acc));
    log::info("listening", {{"address", l.name}});
  }

  if (auto ok = start_metrics(); !ok) {
    std::fprintf(stderr, "pgweir: %s\n", ok.error().message.c_str());
    return 1;
  }
  asio::signal_set signals(control_, SIGINT, SIGTERM, SIGHUP);
  std::function<void(const boost::system::error_code&, int)> on_signal = [&](const boost::system::error_code& ec,
                                                                              int sig) {
    if (ec) return;
    if (sig == SIGHUP) {
      (void)reload();
    } else if (++signals_seen_ == 1) {
      log::info("signal", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}, {"action", "graceful shutdown"}});
      begin_shutdown(true);
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

  const bool use_ring = cfg.server.io == config::IoBackend::io_uring;
  for (auto& w : workers_) {
    w->thread = std::thread([w = w.get(), use_ring, index = &w - workers_.data()] {
      // Made on the thread that runs the loop: the ring accepts requests from its creator only.
      if (use_ring) {
        if (auto why = net::Ring::create(w->io); !why.empty()) {
          log::warn("io_uring_unavailable", {{"worker", index}, {"error", why}, {"fallback", "epoll"}});
        }
      }
      auto guard = asio::make_work_guard(w->io);
      w->parked.expires_at(net::TimePoint::max());
      w->parked.async_wait([](boost::system::error_code) {});
      client::ParkingLot::bind(&w->lot);
      net::SignalList::bind(&w->waits);
      w->lot.on_occupied(
          [](void* worker) {
            auto* self = static_cast<Worker*>(worker);
            if (!self->sweeping) self->sweep_soon();
          },
          w);
      w->io.run();
    });
  }
  log::info("started", {{"version", PGWEIR_VERSION}, {"workers", count}, {"io", config::to_string(cfg.server.io)},
                        {"config", path_}});
  listening_ = true;
  // Readiness is checked from here on, so pgweir_up never reads 0 for a process that is listening and healthy.
  // Between checks the thread sleeps until the next one is due or the daemon stops: no periodic wake-ups.
  health_thread_ = std::jthread([this](std::stop_token stop) {
    std::mutex m;
    std::condition_variable_any cv;
    std::unique_lock lock(m);
    while (!stop.stop_requested()) {
      check_health();
      cv.wait_for(lock, stop, std::chrono::seconds(2), [] { return false; });
    }
  });
  notify::ready();
  {
    auto guard = asio::make_work_guard(control_);
    control_.run();
  }
  health_thread_.request_stop();
  if (health_thread_.joinable()) health_thread_.join();
  for (auto& w : workers_) {
    w->io.stop();
    if (w->thread.joinable()) w->thread.join();
  }
  remove_socket_files();
  log::info("stopped");
  return 0;
}

Expected<void> Daemon::start_metrics() {
  registry_.add_process_collector();
  metrics::add_pool_collector(registry_, [this] { return pool_gauges(); });
  registry_.add_collector([this](metrics::Writer& out) {
    for (std::size_t i = 0; i < workers_.size(); ++i) {
      std::string worker = std::to_string(i);
      out.gauge("pgweir_worker_clients", "Clients each worker (event loop) serves, parked ones included.",
                {metrics::Label{"worker", worker}}, workers_[i]->lot.clients());
    }
  });
  const auto& listen = router_.settings()->config->metrics.listen;
  if (listen.empty()) return {};
  auto acceptor = metrics::bind_http(workers_.front()->io.get_executor(), listen);
  if (!acceptor) return make_error("metrics.listen: " + acceptor.error().message);
  metrics_acceptor_ = std::make_unique<metrics::Acceptor>(std::move(*acceptor));
  metrics::HealthProbe probe = [this] {
    metrics::HealthState h;
    std::lock_guard lock(health_mutex_);
    if (!listening_) {
      h.reason = "not listening yet";
    } else if (shutting_down_) {
      h.reason = "shutting down";
    } else if (!reachable_) {
      h.reason = unreachable_reason_;
    } else {
      h.ready = true;
    }
    return h;
  };
  asio::co_spawn(workers_.front()->io, metrics::serve_http(*metrics_acceptor_, registry_, probe), asio::detached);
  log::info("metrics_listening", {{"address", listen}});
  return {};
}

void Daemon::remove_socket_files() {
  for (const auto& l : listeners_)
    if (!l.unix_path.empty()) ::unlink(l.unix_path.c_str());
}

// Ready when at least one configured database answers (the wildcard's server counts too). A query a server
// answered since the last check is that answer already; only without one is each database pinged in turn
// (PQping logs in: a PostgreSQL backend started every 2 s, in log_connections and pg_stat_database.sessions,
// for as long as the pooler runs). The sum can fall when a reload drops a pool: then it pings.
void Daemon::check_health() {
  std::uint64_t answered = 0;
  for (const auto& p : router_.pools()) answered += p->cells().queries.value();
  bool any = answered > answered_seen_;
  answered_seen_ = answered;
  std::string reason = "no database configured";
  if (!any) {
    auto settings = router_.settings();
    for (const auto& [name, db] : settings->config->databases) {
      if (pq::ping(db.target, std::chrono::seconds(2))) {
        any = true;
        break;
      }
      reason = "database \"" + name + "\" is unreachable";
    }
  }
  {
    std::lock_guard lock(health_mutex_);
    reachable_ = any;
    unreachable_reason_ = any ? std::string() : reason;
  }
  metrics_.ready.with({}).set(any && listening_ && !shutting_down_ ? 1 : 0);
}

std::vector<metrics::PoolGauges> Daemon::pool_gauges() {
  std::vector<metrics::PoolGauges> out;
  for (const auto& p : router_.pools()) {
    auto s = p->snapshot();
    metrics::PoolGauges g;
    g.database = s.key.database;
    g.user = s.key.user;
    g.clients_waiting = s.waiting;
    g.clients_active = std::max(0, std::min(s.clients - s.waiting, s.active + s.testing));
    g.clients_idle = std::max(0, s.clients - g.clients_active - g.clients_waiting);
    g.servers_active = s.active;
    g.servers_idle = s.idle;
    g.servers_login = s.connecting;
    g.servers_testing = s.testing;
    g.size = s.settings.size;
    g.max_overflow = s.settings.max_overflow;
    g.overflow_connections = std::max(0, s.total - s.settings.size);
    g.timeouts = s.timeouts;
    out.push_back(std::move(g));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Console inventory

std::vector<std::pair<std::string, admin::StatsTotals>> DaemonInventory::totals() {
  std::map<std::string, admin::StatsTotals> by_db;
  for (const auto& p : d_.router_.pools()) {
    auto& t = by_db[p->key().database];
    auto& c = p->cells();
    auto& st = p->stats();
    admin::StatsTotals one;
    one.xact_count = c.transactions.value();
    one.query_count = c.queries.value();
    one.bytes_received = c.bytes_received.value();
    one.bytes_sent = c.bytes_sent.value();
    one.xact_time_us = st.xact_time_us.load(std::memory_order_relaxed);
    one.query_time_us = st.query_time_us.load(std::memory_order_relaxed);
    one.wait_time_us = st.wait_time_us.load(std::memory_order_relaxed);
    t += one;
  }
  return {by_db.begin(), by_db.end()};
}

std::vector<admin::PoolInfo> DaemonInventory::pools() {
  std::vector<admin::PoolInfo> out;
  for (const auto& p : d_.router_.pools()) {
    admin::PoolInfo i;
    i.snapshot = p->snapshot();
    i.clients_active = std::max(0, i.snapshot.clients - i.snapshot.waiting);
    out.push_back(std::move(i));
  }
  return out;
}

std::vector<admin::DatabaseStats> DaemonInventory::stats() { return window.stats(totals()); }

std::vector<admin::DatabaseInfo> DaemonInventory::databases() {
  auto rows = admin::describe_databases(*d_.router_.settings()->config);
  auto pools = d_.router_.pools();
  for (auto& row : rows) {
    for (const auto& p : pools) {
      if (p->key().database != row.name) continue;
      auto s = p->snapshot();
      row.current_connections += s.total;
      row.paused = row.paused || s.paused;
    }
  }
  return rows;
}

std::vector<admin::ConnectionInfo> DaemonInventory::clients() {
  std::vector<admin::ConnectionInfo> out;
  for (const auto& c : d_.sessions_.clients()) {
    admin::ConnectionInfo i;
    i.id = c->id;
    i.user = c->user;
    i.database = c->database;
    int state = c->state.load(std::memory_order_relaxed);
    i.state = state == client::ClientInfo::waiting ? "waiting" : "active";
    i.addr = c->addr;
    i.port = c->port;
    i.connect_time = c->connect_time;
    auto request_us = std::chrono::microseconds(c->request_time_us.load(std::memory_order_relaxed));
    i.request_time = wall_time(net::TimePoint(request_us));
    if (state == client::ClientInfo::waiting) {
      auto started = std::chrono::microseconds(c->wait_started_us.load(std::memory_order_relaxed));
      i.wait = std::chrono::duration_cast<std::chrono::microseconds>(net::Clock::now().time_since_epoch()) - started;
    }
    i.link = c->server_id.load(std::memory_order_relaxed);
    i.tls = c->tls;
    i.application_name = c->application_name;
    out.push_back(std::move(i));
  }
  return out;
}

std::vector<admin::ConnectionInfo> DaemonInventory::servers() {
  std::vector<admin::ConnectionInfo> out;
  for (const auto& p : d_.router_.pools()) {
    for (const auto& s : p->servers()) {
      admin::ConnectionInfo i;
      i.id = s.id;
      i.user = p->key().user;
      i.database = p->key().database;
      i.state = s.state;
      i.addr = s.host;
      i.port = s.port;
      i.connect_time = wall_time(s.connect_time);
      i.request_time = wall_time(s.request_time);
      i.remote_pid = s.remote_pid;
      i.close_needed = s.close_needed;
      out.push_back(std::move(i));
    }
  }
  return out;
}

std::vector<admin::UserInfo> DaemonInventory::users() { return admin::describe_users(*d_.router_.settings()->config); }

std::vector<admin::ConfigEntry> DaemonInventory::config() {
  return admin::describe_config(*d_.router_.settings()->config);
}

admin::ListCounts DaemonInventory::lists() {
  admin::ListCounts c;
  c.used_clients = static_cast<int>(d_.sessions_.size());
  c.login_clients = d_.sessions_.logging_in.load(std::memory_order_relaxed);
  for (const auto& p : d_.router_.pools()) c.used_servers += p->snapshot().total;
  return c;
}

Expected<std::vector<std::shared_ptr<pool::Pool>>> DaemonInventory::pools_of(
    const std::optional<std::string>& database) {
  std::vector<std::shared_ptr<pool::Pool>> out;
  for (const auto& p : d_.router_.pools())
    if (!database || p->key().database == *database) out.push_back(p);
  if (database && out.empty() && !d_.router_.settings()->config->find_database(*database))
    return make_error("no such database: " + *database);
  return out;
}

Expected<void> DaemonInventory::pause(const std::optional<std::string>& database) {
  auto pools = pools_of(database);
  if (!pools) return pools.error();
  for (const auto& p : *pools) p->pause();
  log::info("console_pause", {{"database", database.value_or("*")}});
  return {};
}

Expected<void> DaemonInventory::resume(const std::optional<std::string>& database) {
  auto pools = pools_of(database);
  if (!pools) return pools.error();
  for (const auto& p : *pools) p->resume();
  log::info("console_resume", {{"database", database.value_or("*")}});
  return {};
}

Expected<void> DaemonInventory::reconnect(const std::optional<std::string>& database) {
  auto pools = pools_of(database);
  if (!pools) return pools.error();
  for (const auto& p : *pools) p->reconnect();
  return {};
}

Expected<void> DaemonInventory::kill(const std::string& database) {
  auto pools = pools_of(database);
  if (!pools) return pools.error();
  // New clients of a killed database wait until RESUME, as after PAUSE.
  for (const auto& p : *pools) {
    p->pause();
    p->reconnect();
  }
  for (const auto& c : d_.sessions_.clients())
    if (c->database == database) d_.sessions_.with(c->id, [](client::Session& s) { client::kill(s); });
  log::info("console_kill", {{"database", database}});
  return {};
}

Expected<void> DaemonInventory::kill_client(std::uint64_t id) {
  if (!d_.sessions_.with(id, [](client::Session& s) { client::kill(s); }))
    return make_error("no such client: " + std::to_string(id));
  return {};
}

Expected<void> DaemonInventory::reload() { return d_.reload(); }

Expected<void> DaemonInventory::shutdown(admin::ShutdownMode mode) {
  asio::post(d_.control_, [this, mode] {
    switch (mode) {
      case admin::ShutdownMode::immediate: d_.finish(); break;
      case admin::ShutdownMode::wait_for_servers: d_.begin_shutdown(true); break;
      case admin::ShutdownMode::wait_for_clients: d_.begin_shutdown(false); break;
    }
  });
  return {};
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
