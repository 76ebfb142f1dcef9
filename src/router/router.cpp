// Router: settings snapshot and reload reconciliation, pool lookup, cancel map.
#include "pgweir/router/router.hpp"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <fstream>
#include <utility>
#include <sstream>

#include "pgweir/core/log.hpp"

namespace pgweir::router {

// ---------------------------------------------------------------------------------------------
// Loading

LoadedSettings load_settings(const std::string& path) {
  LoadedSettings out;
  auto loaded = config::load_file(path);
  if (!loaded.errors.empty()) {
    out.errors = std::move(loaded.errors);
    return out;
  }
  auto settings = std::make_shared<Settings>();
  settings->config = loaded.config;
  const auto& cfg = *settings->config;
  if (!cfg.auth.users_file.empty()) {
    std::ifstream in(cfg.auth.users_file, std::ios::binary);
    if (!in) {
      out.errors.push_back({cfg.auth.users_file, 0, 0, "cannot read auth.users_file"});
    } else {
      std::stringstream text;
      text << in.rdbuf();
      auto users = std::make_shared<auth::UsersFile>(auth::parse_users_file(text.str()));
      for (const auto& e : users->errors) out.errors.push_back({cfg.auth.users_file, e.line, e.column, e.message});
      settings->users = std::move(users);
    }
  }
  if (!cfg.auth.hba_file.empty()) {
    std::ifstream in(cfg.auth.hba_file, std::ios::binary);
    if (!in) {
      out.errors.push_back({cfg.auth.hba_file, 0, 0, "cannot read auth.hba_file"});
    } else {
      std::stringstream text;
      text << in.rdbuf();
      auto hba = std::make_shared<hba::HbaFile>(hba::parse(text.str()));
      // A file with any bad line is refused whole: skipping a bad reject rule would let clients in.
      for (const auto& e : hba->errors) out.errors.push_back({cfg.auth.hba_file, e.line, e.column, e.message});
      settings->hba = std::move(hba);
    }
  }
  if (tls::tls_offered(cfg.tls.mode)) {
    auto ctx = tls::make_server_context(cfg.tls);
    if (!ctx) {
      out.errors.push_back({cfg.path, 0, 0, "[tls]: " + ctx.error().message});
    } else {
      settings->client_tls = std::move(*ctx);
    }
  }
  for (const auto& [name, db] : cfg.databases) {
    auto ctx = tls::make_client_context(db.target);
    if (!ctx) {
      out.errors.push_back({cfg.path, 0, 0, "[databases." + name + "] dsn: " + ctx.error().message});
    } else {
      settings->server_tls.emplace(name, std::move(*ctx));
    }
  }
  if (out.errors.empty()) out.settings = std::move(settings);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Cancel

void CancelTarget::set(const server::Endpoint& endpoint, protocol::BackendKeyData key) {
  Guard guard(busy_);
  if (target_.second != key || target_.first != endpoint) target_ = Target(endpoint, key);
  held_ = true;
}

void CancelTarget::clear() {
  Guard guard(busy_);
  held_ = false;
}

std::optional<CancelTarget::Target> CancelTarget::begin_cancel() {
  Guard guard(busy_);
  if (!held_) return std::nullopt;
  // Counted before the lock is let go: a detach() that clears after this sees the cancel in flight.
  in_flight_.fetch_add(1, std::memory_order_acq_rel);
  return target_;
}

protocol::BackendKeyData CancelMap::issue(const std::shared_ptr<CancelTarget>& target) {
  protocol::BackendKeyData key;
  std::lock_guard lock(mutex_);
  for (;;) {
    key.process_id = next_random_locked(target.get()) & 0x7fffffff;  // positive, as PostgreSQL's PIDs
    key.secret_key = next_random_locked(target.get());
    if (key.process_id != 0 && !entries_.contains(key.process_id)) break;
  }
  entries_.emplace(key.process_id, std::pair{key.secret_key, std::weak_ptr<CancelTarget>(target)});
  return key;
}

std::uint32_t CancelMap::next_random_locked(const void* salt) {
  if (random_left_ == 0) {
    if (RAND_bytes(reinterpret_cast<unsigned char*>(random_.data()), sizeof random_) != 1) {
      // The RNG failing is not a reason to refuse clients; fall back to a counter-based key that is still unique.
      static std::uint32_t counter = 0;
      return ++counter ^ static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(salt));
    }
    random_left_ = random_.size();
  }
  // Handed out once: the word is cleared as it is taken.
  return std::exchange(random_[--random_left_], 0);
}

void CancelMap::remove(const protocol::BackendKeyData& key) {
  std::lock_guard lock(mutex_);
  entries_.erase(key.process_id);
}

std::shared_ptr<CancelTarget> CancelMap::find(const protocol::BackendKeyData& key) const {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(key.process_id);
  if (it == entries_.end()) return nullptr;
  if (CRYPTO_memcmp(&it->second.first, &key.secret_key, sizeof key.secret_key) != 0) return nullptr;
  return it->second.second.lock();
}

// ---------------------------------------------------------------------------------------------
// Router

Router::Router(std::shared_ptr<const Settings> settings, metrics::Metrics& metrics)
    : settings_(std::move(settings)), metrics_(metrics) {}

server::LoginSpec Router::make_spec(const Settings& s, const config::DatabaseConfig& db, const std::string& database,
                                    const std::string& user, const ClientCredentials& credentials) const {
  server::LoginSpec spec;
  const auto& dsn = db.target;
  std::vector<std::string> hosts = dsn.hosts;
  if (hosts.empty()) hosts.push_back("/var/run/postgresql");
  for (std::size_t i = 0; i < hosts.size(); ++i) {
    std::uint16_t port = 5432;
    if (dsn.ports.size() == 1) {
      port = dsn.ports[0];
    } else if (i < dsn.ports.size()) {
      port = dsn.ports[i];
    }
    spec.endpoints.push_back({hosts[i], port});
  }
  auto mode = tls::parse_ssl_mode(dsn.sslmode);
  spec.ssl_mode = mode ? *mode : tls::ServerSslMode::prefer;
  if (auto it = s.server_tls.find(db.name); it != s.server_tls.end()) spec.tls = it->second;
  if (!dsn.user.empty()) {
    spec.user = dsn.user;
    if (!dsn.password.empty()) {
      spec.password = dsn.password;
    } else if (db.password) {
      spec.password = db.password;
    }
  } else {
    spec.user = user;
    if (db.password) {
      spec.password = db.password;
    } else if (!dsn.password.empty()) {
      spec.password = dsn.password;
    } else {
      spec.password = credentials.password;
      spec.md5_secret = credentials.md5_secret;
      spec.scram_keys = credentials.scram_keys;
    }
  }
  spec.database = dsn.dbname.empty() ? database : dsn.dbname;
  auto settings = s.config->pool_settings(database, user);
  spec.connect_timeout = settings.connect_timeout;
  if (dsn.connect_timeout_seconds > 0) spec.connect_timeout = std::chrono::seconds(dsn.connect_timeout_seconds);
  return spec;
}

std::shared_ptr<pool::Pool> Router::pool_for(const std::string& database, const std::string& user,
                                             const ClientCredentials& credentials) {
  auto s = settings();
  const auto* db = s->config->find_database(database);
  if (!db) return nullptr;
  pool::PoolKey key{database, user};
  std::lock_guard lock(mutex_);
  auto it = pools_.find(key);
  if (it != pools_.end() && !it->second.pool->is_closed()) {
    if (it->second.credentials == credentials || credentials.empty()) return it->second.pool;
    // New or changed client secrets (users_file edited, or the first SCRAM login): new server logins use them.
    // Connections already open stay: they are logged in.
    it->second.credentials = credentials;
    it->second.pool->update(*it->second.pool->settings(), make_spec(*s, *db, database, user, credentials), false);
    return it->second.pool;
  }
  auto pool = std::make_shared<pool::Pool>(key, s->config->pool_settings(database, user),
                                           make_spec(*s, *db, database, user, credentials), caps_,
                                           metrics_.for_pool(database, user), &metrics_);
  pools_[key] = PoolEntry{pool, db->name, credentials};
  return pool;
}

void Router::apply(std::shared_ptr<const Settings> settings) {
  auto old = this->settings();
  settings_.store(settings, std::memory_order_release);
  std::lock_guard lock(mutex_);
  for (auto it = pools_.begin(); it != pools_.end();) {
    auto& [key, entry] = *it;
    const auto* db = settings->config->find_database(key.database);
    if (!db) {
      log::info("pool_removed", {{"pool", key.to_string()}});
      entry.pool->close();
      it = pools_.erase(it);
      continue;
    }
    auto new_spec = make_spec(*settings, *db, key.database, key.user, entry.credentials);
    const auto* old_db = old->config->find_database(key.database);
    bool changed = !old_db || old_db->name != db->name || !(*old_db == *db);
    auto new_settings = settings->config->pool_settings(key.database, key.user);
    if (changed || !(new_settings == *entry.pool->settings())) {
      entry.pool->update(new_settings, std::move(new_spec), changed);
      entry.database_entry = db->name;
    }
    ++it;
  }
}

std::vector<std::shared_ptr<pool::Pool>> Router::pools() const {
  std::lock_guard lock(mutex_);
  std::vector<std::shared_ptr<pool::Pool>> out;
  out.reserve(pools_.size());
  for (const auto& [k, e] : pools_) out.push_back(e.pool);
  return out;
}

void Router::maintain(net::Executor executor) {
  auto now = net::Clock::now();
  for (const auto& pool : pools()) {
    int deficit = pool->maintain(now);
    for (int i = 0; i < deficit; ++i) net::asio::co_spawn(executor, pool->prefill(executor), net::asio::detached);
  }
  // A pool whose waiters are held back by max_db_connections/max_user_connections gets room from idle
  // connections of sibling pools.
  auto all = pools();
  for (const auto& pool : all) {
    if (!pool->has_waiters()) continue;
    const auto settings = pool->settings();
    const auto& s = *settings;
    if (s.max_db_connections == 0 && s.max_user_connections == 0) continue;
    for (const auto& other : all) {
      if (other == pool) continue;
      bool shares = (s.max_db_connections > 0 && other->key().database == pool->key().database) ||
                    (s.max_user_connections > 0 && other->key().user == pool->key().user);
      if (shares && other->evict_one_idle()) break;
    }
    pool->maintain(now);
  }
}

}  // namespace pgweir::router
