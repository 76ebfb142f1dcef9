// Registration of pgweir's SPEC §5 metric families and the pool-state collector.
#include "pgweir/metrics/pgweir_metrics.hpp"

namespace pgweir::metrics {

namespace {
const std::vector<std::string> k_pool_labels{"database", "user"};
}  // namespace

Metrics::Metrics(Registry& r, std::string_view version)
    : transactions(r.counter("pgweir_transactions_total", "Transactions completed through pgweir.", k_pool_labels)),
      queries(r.counter("pgweir_queries_total", "Queries completed through pgweir.", k_pool_labels)),
      bytes_received(r.counter("pgweir_bytes_received_total", "Bytes received from clients.", k_pool_labels)),
      bytes_sent(r.counter("pgweir_bytes_sent_total", "Bytes sent to clients.", k_pool_labels)),
      pool_wait(r.histogram("pgweir_pool_wait_seconds", "Time clients waited for a server connection.",
                            k_pool_labels)),
      query_duration(r.histogram("pgweir_query_duration_seconds", "Query time as seen by pgweir.", k_pool_labels)),
      transaction_duration(r.histogram("pgweir_transaction_duration_seconds",
                                       "Transaction time as seen by pgweir, from first query to idle.",
                                       k_pool_labels)),
      server_connect_errors(r.counter("pgweir_server_connect_errors_total",
                                      "Failed server connection attempts and logins.",
                                      {"database", "user", "reason"})),
      prepared_retries(r.counter("pgweir_prepared_retries_total",
                                 "Prepared statements prepared again and retried after DDL changed their result "
                                 "columns (cached plan must not change result type).",
                                 k_pool_labels)),
      client_logins(r.counter("pgweir_client_logins_total", "Client login attempts by result.", {"result"})),
      client_disconnects(
          r.counter("pgweir_client_disconnects_total", "Closed client connections by reason.", {"reason"})),
      config_reloads(r.counter("pgweir_config_reloads_total", "Configuration reloads by result.", {"result"})),
      pinned_clients(r.counter("pgweir_pinned_clients_total",
                                "Transaction-mode clients that kept their server connection because of session state.",
                                {"reason"})),
      client_parks(r.counter("pgweir_client_parks_total",
                             "Idle clients parked after server.client_park_after: their relay ends until they send "
                             "again. A client counts each time it parks.")),
      build_info(r.gauge("pgweir_build_info", "Always 1; the version label names the running build.", {"version"})),
      ready(r.gauge("pgweir_up", "1 while pgweir is listening, not shutting down and reaches a database.")),
      // Results are exposed as 0 from the start so that rate() and alerts see the series before the first event.
      logins_ok(client_logins.with({"ok"})),
      logins_auth_failed(client_logins.with({"auth_failed"})),
      logins_rejected(client_logins.with({"rejected"})),
      parks(client_parks.with()) {
  build_info.with({version}).set(1);
  for (auto result : {"ok", "failed"}) config_reloads.with({result});
}

Counter& Metrics::client_disconnect(std::size_t index, std::string_view reason) {
  if (index >= disconnect_cells_.size()) return client_disconnects.with({reason});
  auto* cell = disconnect_cells_[index].load(std::memory_order_acquire);
  if (!cell) {
    cell = &client_disconnects.with({reason});  // the same cell whichever thread stores it
    disconnect_cells_[index].store(cell, std::memory_order_release);
  }
  return *cell;
}

PoolCells Metrics::for_pool(std::string_view database, std::string_view user) {
  return PoolCells{transactions.with({database, user}),   queries.with({database, user}),
                   bytes_received.with({database, user}), bytes_sent.with({database, user}),
                   pool_wait.with({database, user}),      query_duration.with({database, user}),
                   transaction_duration.with({database, user}), prepared_retries.with({database, user})};
}

void write_pool_metrics(Writer& out, const std::vector<PoolGauges>& pools) {
  static constexpr std::string_view k_clients_help =
      "Client connections by state: active (has a server connection), waiting (queued for one), idle.";
  static constexpr std::string_view k_servers_help = "Server connections by state: active, idle, login, testing.";
  for (const auto& p : pools) {
    const Label db{"database", p.database}, user{"user", p.user};
    auto state = [&](std::string_view name, std::string_view help, std::string_view s, int v) {
      out.gauge(name, help, {db, user, Label{"state", s}}, v);
    };
    state("pgweir_client_connections", k_clients_help, "active", p.clients_active);
    state("pgweir_client_connections", k_clients_help, "waiting", p.clients_waiting);
    state("pgweir_client_connections", k_clients_help, "idle", p.clients_idle);
    state("pgweir_server_connections", k_servers_help, "active", p.servers_active);
    state("pgweir_server_connections", k_servers_help, "idle", p.servers_idle);
    state("pgweir_server_connections", k_servers_help, "login", p.servers_login);
    state("pgweir_server_connections", k_servers_help, "testing", p.servers_testing);
    out.gauge("pgweir_pool_size", "Configured steady server connections per pool.", {db, user}, p.size);
    out.gauge("pgweir_pool_max_overflow", "Configured extra connections opened while clients wait.", {db, user},
              p.max_overflow);
    out.gauge("pgweir_pool_overflow_connections", "Overflow server connections open now.", {db, user},
              p.overflow_connections);
    out.counter("pgweir_pool_timeouts_total", "Clients that gave up waiting for a server connection.", {db, user},
                static_cast<double>(p.timeouts));
  }
}

void add_pool_collector(Registry& registry, std::function<std::vector<PoolGauges>()> snapshot) {
  registry.add_collector([snapshot = std::move(snapshot)](Writer& w) { write_pool_metrics(w, snapshot()); });
}

}  // namespace pgweir::metrics
