// Routes a client's (database, user) to its pool, holds the current settings snapshot (swapped whole on reload)
// and the cancel map from pgweir-issued BackendKeyData to the server connection a client is using.
#pragma once

#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>

#include "pgweir/auth/users_file.hpp"
#include "pgweir/config/config.hpp"
#include "pgweir/core/slab.hpp"
#include "pgweir/hba/hba.hpp"
#include "pgweir/pool/pool.hpp"
#include "pgweir/tls/tls.hpp"

namespace pgweir::router {

// Everything a reload replaces, validated before it is swapped in.
struct Settings {
  std::shared_ptr<const config::Config> config;
  std::shared_ptr<const auth::UsersFile> users;              // null when auth.users_file is unset
  std::shared_ptr<const hba::HbaFile> hba;                   // null when auth.hba_file is unset
  std::shared_ptr<const tls::Context> client_tls;            // null when tls.mode = disable
  std::map<std::string, std::shared_ptr<const tls::Context>, std::less<>> server_tls;  // per database
};

// Loads and validates everything a config names (users file, TLS files); used by --check, start-up and reload.
struct LoadedSettings {
  std::shared_ptr<const Settings> settings;
  std::vector<config::Diagnostic> errors;
};
LoadedSettings load_settings(const std::string& path);

// The server connection a client's cancel should reach, updated as the client gets and gives back servers.
// A cancel in flight holds the server connection back from the next client until it has been delivered, so a late
// cancel never reaches someone else's query.
class CancelTarget {
 public:
  using Target = std::pair<server::Endpoint, protocol::BackendKeyData>;
  void set(const server::Endpoint& endpoint, protocol::BackendKeyData key);
  void clear();
  // The current target, counted as one cancel in flight; nullopt when the client holds no server.
  std::optional<Target> begin_cancel();
  void end_cancel() { in_flight_.fetch_sub(1, std::memory_order_acq_rel); }
  int cancels_in_flight() const { return in_flight_.load(std::memory_order_acquire); }

 private:
  // A spin lock, not a mutex: the session takes it twice per transaction (set, clear) and a cancel request rarely,
  // each time for a few stores or one copy; a std::mutex cost 40 bytes per client and a pthread call each time.
  struct Guard {
    explicit Guard(std::atomic_flag& f) : flag(f) {
      while (flag.test_and_set(std::memory_order_acquire)) std::this_thread::yield();
    }
    ~Guard() { flag.clear(std::memory_order_release); }
    std::atomic_flag& flag;
  };
  std::atomic_flag busy_;
  bool held_ = false;  // target_ is the client's server now
  std::atomic<int> in_flight_{0};
  // The server last set, kept after clear(): a client in transaction mode often gets the same one back, which
  // then costs no copy.
  Target target_;
};

class CancelMap {
 public:
  // Issues a unique BackendKeyData for a client and registers its target.
  protocol::BackendKeyData issue(const std::shared_ptr<CancelTarget>& target);
  void remove(const protocol::BackendKeyData& key);
  // The target for a CancelRequest, when the key matches a live client (secret compared in constant time).
  std::shared_ptr<CancelTarget> find(const protocol::BackendKeyData& key) const;

 private:
  mutable std::mutex mutex_;
  // One entry per logged-in client, for as long as it is connected: in the slab (see core/slab.hpp).
  using Entry = std::pair<const std::uint32_t, std::pair<std::uint32_t, std::weak_ptr<CancelTarget>>>;
  std::unordered_map<std::uint32_t, std::pair<std::uint32_t, std::weak_ptr<CancelTarget>>, std::hash<std::uint32_t>,
                     std::equal_to<>, core::slab::Allocator<Entry>>
      entries_;
  // Keys are drawn from the CSPRNG a batch at a time: one RAND_bytes call costs thousands of instructions (and a
  // getpid for its fork check), more than the rest of a key's issue.
  std::array<std::uint32_t, 64> random_{};
  std::size_t random_left_ = 0;
  std::uint32_t next_random_locked(const void* salt);
};

// What pgweir knows of a client's secret, for logging in to servers as that client.
struct ClientCredentials {
  std::optional<std::string> password;                        // plain, from users_file
  std::optional<std::string> md5_secret;                      // "md5…"
  std::optional<std::pair<auth::Key, auth::Key>> scram_keys;  // ClientKey, ServerKey of its SCRAM exchange
  bool operator==(const ClientCredentials&) const = default;
  bool empty() const { return !password && !md5_secret && !scram_keys; }
};

class Router {
 public:
  Router(std::shared_ptr<const Settings> settings, metrics::Metrics& metrics);
  metrics::Metrics& metrics() { return metrics_; }

  std::shared_ptr<const Settings> settings() const { return settings_.load(std::memory_order_acquire); }
  // Swaps in new settings and reconciles pools: changed ones updated (a changed DSN closes old connections as
  // they come back), pools of removed databases closed.
  void apply(std::shared_ptr<const Settings> settings);

  // The pool for a client, created on first use. nullptr when the database is not configured.
  // `credentials`: what the client's login revealed of its secret; the pool keeps the latest non-empty one.
  std::shared_ptr<pool::Pool> pool_for(const std::string& database, const std::string& user,
                                       const ClientCredentials& credentials);

  std::vector<std::shared_ptr<pool::Pool>> pools() const;
  CancelMap& cancels() { return cancels_; }

  // Periodic upkeep of every pool; spawns min_idle connections on `executor`.
  void maintain(net::Executor executor);

 private:
  struct PoolEntry {
    std::shared_ptr<pool::Pool> pool;
    std::string database_entry;  // which [databases.X] it came from
    ClientCredentials credentials;
  };
  server::LoginSpec make_spec(const Settings& s, const config::DatabaseConfig& db, const std::string& database,
                              const std::string& user, const ClientCredentials& credentials) const;

  std::atomic<std::shared_ptr<const Settings>> settings_;
  mutable std::mutex mutex_;
  std::map<pool::PoolKey, PoolEntry> pools_;
  pool::ConnectionCaps caps_;
  CancelMap cancels_;
  metrics::Metrics& metrics_;
};

}  // namespace pgweir::router
