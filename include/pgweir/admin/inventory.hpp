// What the admin console (SPEC §4) reads and does, as an interface the daemon implements: plain structs in, plain
// results out, so the console itself stays pure and is tested with a fake.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pgweir/config/config.hpp"
#include "pgweir/core/result.hpp"
#include "pgweir/pool/pool.hpp"

namespace pgweir::admin {

// One (database, user) pool for SHOW POOLS: the pool's own snapshot plus what only the client side knows.
struct PoolInfo {
  pool::PoolSnapshot snapshot;         // waiting -> cl_waiting, active -> sv_active, idle -> sv_idle,
                                       // testing -> sv_tested, connecting -> sv_login, max_wait -> maxwait(_us)
  int clients_active = 0;              // logged-in clients of this pool that are not queued (cl_active)
  int clients_active_cancel_req = 0;   // clients whose cancel request is being forwarded
  int clients_waiting_cancel_req = 0;  // clients whose cancel request is not forwarded yet
  int servers_active_cancel = 0;       // server connections forwarding a cancel
  int servers_being_canceled = 0;      // server connections waiting for in-flight cancels
  int servers_used = 0;                // idle longer than pre_ping, so checked before use (PgBouncer's sv_used)
};

// Running totals since start (SHOW STATS' total_*). Times in microseconds.
struct StatsTotals {
  std::uint64_t xact_count = 0;
  std::uint64_t query_count = 0;
  std::uint64_t bytes_received = 0;  // from clients
  std::uint64_t bytes_sent = 0;      // to clients
  std::uint64_t xact_time_us = 0;
  std::uint64_t query_time_us = 0;
  std::uint64_t wait_time_us = 0;
  StatsTotals& operator+=(const StatsTotals& o);
};

// Averages over the last completed stats period (SHOW STATS' avg_*), PgBouncer's definitions:
// counts and bytes per second, xact/query time per transaction/query, wait time per second of the period.
struct StatsAverages {
  std::uint64_t xact_count = 0;     // transactions per second
  std::uint64_t query_count = 0;    // queries per second
  std::uint64_t bytes_received = 0; // bytes per second
  std::uint64_t bytes_sent = 0;
  std::uint64_t xact_time_us = 0;   // per transaction
  std::uint64_t query_time_us = 0;  // per query
  std::uint64_t wait_time_us = 0;   // microseconds waited per second of the period
};
StatsAverages average(const StatsTotals& start, const StatsTotals& end, std::chrono::microseconds period);

struct DatabaseStats {
  std::string database;
  StatsTotals total;
  StatsAverages average;
};

// Keeps the per-database totals at the last two period boundaries so that averages are over one whole period and
// change once per period, as PgBouncer's do. The daemon calls roll() every k_stats_period (from its janitor) and
// stats() when the console asks. Thread-safe.
inline constexpr std::chrono::seconds k_stats_period{60};
class StatsWindow {
 public:
  using Clock = std::chrono::steady_clock;
  void roll(Clock::time_point now, std::vector<std::pair<std::string, StatsTotals>> totals_by_database);
  // `current` are the live totals; the averages come from the last completed period (zero until two rolls).
  std::vector<DatabaseStats> stats(const std::vector<std::pair<std::string, StatsTotals>>& current) const;

 private:
  mutable std::mutex mutex_;
  std::vector<std::pair<std::string, StatsTotals>> older_, newer_;
  std::optional<Clock::time_point> older_at_, newer_at_;
};

// SHOW DATABASES: one per configured database entry.
struct DatabaseInfo {
  std::string name;                       // as clients name it ("*" for the wildcard)
  std::optional<std::string> host;        // first DSN host; nullopt for a unix socket
  int port = 5432;
  std::string database;                   // the server-side dbname
  std::optional<std::string> force_user;  // the DSN's user, when it names one
  int pool_size = 0;
  int min_pool_size = 0;                  // min_idle
  int reserve_pool = 0;                   // max_overflow
  std::optional<std::string> pool_mode;   // only when the database overrides it
  int max_connections = 0;                // max_db_connections
  int current_connections = 0;            // server connections open to it now
  bool paused = false;
  bool disabled = false;
};
// The static fields from the config; the daemon fills current_connections and paused.
std::vector<DatabaseInfo> describe_databases(const config::Config& config);

// SHOW CLIENTS / SHOW SERVERS: one connection.
struct ConnectionInfo {
  std::uint64_t id = 0;  // shown in `ptr`; KILL_CLIENT takes it
  std::string user, database;
  std::string state;     // clients: active | waiting | active_cancel_req | waiting_cancel_req;
                         // servers: active | idle | used | tested | new | active_cancel | being_canceled
  std::string addr;
  int port = 0;
  std::string local_addr;
  int local_port = 0;
  std::chrono::system_clock::time_point connect_time{};
  std::chrono::system_clock::time_point request_time{};
  std::chrono::microseconds wait{0};  // clients: how long the current wait for a server has lasted
  bool close_needed = false;          // servers: will be closed when released (RECONNECT, reload)
  std::uint64_t link = 0;             // id of the paired connection; 0 = none
  int remote_pid = 0;                 // servers: the backend pid from BackendKeyData
  std::string tls;                    // e.g. "TLSv1.3/TLS_AES_256_GCM_SHA384"; empty without TLS
  std::string application_name;
};

// SHOW USERS.
struct UserInfo {
  std::string name;
  std::optional<std::string> pool_mode;  // only when [users.NAME] overrides it
};
std::vector<UserInfo> describe_users(const config::Config& config);

// SHOW CONFIG: one row per key, "section.key" names; secrets never appear in values.
struct ConfigEntry {
  std::string key, value, default_value;
  bool changeable = true;  // takes effect on RELOAD
};
std::vector<ConfigEntry> describe_config(const config::Config& config);

// SHOW LISTS: the counts that are not lengths of the lists above.
struct ListCounts {
  int used_clients = 0;   // client connections open (logged in or not)
  int login_clients = 0;  // still logging in
  int used_servers = 0;   // server connections open
};

enum class ShutdownMode {
  immediate,          // SHUTDOWN
  wait_for_servers,   // SHUTDOWN WAIT_FOR_SERVERS: stop accepting, let in-flight transactions finish
  wait_for_clients,   // SHUTDOWN WAIT_FOR_CLIENTS: stop accepting, exit when every client has left
};

class Inventory {
 public:
  virtual ~Inventory() = default;

  virtual std::vector<PoolInfo> pools() = 0;
  virtual std::vector<DatabaseStats> stats() = 0;  // usually StatsWindow::stats(live totals)
  virtual std::vector<DatabaseInfo> databases() = 0;
  virtual std::vector<ConnectionInfo> clients() = 0;
  virtual std::vector<ConnectionInfo> servers() = 0;
  virtual std::vector<UserInfo> users() = 0;
  virtual std::vector<ConfigEntry> config() = 0;
  virtual ListCounts lists() = 0;
  virtual std::string version() = 0;  // e.g. "pgweir 0.1.0"

  // Actions. `database` nullopt = all. The console has checked that a named database exists and is not the
  // console's own; an error's text is sent to the admin as is (SQLSTATE 55000).
  virtual Expected<void> pause(const std::optional<std::string>& database) = 0;
  virtual Expected<void> resume(const std::optional<std::string>& database) = 0;
  virtual Expected<void> reconnect(const std::optional<std::string>& database) = 0;
  virtual Expected<void> kill(const std::string& database) = 0;
  virtual Expected<void> kill_client(std::uint64_t id) = 0;  // error text when no such client
  virtual Expected<void> reload() = 0;                       // error text: the config's diagnostics
  virtual Expected<void> shutdown(ShutdownMode mode) = 0;    // begins it; the console replies before exit
};

}  // namespace pgweir::admin
