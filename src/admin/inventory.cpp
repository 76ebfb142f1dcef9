// The console's data helpers: stats totals and period averages, and the rows SHOW DATABASES, USERS and CONFIG take
// straight from the config.
#include "pgweir/admin/inventory.hpp"

#include <algorithm>

namespace pgweir::admin {

StatsTotals& StatsTotals::operator+=(const StatsTotals& o) {
  xact_count += o.xact_count;
  query_count += o.query_count;
  bytes_received += o.bytes_received;
  bytes_sent += o.bytes_sent;
  xact_time_us += o.xact_time_us;
  query_time_us += o.query_time_us;
  wait_time_us += o.wait_time_us;
  return *this;
}

StatsAverages average(const StatsTotals& start, const StatsTotals& end, std::chrono::microseconds period) {
  StatsAverages a;
  if (period.count() <= 0) return a;
  const auto us = static_cast<std::uint64_t>(period.count());
  // Totals only grow, but a pool that was closed and re-made restarts at zero: treat a decrease as no activity.
  auto delta = [](std::uint64_t from, std::uint64_t to) { return to >= from ? to - from : 0; };
  auto per_second = [&](std::uint64_t d) {
    return static_cast<std::uint64_t>(static_cast<long double>(d) * 1'000'000.0L / static_cast<long double>(us));
  };
  const auto xacts = delta(start.xact_count, end.xact_count);
  const auto queries = delta(start.query_count, end.query_count);
  a.xact_count = per_second(xacts);
  a.query_count = per_second(queries);
  a.bytes_received = per_second(delta(start.bytes_received, end.bytes_received));
  a.bytes_sent = per_second(delta(start.bytes_sent, end.bytes_sent));
  a.xact_time_us = xacts ? delta(start.xact_time_us, end.xact_time_us) / xacts : 0;
  a.query_time_us = queries ? delta(start.query_time_us, end.query_time_us) / queries : 0;
  a.wait_time_us = per_second(delta(start.wait_time_us, end.wait_time_us));
  return a;
}

void StatsWindow::roll(Clock::time_point now, std::vector<std::pair<std::string, StatsTotals>> totals_by_database) {
  std::lock_guard lock(mutex_);
  older_ = std::move(newer_);
  older_at_ = newer_at_;
  newer_ = std::move(totals_by_database);
  newer_at_ = now;
}

std::vector<DatabaseStats> StatsWindow::stats(const std::vector<std::pair<std::string, StatsTotals>>& current) const {
  std::lock_guard lock(mutex_);
  auto find = [](const std::vector<std::pair<std::string, StatsTotals>>& v, const std::string& name) {
    const auto it = std::find_if(v.begin(), v.end(), [&](const auto& p) { return p.first == name; });
    return it == v.end() ? StatsTotals{} : it->second;
  };
  std::vector<DatabaseStats> out;
  out.reserve(current.size());
  for (const auto& [name, total] : current) {
    DatabaseStats s{name, total, {}};
    if (older_at_ && newer_at_) {
      const auto period = std::chrono::duration_cast<std::chrono::microseconds>(*newer_at_ - *older_at_);
      s.average = average(find(older_, name), find(newer_, name), period);
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<DatabaseInfo> describe_databases(const config::Config& config) {
  std::vector<DatabaseInfo> out;
  for (const auto& [name, db] : config.databases) {
    DatabaseInfo d;
    d.name = name;
    const auto& t = db.target;
    if (!t.hosts.empty() && !t.hosts.front().starts_with('/')) d.host = t.hosts.front();
    if (!t.ports.empty()) d.port = t.ports.front();
    // The wildcard forwards the client's database name; a DSN without dbname does the same.
    d.database = t.dbname.empty() ? (name == "*" ? std::string() : name) : t.dbname;
    if (!t.user.empty()) d.force_user = t.user;
    config::PoolSettings s = config.pool;
    db.overrides.apply_to(s);
    d.pool_size = s.size;
    d.min_pool_size = s.min_idle;
    d.reserve_pool = s.max_overflow;
    if (db.overrides.mode) d.pool_mode = std::string(config::to_string(*db.overrides.mode));
    d.max_connections = s.max_db_connections;
    out.push_back(std::move(d));
  }
  return out;
}

std::vector<UserInfo> describe_users(const config::Config& config) {
  std::vector<UserInfo> out;
  for (const auto& [name, user] : config.users) {
    UserInfo u{name, std::nullopt};
    if (user.overrides.mode) u.pool_mode = std::string(config::to_string(*user.overrides.mode));
    out.push_back(std::move(u));
  }
  return out;
}

namespace {

std::string duration_text(config::Duration d) {
  const auto ms = d.count();
  if (ms == 0) return "0";
  if (ms % 1000 != 0) return std::to_string(ms) + "ms";
  const auto s = ms / 1000;
  if (s % 3600 == 0) return std::to_string(s / 3600) + "h";
  if (s % 60 == 0) return std::to_string(s / 60) + "m";
  return std::to_string(s) + "s";
}

std::string list_text(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) {
    if (!out.empty()) out += ',';
    out += s;
  }
  return out;
}

}  // namespace

std::vector<ConfigEntry> describe_config(const config::Config& c) {
  const config::Config d;  // the defaults
  std::vector<ConfigEntry> out;
  auto add = [&](std::string key, std::string value, std::string def, bool changeable = true) {
    out.push_back(ConfigEntry{std::move(key), std::move(value), std::move(def), changeable});
  };
  // Listening sockets and threads are set up once at start.
  add("server.listen", list_text(c.server.listen), list_text(d.server.listen), false);
  add("server.unix_socket_dir", c.server.unix_socket_dir, d.server.unix_socket_dir, false);
  add("server.workers", std::to_string(c.server.workers), std::to_string(d.server.workers), false);
  add("server.io", std::string(to_string(c.server.io)), std::string(to_string(d.server.io)), false);
  add("server.worker_fill", std::to_string(c.server.worker_fill), std::to_string(d.server.worker_fill));
  add("server.max_client_connections", std::to_string(c.server.max_client_connections),
      std::to_string(d.server.max_client_connections));
  add("server.client_login_timeout", duration_text(c.server.client_login_timeout),
      duration_text(d.server.client_login_timeout));
  add("server.client_idle_timeout", duration_text(c.server.client_idle_timeout),
      duration_text(d.server.client_idle_timeout));
  add("server.client_park_after", duration_text(c.server.client_park_after),
      duration_text(d.server.client_park_after));
  add("server.shutdown_timeout", duration_text(c.server.shutdown_timeout), duration_text(d.server.shutdown_timeout));
  add("tls.mode", std::string(config::to_string(c.tls.mode)), std::string(config::to_string(d.tls.mode)));
  add("tls.cert_file", c.tls.cert_file, d.tls.cert_file);
  add("tls.key_file", c.tls.key_file, d.tls.key_file);
  add("tls.ca_file", c.tls.ca_file, d.tls.ca_file);
  add("tls.min_protocol", std::string(config::to_string(c.tls.min_protocol)),
      std::string(config::to_string(d.tls.min_protocol)));
  add("tls.ciphers", c.tls.ciphers, d.tls.ciphers);
  add("auth.method", std::string(config::to_string(c.auth.method)), std::string(config::to_string(d.auth.method)));
  add("auth.users_file", c.auth.users_file, d.auth.users_file);
  add("auth.hba_file", c.auth.hba_file, d.auth.hba_file);
  add("auth.query", c.auth.query, d.auth.query);
  add("auth.query_user", c.auth.query_user, d.auth.query_user);
  add("auth.query_database", c.auth.query_database, d.auth.query_database);
  add("admin.users", list_text(c.admin.users), list_text(d.admin.users));
  add("admin.stats_users", list_text(c.admin.stats_users), list_text(d.admin.stats_users));
  const auto& p = c.pool;
  const auto& q = d.pool;
  add("pool.mode", std::string(config::to_string(p.mode)), std::string(config::to_string(q.mode)));
  add("pool.size", std::to_string(p.size), std::to_string(q.size));
  add("pool.max_overflow", std::to_string(p.max_overflow), std::to_string(q.max_overflow));
  add("pool.min_idle", std::to_string(p.min_idle), std::to_string(q.min_idle));
  add("pool.timeout", duration_text(p.timeout), duration_text(q.timeout));
  add("pool.connect_timeout", duration_text(p.connect_timeout), duration_text(q.connect_timeout));
  add("pool.idle_timeout", duration_text(p.idle_timeout), duration_text(q.idle_timeout));
  add("pool.max_lifetime", duration_text(p.max_lifetime), duration_text(q.max_lifetime));
  add("pool.pre_ping", duration_text(p.pre_ping), duration_text(q.pre_ping));
  add("pool.reset_query", p.reset_query, q.reset_query);
  add("pool.max_db_connections", std::to_string(p.max_db_connections), std::to_string(q.max_db_connections));
  add("pool.max_user_connections", std::to_string(p.max_user_connections), std::to_string(q.max_user_connections));
  add("pool.idle_transaction_timeout", duration_text(p.idle_transaction_timeout),
      duration_text(q.idle_transaction_timeout));
  add("pool.query_timeout", duration_text(p.query_timeout), duration_text(q.query_timeout));
  add("pool.max_prepared_statements", std::to_string(p.max_prepared_statements),
      std::to_string(q.max_prepared_statements));
  add("pool.session_state", std::string(config::to_string(p.session_state)),
      std::string(config::to_string(q.session_state)));
  add("metrics.listen", c.metrics.listen, d.metrics.listen, false);
  add("log.level", std::string(config::to_string(c.log.level)), std::string(config::to_string(d.log.level)));
  add("log.format", std::string(config::to_string(c.log.format)), std::string(config::to_string(d.log.format)));
  return out;
}

}  // namespace pgweir::admin
