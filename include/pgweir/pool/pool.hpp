// A pool of server connections for one (database, user): waiters in arrival order (a connection given back goes
// to the oldest waiter on its own event loop, see limits::k_max_waiter_bypass), size + overflow, caps shared
// across pools, idle/lifetime reaping, pre-ping, and the Lease that hands a connection out and takes it back.
#pragma once

#include <atomic>
#include <deque>
#include <unordered_map>
#include <memory>
#include <optional>
#include <mutex>
#include <string>
#include <variant>
#include <vector>

#include "pgweir/config/config.hpp"
#include "pgweir/core/adaptive_mutex.hpp"
#include "pgweir/metrics/pgweir_metrics.hpp"
#include "pgweir/net/asio.hpp"
#include "pgweir/net/signal.hpp"
#include "pgweir/server/server_connection.hpp"

namespace pgweir::pool {

struct PoolKey {
  std::string database;  // as the client named it
  std::string user;      // the client's user name
  auto operator<=>(const PoolKey&) const = default;
  std::string to_string() const { return database + "/" + user; }
};

// Server connections per database and per user, across all pools, for max_db_connections/max_user_connections.
class ConnectionCaps {
 public:
  // Reserves one connection for (database, user) unless a cap (0 = none) is reached.
  bool try_reserve(const std::string& database, const std::string& user, int max_db, int max_user);
  void release(const std::string& database, const std::string& user);

 private:
  std::mutex mutex_;
  std::map<std::string, int, std::less<>> per_db_, per_user_;
};

class Pool;

// A server connection lent to one client. Its destructor closes the connection unless it was given back clean.
class Lease {
 public:
  Lease() = default;
  Lease(std::shared_ptr<Pool> pool, std::unique_ptr<server::ServerConnection> conn);
  Lease(Lease&&) noexcept = default;
  Lease& operator=(Lease&& o) noexcept;
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  ~Lease();

  explicit operator bool() const { return conn_ != nullptr; }
  server::ServerConnection& operator*() { return *conn_; }
  server::ServerConnection* operator->() { return conn_.get(); }
  const server::ServerConnection* operator->() const { return conn_.get(); }
  server::ServerConnection* get() { return conn_.get(); }
  Pool& pool() { return *pool_; }

  // Gives the connection back to the pool for the next client. Only for a connection that is clean: idle
  // transaction status, nothing in flight, session reset done where the mode needs it. `now`: the caller's
  // latest reading of the clock (the connection is idle from then on), when it has one.
  void give_back();
  void give_back(net::TimePoint now);
  // Closes the connection and frees its slot.
  void close();

 private:
  std::shared_ptr<Pool> pool_;
  std::unique_ptr<server::ServerConnection> conn_;
};

enum class AcquireFailure { timeout, connect_failed, closed };

struct AcquireError {
  AcquireFailure kind = AcquireFailure::timeout;
  server::ConnectError connect;  // for connect_failed
};

using AcquireResult = std::variant<Lease, AcquireError>;

// Times since the pool was created, in whole microseconds for SHOW STATS (relaxed atomics). Counts of
// transactions, queries and bytes live in the pool's metric cells.
struct PoolStats {
  std::atomic<std::uint64_t> xact_time_us{0};
  std::atomic<std::uint64_t> query_time_us{0};
  std::atomic<std::uint64_t> wait_time_us{0};   // clients waiting for a server connection
  std::atomic<std::uint64_t> waits{0};          // acquisitions that had to wait
  std::atomic<std::uint64_t> connect_errors{0};
};

struct PoolSnapshot {
  PoolKey key;
  config::PoolSettings settings;
  int idle = 0;        // server connections idle in the pool
  int active = 0;      // lent to clients
  int connecting = 0;  // logging in
  int testing = 0;     // pre-ping running
  int waiting = 0;     // clients queued
  int total = 0;
  std::chrono::microseconds max_wait{0};  // the oldest waiter's wait so far
  std::uint64_t timeouts = 0;             // clients that gave up waiting
  int clients = 0;                        // logged-in clients routed to this pool
  bool paused = false;
};

// One server connection as the console shows it.
struct ServerInfo {
  std::uint64_t id = 0;
  std::string state;  // active | idle | login | tested
  std::string host;
  int port = 0;
  int remote_pid = 0;
  net::TimePoint connect_time{};
  net::TimePoint request_time{};
  bool tls = false;
  bool close_needed = false;
};

// A client queued for a server connection. A session keeps one and reuses it for every wait; `seq` tells a
// wake-up posted for an earlier wait from one for the current wait.
struct Waiter {
  explicit Waiter(net::Executor ex) : executor(ex), wake(true), deadline_timer(ex) {}
  net::Executor executor;
  // The wait: notified by a hand-off, a reserved slot, the pool closing, RESUME, or the deadline passing.
  net::Signal wake;
  // Ends a wait whose deadline (pool.timeout after it began) has passed. A wait does not re-arm it: it stays armed
  // from one wait to the next and, when it fires, ends the wait in progress if that wait's deadline has passed, or
  // is armed again for it. A timer armed at each wait and cancelled at each hand-off cost a sift through the loop's
  // timer heap twice per transaction: with 1 000 clients waiting, about 620 instructions and a cache miss on
  // another session's timer at each level (bench/RESULTS.md).
  net::Timer deadline_timer;
  net::TimePoint deadline = net::TimePoint::max();  // of the wait in progress
  bool timer_armed = false;                         // for deadline_timer.expiry()
  bool waiting = false;  // queued, and not yet woken
  std::unique_ptr<server::ServerConnection> handed;  // a connection given straight to this waiter
  bool slot = false;                                 // room to open a connection was reserved for it
  bool failed = false;                               // the pool closed
  bool retry = false;                                // RESUME: try again from the top
  int bypassed = 0;                                  // times a younger waiter on another event loop went first
  std::uint64_t seq = 0;                             // which wait this is
  net::TimePoint since;
};

class Pool : public std::enable_shared_from_this<Pool> {
 public:
  Pool(PoolKey key, config::PoolSettings settings, server::LoginSpec spec, ConnectionCaps& caps,
       metrics::PoolCells cells, metrics::Metrics* metrics);
  ~Pool();

  const PoolKey& key() const { return key_; }

  // Lends a server connection. Prefers an idle one on `executor` whose startup signature matches; opens a new one
  // while under size + max_overflow; otherwise waits in the queue up to settings.timeout.
  // `parameters` are the startup parameters a new connection logs in with.
  // The common case of acquire, without a coroutine: the most recently used idle connection on `executor`, when
  // it logged in with `signature`, needs no pre-ping or replacing, passes the liveness peek if it has been idle for
  // limits::k_idle_check_after, and no client is queued ahead. Empty otherwise: then acquire. `now`: the caller's
  // reading of the clock when its input arrived (the relay reads it once per read).
  std::optional<Lease> try_lend(const net::Executor& executor, const std::string& signature, net::TimePoint now);
  // `signature` is server::make_signature(parameters), which the caller computes once. Both must outlive the
  // returned task (a session passes its own members).
  // `waiter`, if given, is the caller's own and is used for any wait; with `woken`, it has just been woken from a
  // wait that enqueue() started, and acquire() picks up from there.
  net::Task<AcquireResult> acquire(net::Executor executor, const server::StartupParams& parameters,
                                   const std::string& signature, std::shared_ptr<Waiter> waiter = nullptr,
                                   bool woken = false);
  // The common wait, without a coroutine: when all acquire() could do is queue (nothing idle, no room to open a
  // connection, not paused), queues `waiter` and watches its deadline; the caller awaits `waiter->wake`, then
  // calls claim(). False (nothing queued) when acquire() has to decide.
  bool enqueue(const std::shared_ptr<Waiter>& waiter);
  // After the wait enqueue() started: the connection handed to `waiter` when it can be lent as it is (same
  // startup signature, current, needs no pre-ping). Empty otherwise: then acquire(..., waiter, true).
  std::optional<Lease> claim(Waiter& waiter, const net::Executor& executor, const std::string& signature);

  // New settings or login spec from a reload. When the spec changed, connections opened under the old one are
  // closed as they come back instead of being reused.
  void update(config::PoolSettings settings, server::LoginSpec spec, bool spec_changed);
  // Stops handing out connections: idle ones are closed, waiters fail, returned ones are closed.
  void close();
  // RECONNECT: every connection is closed when it is next released; idle ones now.
  void reconnect();

  PoolSnapshot snapshot() const;
  // The current settings; a reload swaps in new ones, and a snapshot taken before stays as it was.
  std::shared_ptr<const config::PoolSettings> settings() const;
  server::LoginSpec login_spec() const;
  bool is_closed() const;

  // Periodic upkeep: closes idle connections past idle_timeout (above min_idle) or max_lifetime, hands freed
  // capacity to waiters, and returns how many connections to open to reach min_idle.
  int maintain(net::TimePoint now);
  // Opens one connection for min_idle and puts it in the idle list.
  net::Task<void> prefill(net::Executor executor);
  // Closes one idle connection, if it has one (frees room under a shared cap). Returns whether it did.
  bool evict_one_idle();
  bool has_waiters() const;

  PoolStats& stats() { return stats_; }
  metrics::PoolCells& cells() { return cells_; }

  // PAUSE: clients asking for a server wait (idle connections stay idle) until resume().
  void pause();
  void resume();
  std::vector<ServerInfo> servers() const;

  // The shared statement for a (query, parameter types) pair: clients that prepare the same text share one
  // server-side name, so a server connection prepares it once for all of them.
  std::shared_ptr<const server::Statement> statement(std::string_view query, std::string_view param_types);
  // A welcome without a server: the parameters a client of a transaction or statement pool is told at login, and
  // those same parameters as ParameterStatus messages.
  struct Welcome {
    std::shared_ptr<const server::ParameterSet> parameters;
    std::shared_ptr<const std::string> messages;
  };
  // What a server logged in with these startup parameters (signature) reported at login, since the last DSN change
  // or RECONNECT, with application_name set to the client's own. None until such a server has logged in. The
  // welcome last made for a signature is kept, so that clients with the same application_name share it.
  std::optional<Welcome> welcome(const std::string& signature, std::string_view application_name);
  // The one ParameterSet of this pool with these values: made on first use, shared while any client holds it.
  std::shared_ptr<const server::ParameterSet> shared_parameters(const server::ParamMap& values);
  void client_joined() { clients_.fetch_add(1, std::memory_order_relaxed); }
  void client_left() { clients_.fetch_sub(1, std::memory_order_relaxed); }

 private:
  friend class Lease;

  void give_back(std::unique_ptr<server::ServerConnection> conn, net::TimePoint now);
  void discard(std::unique_ptr<server::ServerConnection> conn);
  // Under the lock: a slot was freed; hand it to the first waiter, or release the reservation.
  void slot_freed_locked();
  // Under the lock: takes the waiter a connection given back on `executor` goes to (see k_max_waiter_bypass).
  std::shared_ptr<Waiter> take_waiter_locked(const net::Executor& executor);
  bool try_reserve_locked();
  // Under the lock: queues `waiter` for a new wait, its deadline pool.timeout from now. The caller then arms the
  // deadline timer (watch_deadline in pool.cpp) after unlocking, and waits.
  void queue_locked(const std::shared_ptr<Waiter>& waiter);
  // A wait ended: SHOW STATS and the wait histogram.
  void waited(Waiter& waiter);
  // Under the lock (which guards `seq`): wakes a waiter on its own executor (its signal is not thread-safe), directly
  // when the caller runs there, else by a post that does nothing if that wait is over by then.
  static void wake(const std::shared_ptr<Waiter>& w);
  void release_slot_locked();
  std::shared_ptr<const server::ParameterSet> shared_parameters_locked(const server::ParamMap& values);
  net::Task<AcquireResult> open_with_slot(net::Executor executor, server::StartupParams parameters);
  std::unique_ptr<server::ServerConnection> take_idle_locked(const net::Executor& executor, const std::string& signature,
                                                            bool any_signature);

  PoolKey key_;
  ConnectionCaps& caps_;
  // Taken by every worker once per lend and once per give-back: spins before it sleeps (see AdaptiveMutex).
  mutable core::AdaptiveMutex mutex_;
  std::shared_ptr<const config::PoolSettings> settings_;
  server::LoginSpec spec_;
  std::uint64_t generation_ = 1;
  std::vector<std::unique_ptr<server::ServerConnection>> idle_;  // most recently used last
  std::deque<std::shared_ptr<Waiter>> waiters_;
  // shared_parameters' sets by a hash of their values; expired ones are swept as the table grows.
  std::unordered_multimap<std::size_t, std::weak_ptr<const server::ParameterSet>> parameter_sets_;
  struct WelcomeSource {
    server::ParamMap values;  // as the server reported them
    Welcome last;             // the welcome last made from them
  };
  std::map<std::string, WelcomeSource> welcome_;  // by signature
  std::size_t parameter_sets_sweep_at_ = 64;
  int active_ = 0;
  int connecting_ = 0;
  int testing_ = 0;
  int total_ = 0;
  std::uint64_t timeouts_ = 0;
  bool closed_ = false;
  PoolStats stats_;
  metrics::PoolCells cells_;
  metrics::Metrics* metrics_;
  bool paused_ = false;
  // Connections out with clients, for SHOW SERVERS.
  boost::intrusive::list<server::ServerConnection,
                         boost::intrusive::member_hook<server::ServerConnection, server::ServerConnection::LentHook,
                                                       &server::ServerConnection::lent_hook>,
                         boost::intrusive::constant_time_size<false>>
      lent_;
  std::atomic<int> clients_{0};
  std::mutex statements_mutex_;
  std::unordered_map<std::string, std::weak_ptr<const server::Statement>> statements_;
  std::uint64_t next_statement_id_ = 1;
};

}  // namespace pgweir::pool
