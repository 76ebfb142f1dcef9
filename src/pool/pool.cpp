// Pool: lending server connections, queued waiters with direct hand-off (same event loop first), slot accounting
// under shared caps, upkeep.
#include "pgweir/pool/pool.hpp"

#include <algorithm>

#include "pgweir/core/limits.hpp"
#include "pgweir/core/log.hpp"
#include "pgweir/protocol/messages.hpp"

namespace pgweir::pool {
namespace asio = boost::asio;

// ---------------------------------------------------------------------------------------------
// ConnectionCaps

bool ConnectionCaps::try_reserve(const std::string& database, const std::string& user, int max_db, int max_user) {
  std::lock_guard lock(mutex_);
  int& db = per_db_[database];
  int& us = per_user_[user];
  if ((max_db > 0 && db >= max_db) || (max_user > 0 && us >= max_user)) return false;
  ++db;
  ++us;
  return true;
}

void ConnectionCaps::release(const std::string& database, const std::string& user) {
  std::lock_guard lock(mutex_);
  if (auto it = per_db_.find(database); it != per_db_.end() && it->second > 0) --it->second;
  if (auto it = per_user_.find(user); it != per_user_.end() && it->second > 0) --it->second;
}

// ---------------------------------------------------------------------------------------------
// Lease

Lease::Lease(std::shared_ptr<Pool> pool, std::unique_ptr<server::ServerConnection> conn)
    : pool_(std::move(pool)), conn_(std::move(conn)) {}

Lease& Lease::operator=(Lease&& o) noexcept {
  if (this != &o) {
    close();
    pool_ = std::move(o.pool_);
    conn_ = std::move(o.conn_);
  }
  return *this;
}

Lease::~Lease() { close(); }

void Lease::give_back() { give_back(net::Clock::now()); }

void Lease::give_back(net::TimePoint now) {
  if (conn_) pool_->give_back(std::move(conn_), now);
}

void Lease::close() {
  if (!conn_) return;
  {
    std::lock_guard lock(pool_->mutex_);
    --pool_->active_;
    conn_->lent_hook.unlink();
  }
  pool_->discard(std::move(conn_));
}

// ---------------------------------------------------------------------------------------------
// Pool

void Pool::wake(const std::shared_ptr<Waiter>& w) {
  if (w->executor.running_in_this_thread()) {
    w->wake.notify();  // under the pool's lock: the waiter runs later, from the queue
  } else {
    // On the waiter's loop, from the queue and holding no lock, the waiter can run at once: notify() would queue
    // it a second time.
    asio::post(w->executor, [w, seq = w->seq] {
      if (w->seq == seq) w->wake.notify_here();
    });
  }
}

namespace {

// Arms the waiter's deadline timer for the wait in progress, unless it is armed for that deadline or earlier.
// On the waiter's event loop, outside the pool's lock (arming the loop's earliest timer costs a timerfd_settime).
void watch_deadline(const std::shared_ptr<Waiter>& w) {
  if (w->deadline == net::TimePoint::max() || (w->timer_armed && w->deadline_timer.expiry() <= w->deadline)) return;
  w->timer_armed = true;
  w->deadline_timer.expires_at(w->deadline);
  w->deadline_timer.async_wait([weak = std::weak_ptr<Waiter>(w)](const boost::system::error_code& ec) {
    if (ec) return;  // re-armed, or the waiter (and its timer) is gone
    auto waiter = weak.lock();
    if (!waiter) return;
    waiter->timer_armed = false;
    if (!waiter->waiting) return;
    if (net::Clock::now() >= waiter->deadline) {
      waiter->wake.notify();  // woken by none of the others: Pool::acquire counts it a timeout
    } else {
      watch_deadline(waiter);  // armed for an earlier wait's deadline
    }
  });
}

}  // namespace

Pool::Pool(PoolKey key, config::PoolSettings settings, server::LoginSpec spec, ConnectionCaps& caps,
           metrics::PoolCells cells, metrics::Metrics* metrics)
    : key_(std::move(key)),
      caps_(caps),
      settings_(std::make_shared<const config::PoolSettings>(std::move(settings))),
      spec_(std::move(spec)),
      cells_(cells),
      metrics_(metrics) {}

Pool::~Pool() {
  for (auto& c : idle_) c->terminate();
}

bool Pool::try_reserve_locked() {
  if (closed_) return false;
  if (total_ >= settings_->size + settings_->max_overflow) return false;
  if (!caps_.try_reserve(key_.database, key_.user, settings_->max_db_connections, settings_->max_user_connections))
    return false;
  ++total_;
  return true;
}

void Pool::release_slot_locked() {
  --total_;
  caps_.release(key_.database, key_.user);
}

void Pool::slot_freed_locked() {
  while (!waiters_.empty() && !paused_) {
    if (!try_reserve_locked()) return;
    auto w = std::move(waiters_.front());
    waiters_.pop_front();
    w->slot = true;
    ++connecting_;
    wake(w);
    return;
  }
}

std::shared_ptr<Waiter> Pool::take_waiter_locked(const net::Executor& executor) {
  auto chosen = waiters_.begin();
  auto limit = waiters_.begin() + static_cast<std::ptrdiff_t>(std::min(waiters_.size(), limits::k_waiter_scan));
  for (auto it = waiters_.begin(); it != limit; ++it) {
    if ((*it)->executor == executor) {
      chosen = it;
      break;
    }
    if ((*it)->bypassed >= limits::k_max_waiter_bypass) break;  // its turn: it goes first, on whatever loop
  }
  for (auto it = waiters_.begin(); it != chosen; ++it) ++(*it)->bypassed;
  auto w = std::move(*chosen);
  waiters_.erase(chosen);
  return w;
}

std::unique_ptr<server::ServerConnection> Pool::take_idle_locked(const net::Executor& executor,
                                                                 const std::string& signature, bool any_signature) {
  // Most recently used first: it is warm, and the least used ones age out under idle_timeout.
  auto best = idle_.end();
  for (auto it = idle_.end(); it != idle_.begin();) {
    --it;
    if (!any_signature && (*it)->signature() != signature) continue;
    if ((*it)->transport().executor() == executor) {
      best = it;
      break;
    }
    if (best == idle_.end()) best = it;
  }
  if (best == idle_.end()) return nullptr;
  auto conn = std::move(*best);
  idle_.erase(best);
  return conn;
}

net::Task<AcquireResult> Pool::open_with_slot(net::Executor executor, server::StartupParams parameters) {
  server::LoginSpec spec;
  std::uint64_t generation;
  {
    std::lock_guard lock(mutex_);
    spec = spec_;
    generation = generation_;
  }
  spec.parameters = std::move(parameters);
  auto result = co_await server::connect(spec, executor);
  std::unique_lock lock(mutex_);
  --connecting_;
  if (auto* err = std::get_if<server::ConnectError>(&result)) {
    stats_.connect_errors.fetch_add(1, std::memory_order_relaxed);
    if (metrics_) metrics_->server_connect_error(key_.database, key_.user, server::to_string(err->kind)).inc();
    release_slot_locked();
    slot_freed_locked();
    co_return AcquireError{AcquireFailure::connect_failed, std::move(*err)};
  }
  auto conn = std::move(std::get<0>(result));
  conn->set_generation(generation);
  if (generation == generation_) {
    // One entry per set of startup parameters seen; clients that vary theirs (options=...) could grow it for ever.
    if (welcome_.size() >= limits::k_welcome_sets && !welcome_.contains(conn->signature())) welcome_.clear();
    welcome_[conn->signature()] = WelcomeSource{conn->parameters(), {}};
  }
  ++active_;
  lent_.push_back(*conn);
  lock.unlock();
  log::debug("server_connected", {{"pool", key_.to_string()}, {"server_id", conn->id()},
                                  {"server", conn->endpoint().to_string()}});
  co_return Lease(shared_from_this(), std::move(conn));
}

std::optional<Pool::Welcome> Pool::welcome(const std::string& signature, std::string_view application_name) {
  std::lock_guard lock(mutex_);
  auto it = welcome_.find(signature);
  if (it == welcome_.end()) return std::nullopt;
  auto& last = it->second.last;
  if (last.parameters) {
    auto app = last.parameters->values.find("application_name");
    if (app != last.parameters->values.end() && app->second == application_name) return last;
  }
  auto values = it->second.values;
  values["application_name"] = application_name;
  auto messages = std::make_shared<std::string>();
  for (const auto& [k, v] : values) protocol::append_parameter_status(*messages, k, v);
  last = Welcome{shared_parameters_locked(values), std::move(messages)};
  return last;
}

std::shared_ptr<const server::ParameterSet> Pool::shared_parameters(const server::ParamMap& values) {
  std::lock_guard lock(mutex_);
  return shared_parameters_locked(values);
}

std::shared_ptr<const server::ParameterSet> Pool::shared_parameters_locked(const server::ParamMap& values) {
  std::size_t hash = 0;
  for (const auto& [k, v] : values) {
    hash = hash * 31 + std::hash<std::string>{}(k);
    hash = hash * 31 + std::hash<std::string>{}(v);
  }
  auto [first, last] = parameter_sets_.equal_range(hash);
  for (auto it = first; it != last; ++it) {
    if (auto set = it->second.lock(); set && set->values == values) return set;
  }
  if (parameter_sets_.size() >= parameter_sets_sweep_at_) {
    // Clients with values of their own (a unique application_name each, say) leave sets nobody holds any more.
    std::erase_if(parameter_sets_, [](const auto& entry) { return entry.second.expired(); });
    parameter_sets_sweep_at_ = std::max<std::size_t>(64, 2 * parameter_sets_.size());
  }
  auto set = std::make_shared<const server::ParameterSet>(
      server::ParameterSet{values, server::tracked_fingerprint(values)});
  parameter_sets_.emplace(hash, set);
  return set;
}

std::optional<Lease> Pool::try_lend(const net::Executor& executor, const std::string& signature,
                                    net::TimePoint now) {
  std::unique_lock lock(mutex_);
  if (closed_ || paused_ || !waiters_.empty() || idle_.empty()) return std::nullopt;
  // The most recently used connection on the client's own thread: lending it needs no move between event loops.
  auto it = idle_.end();
  do {
    --it;
  } while (it != idle_.begin() && (*it)->transport().executor() != executor);
  auto& conn = *it;
  auto idle_for = now - conn->idle_since();
  if (conn->signature() != signature || conn->generation() != generation_ ||
      (settings_->max_lifetime.count() > 0 && now - conn->created_at() >= settings_->max_lifetime) ||
      (settings_->pre_ping.count() > 0 && idle_for >= settings_->pre_ping) ||
      conn->transport().executor() != executor)
    return std::nullopt;
  auto lent = std::move(conn);
  idle_.erase(it);
  ++active_;
  lent_.push_back(*lent);
  lock.unlock();
  Lease lease(shared_from_this(), std::move(lent));
  // The peek acquire() makes, made here: on the client's own loop (the connection is on it) and outside the lock.
  // A server gone while idle is closed, and the caller takes acquire()'s way to another.
  if (idle_for >= limits::k_idle_check_after && !lease->transport().idle_and_open()) {
    lease.close();
    return std::nullopt;
  }
  return lease;
}

net::Task<AcquireResult> Pool::acquire(net::Executor executor, const server::StartupParams& parameters,
                                       const std::string& signature, std::shared_ptr<Waiter> own, bool woken) {
  std::shared_ptr<Waiter> waiter;
  if (woken) waiter = own;
  for (;;) {
    std::unique_lock lock(mutex_);
    std::unique_ptr<server::ServerConnection> conn;
    if (closed_) {
      if (waiter && waiter->handed) {
        conn = std::move(waiter->handed);
        --active_;
        conn->lent_hook.unlink();
        lock.unlock();
        discard(std::move(conn));
      }
      co_return AcquireError{AcquireFailure::closed, {}};
    }
    if (waiter) {
      // Woken: by a hand-off, a reserved slot, the pool closing, or the deadline.
      if (waiter->handed) {
        conn = std::move(waiter->handed);  // counted active and lent by the giver: taken back like an idle one
        --active_;
        conn->lent_hook.unlink();
      } else if (waiter->slot) {
        lock.unlock();
        co_return co_await open_with_slot(executor, parameters);
      } else if (waiter->failed) {
        co_return AcquireError{AcquireFailure::closed, {}};
      } else if (waiter->retry) {
        waiter.reset();
        continue;
      } else {
        waiters_.erase(std::remove(waiters_.begin(), waiters_.end(), waiter), waiters_.end());
        ++timeouts_;
        co_return AcquireError{AcquireFailure::timeout, {}};
      }
      waiter.reset();
    }
    if (!conn && paused_) {
      // PAUSE: queue without touching idle connections or opening new ones; resume() wakes the queue.
    } else {
      if (!conn) conn = take_idle_locked(executor, signature, false);
    }
    if (!conn && !paused_ && try_reserve_locked()) {
      ++connecting_;
      lock.unlock();
      co_return co_await open_with_slot(executor, parameters);
    }
    if (!conn && !paused_) conn = take_idle_locked(executor, signature, true);
    if (conn) {
      if (conn->signature() != signature || conn->generation() != generation_) {
        // Logged in with other startup parameters (or an old DSN): replace it with one that fits, in its slot.
        ++connecting_;
        lock.unlock();
        conn->terminate();
        co_return co_await open_with_slot(executor, parameters);
      }
      auto now = net::Clock::now();
      bool expired = (settings_->max_lifetime.count() > 0 && now - conn->created_at() >= settings_->max_lifetime) ||
                     (now - conn->idle_since() >= limits::k_idle_check_after && !conn->transport().idle_and_open());
      bool ping = !expired && settings_->pre_ping.count() > 0 && now - conn->idle_since() >= settings_->pre_ping;
      auto ping_timeout = settings_->connect_timeout.count() > 0 ? settings_->connect_timeout : std::chrono::seconds(10);
      if (expired) {
        release_slot_locked();
        lock.unlock();
        conn->terminate();
        lock.lock();
        slot_freed_locked();
        continue;
      }
      ping ? ++testing_ : ++active_;
      if (!ping) lent_.push_back(*conn);
      lock.unlock();
      conn->transport().rehome(executor);
      if (ping) {
        auto ok = co_await conn->run_control_query("", ping_timeout);
        lock.lock();
        --testing_;
        if (!ok || conn->transaction_status() != 'I') {
          log::info("server_ping_failed", {{"pool", key_.to_string()}, {"server_id", conn->id()},
                                           {"error", ok ? std::string("not idle") : ok.error().message}});
          release_slot_locked();
          slot_freed_locked();
          lock.unlock();
          conn->terminate();
          continue;
        }
        ++active_;
        lent_.push_back(*conn);
        lock.unlock();
      }
      co_return Lease(shared_from_this(), std::move(conn));
    }
    // Wait for a hand-off or for room.
    waiter = own ? own : std::make_shared<Waiter>(executor);
    queue_locked(waiter);
    lock.unlock();
    watch_deadline(waiter);
    co_await waiter->wake.wait();
    waited(*waiter);
  }
}

void Pool::queue_locked(const std::shared_ptr<Waiter>& waiter) {
  ++waiter->seq;
  waiter->handed.reset();
  waiter->slot = waiter->failed = waiter->retry = false;
  waiter->bypassed = 0;
  waiter->since = net::Clock::now();
  waiter->deadline = settings_->timeout.count() > 0 ? waiter->since + settings_->timeout : net::TimePoint::max();
  waiter->waiting = true;
  waiters_.push_back(waiter);
}

void Pool::waited(Waiter& waiter) {
  waiter.waiting = false;
  auto waited = std::chrono::duration_cast<std::chrono::microseconds>(net::Clock::now() - waiter.since);
  stats_.waits.fetch_add(1, std::memory_order_relaxed);
  stats_.wait_time_us.fetch_add(static_cast<std::uint64_t>(waited.count()), std::memory_order_relaxed);
  cells_.wait.observe(static_cast<double>(waited.count()) / 1e6);
}

bool Pool::enqueue(const std::shared_ptr<Waiter>& waiter) {
  {
    std::lock_guard lock(mutex_);
    if (closed_ || paused_ || !idle_.empty() || total_ < settings_->size + settings_->max_overflow) return false;
    queue_locked(waiter);
  }
  watch_deadline(waiter);
  return true;
}

std::optional<Lease> Pool::claim(Waiter& waiter, const net::Executor& executor, const std::string& signature) {
  waited(waiter);
  std::unique_lock lock(mutex_);
  auto& conn = waiter.handed;
  if (closed_ || !conn || conn->signature() != signature || conn->generation() != generation_) return std::nullopt;
  auto now = net::Clock::now();
  auto idle_for = now - conn->idle_since();
  if (idle_for >= limits::k_idle_check_after ||
      (settings_->max_lifetime.count() > 0 && now - conn->created_at() >= settings_->max_lifetime) ||
      (settings_->pre_ping.count() > 0 && idle_for >= settings_->pre_ping))
    return std::nullopt;
  auto lent = std::move(conn);  // counted active and lent by the giver
  lock.unlock();
  lent->transport().rehome(executor);
  return Lease(shared_from_this(), std::move(lent));
}

void Pool::give_back(std::unique_ptr<server::ServerConnection> conn, net::TimePoint now) {
  std::unique_lock lock(mutex_);
  --active_;
  conn->lent_hook.unlink();
  bool expired = settings_->max_lifetime.count() > 0 && now - conn->created_at() >= settings_->max_lifetime;
  if (closed_ || expired || conn->generation() != generation_) {
    lock.unlock();
    discard(std::move(conn));
    return;
  }
  conn->mark_idle(now);
  if (!waiters_.empty() && !paused_) {
    auto w = take_waiter_locked(conn->transport().executor());
    ++active_;
    lent_.push_back(*conn);
    w->handed = std::move(conn);
    wake(w);
    return;
  }
  idle_.push_back(std::move(conn));
}

void Pool::discard(std::unique_ptr<server::ServerConnection> conn) {
  {
    std::lock_guard lock(mutex_);
    release_slot_locked();
    slot_freed_locked();
  }
  log::debug("server_closed", {{"pool", key_.to_string()}, {"server_id", conn->id()}});
  conn->terminate();
}

void Pool::update(config::PoolSettings settings, server::LoginSpec spec, bool spec_changed) {
  std::vector<std::unique_ptr<server::ServerConnection>> stale;
  {
    std::lock_guard lock(mutex_);
    settings_ = std::make_shared<const config::PoolSettings>(std::move(settings));
    spec_ = std::move(spec);
    if (spec_changed) {
      ++generation_;
      welcome_.clear();
      stale.swap(idle_);
      for (std::size_t i = 0; i < stale.size(); ++i) release_slot_locked();
    }
    // A larger pool may have room for waiters now.
    while (!waiters_.empty() && !paused_ && try_reserve_locked()) {
      auto w = std::move(waiters_.front());
      waiters_.pop_front();
      w->slot = true;
      ++connecting_;
      wake(w);
    }
  }
  for (auto& c : stale) c->terminate();
}

void Pool::close() {
  std::vector<std::unique_ptr<server::ServerConnection>> stale;
  std::deque<std::shared_ptr<Waiter>> waiters;
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
    stale.swap(idle_);
    for (std::size_t i = 0; i < stale.size(); ++i) release_slot_locked();
    waiters.swap(waiters_);
    for (auto& w : waiters) {
      w->failed = true;
      wake(w);
    }
  }
  for (auto& c : stale) c->terminate();
}

void Pool::reconnect() {
  std::vector<std::unique_ptr<server::ServerConnection>> stale;
  {
    std::lock_guard lock(mutex_);
    ++generation_;
    welcome_.clear();
    stale.swap(idle_);
    for (std::size_t i = 0; i < stale.size(); ++i) release_slot_locked();
    slot_freed_locked();
  }
  for (auto& c : stale) c->terminate();
}

PoolSnapshot Pool::snapshot() const {
  std::lock_guard lock(mutex_);
  PoolSnapshot s;
  s.key = key_;
  s.settings = *settings_;
  s.idle = static_cast<int>(idle_.size());
  s.active = active_;
  s.connecting = connecting_;
  s.testing = testing_;
  s.waiting = static_cast<int>(waiters_.size());
  s.total = total_;
  s.timeouts = timeouts_;
  s.clients = clients_.load(std::memory_order_relaxed);
  s.paused = paused_;
  if (!waiters_.empty())
    s.max_wait = std::chrono::duration_cast<std::chrono::microseconds>(net::Clock::now() - waiters_.front()->since);
  return s;
}

std::shared_ptr<const config::PoolSettings> Pool::settings() const {
  std::lock_guard lock(mutex_);
  return settings_;
}

server::LoginSpec Pool::login_spec() const {
  std::lock_guard lock(mutex_);
  return spec_;
}

bool Pool::is_closed() const {
  std::lock_guard lock(mutex_);
  return closed_;
}

bool Pool::has_waiters() const {
  std::lock_guard lock(mutex_);
  return !waiters_.empty();
}

int Pool::maintain(net::TimePoint now) {
  std::vector<std::unique_ptr<server::ServerConnection>> stale;
  int deficit = 0;
  {
    std::lock_guard lock(mutex_);
    // Oldest-idle first; idle_ is ordered by last use.
    for (auto it = idle_.begin(); it != idle_.end();) {
      auto& c = *it;
      bool idle_expired = settings_->idle_timeout.count() > 0 && now - c->idle_since() >= settings_->idle_timeout &&
                          total_ > settings_->min_idle;
      bool too_old = settings_->max_lifetime.count() > 0 && now - c->created_at() >= settings_->max_lifetime;
      if (idle_expired || too_old || c->generation() != generation_) {
        stale.push_back(std::move(c));
        it = idle_.erase(it);
        release_slot_locked();
      } else {
        ++it;
      }
    }
    // Room freed elsewhere (a shared cap) goes to waiters.
    while (!waiters_.empty() && !paused_ && try_reserve_locked()) {
      auto w = std::move(waiters_.front());
      waiters_.pop_front();
      w->slot = true;
      ++connecting_;
      wake(w);
    }
    if (!closed_) deficit = std::max(0, settings_->min_idle - total_);
  }
  for (auto& c : stale) {
    log::debug("server_closed", {{"pool", key_.to_string()}, {"server_id", c->id()}, {"reason", "idle_or_lifetime"}});
    c->terminate();
  }
  return deficit;
}

net::Task<void> Pool::prefill(net::Executor executor) {
  {
    std::lock_guard lock(mutex_);
    if (total_ >= settings_->min_idle || !try_reserve_locked()) co_return;
    ++connecting_;
  }
  auto result = co_await open_with_slot(executor, {});
  if (auto* lease = std::get_if<Lease>(&result)) lease->give_back();
}

std::shared_ptr<const server::Statement> Pool::statement(std::string_view query, std::string_view param_types) {
  std::string key;
  key.reserve(query.size() + 1 + param_types.size());
  key.append(query).push_back('\0');
  key.append(param_types);
  std::lock_guard lock(statements_mutex_);
  auto& slot = statements_[key];
  if (auto existing = slot.lock()) return existing;
  auto s = std::make_shared<server::Statement>();
  s->id = next_statement_id_++;
  s->name = "pgweir_" + std::to_string(s->id);
  s->query.assign(query);
  s->param_types.assign(param_types);
  slot = s;
  // Drop entries no client uses any more, now and then, so the map does not grow without bound.
  if (statements_.size() > 1024 && s->id % 1024 == 0) {
    std::erase_if(statements_, [](const auto& kv) { return kv.second.expired(); });
  }
  return s;
}

void Pool::pause() {
  std::lock_guard lock(mutex_);
  paused_ = true;
}

void Pool::resume() {
  std::deque<std::shared_ptr<Waiter>> queued;
  {
    std::lock_guard lock(mutex_);
    if (!paused_) return;
    paused_ = false;
    // Waiters retry from the top: idle connections first, then room to open new ones.
    queued.swap(waiters_);
    for (auto& w : queued) {
      w->retry = true;
      wake(w);
    }
  }
}

std::vector<ServerInfo> Pool::servers() const {
  std::vector<ServerInfo> out;
  std::lock_guard lock(mutex_);
  auto add = [&](const server::ServerConnection& c, const char* state) {
    ServerInfo i;
    i.id = c.id();
    i.state = state;
    i.host = c.endpoint().host;
    i.port = c.endpoint().port;
    i.remote_pid = static_cast<int>(c.backend_key().process_id);
    i.connect_time = c.created_at();
    i.request_time = c.idle_since();
    i.close_needed = c.generation() != generation_;
    out.push_back(std::move(i));
  };
  for (const auto& c : lent_) add(c, "active");
  for (const auto& c : idle_) add(*c, "idle");
  return out;
}

bool Pool::evict_one_idle() {
  std::unique_ptr<server::ServerConnection> victim;
  {
    std::lock_guard lock(mutex_);
    if (idle_.empty()) return false;
    victim = std::move(idle_.front());
    idle_.erase(idle_.begin());
    release_slot_locked();
  }
  victim->terminate();
  return true;
}

}  // namespace pgweir::pool
