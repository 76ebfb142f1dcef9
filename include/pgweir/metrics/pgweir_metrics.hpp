// pgweir's own metric families (SPEC §5), registered once with their names, help and labels, plus the collector that
// turns pool snapshots into the pool gauges at scrape time.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "pgweir/metrics/registry.hpp"

namespace pgweir::metrics {

// The cells one (database, user) pool updates on the data path. Look them up once per pool and keep them.
struct PoolCells {
  Counter& transactions;
  Counter& queries;
  Counter& bytes_received;  // from clients
  Counter& bytes_sent;      // to clients
  Histogram& wait;          // time a client waited for a server connection
  Histogram& query_duration;
  Histogram& transaction_duration;
  Counter& prepared_retries;  // segments sent again after "cached plan must not change result type"
};

// Families whose values are event counts on the data path. Pool state gauges are not here: they come from
// snapshots through add_pool_collector.
struct Metrics {
  Metrics(Registry& registry, std::string_view version);

  PoolCells for_pool(std::string_view database, std::string_view user);
  Counter& server_connect_error(std::string_view database, std::string_view user, std::string_view reason) {
    return server_connect_errors.with({database, user, reason});
  }

  CounterFamily& transactions;            // pgweir_transactions_total{database,user}
  CounterFamily& queries;                 // pgweir_queries_total{database,user}
  CounterFamily& bytes_received;          // pgweir_bytes_received_total{database,user}
  CounterFamily& bytes_sent;              // pgweir_bytes_sent_total{database,user}
  HistogramFamily& pool_wait;             // pgweir_pool_wait_seconds{database,user}
  HistogramFamily& query_duration;        // pgweir_query_duration_seconds{database,user}
  HistogramFamily& transaction_duration;  // pgweir_transaction_duration_seconds{database,user}
  CounterFamily& server_connect_errors;   // pgweir_server_connect_errors_total{database,user,reason}
  CounterFamily& prepared_retries;        // pgweir_prepared_retries_total{database,user}
  // Login and disconnect counters carry no database/user: before authentication both are attacker-chosen, and a
  // label per guessed name would grow the exposition without bound.
  CounterFamily& client_logins;           // pgweir_client_logins_total{result}: ok | auth_failed | rejected
  CounterFamily& client_disconnects;      // pgweir_client_disconnects_total{reason}
  CounterFamily& config_reloads;          // pgweir_config_reloads_total{result}: ok | failed
  CounterFamily& pinned_clients;          // pgweir_pinned_clients_total{reason}: session state kept a server
  CounterFamily& client_parks;            // pgweir_client_parks_total: idle clients parked (server.client_park_after)
  GaugeFamily& build_info;                // pgweir_build_info{version} = 1
  GaugeFamily& ready;                     // pgweir_up: 1 while /readyz would answer 200

  // The cells every connection counts in, looked up once (a `with` costs a lock and a map lookup).
  Counter& logins_ok;
  Counter& logins_auth_failed;
  Counter& logins_rejected;
  Counter& parks;
  // client_disconnects{reason} for a reason's small index (the caller's enumeration, below
  // k_cached_disconnect_reasons), cached at first use.
  static constexpr std::size_t k_cached_disconnect_reasons = 32;
  Counter& client_disconnect(std::size_t index, std::string_view reason);

 private:
  std::array<std::atomic<Counter*>, k_cached_disconnect_reasons> disconnect_cells_{};
};

// One pool's state at scrape time, filled by the daemon from pool::PoolSnapshot and its client counts.
struct PoolGauges {
  std::string database, user;
  int clients_active = 0;   // has a server connection
  int clients_waiting = 0;  // queued for one
  int clients_idle = 0;     // logged in, no server connection, not waiting
  int servers_active = 0;
  int servers_idle = 0;
  int servers_login = 0;
  int servers_testing = 0;
  int size = 0;                     // configured pool size
  int max_overflow = 0;             // configured overflow
  int overflow_connections = 0;     // open now beyond size
  std::uint64_t timeouts = 0;       // clients that gave up waiting, since the pool was made
};

// Writes pgweir_client_connections{database,user,state}, pgweir_server_connections{database,user,state},
// pgweir_pool_size, pgweir_pool_max_overflow, pgweir_pool_overflow_connections and pgweir_pool_timeouts_total.
void write_pool_metrics(Writer& out, const std::vector<PoolGauges>& pools);

// Registers a collector that calls `snapshot` at each scrape (it must not block on the data path's locks for long:
// copy counts out under each pool's own mutex, one pool at a time) and writes the pool metrics.
void add_pool_collector(Registry& registry, std::function<std::vector<PoolGauges>()> snapshot);

}  // namespace pgweir::metrics
