// Averages over the last completed stats period, and the rows built from a config.
#include <doctest/doctest.h>

#include "pgweir/admin/inventory.hpp"

using namespace pgweir;
using namespace pgweir::admin;

TEST_CASE("average: rates per second, times per transaction/query, PgBouncer's wait per second") {
  const StatsTotals start{100, 1000, 10'000, 20'000, 5'000, 8'000, 1'000};
  const StatsTotals end{160, 1300, 70'000, 80'000, 11'000, 17'000, 4'000};
  const auto a = average(start, end, std::chrono::seconds(60));
  CHECK(a.xact_count == 1);         // 60 / 60 s
  CHECK(a.query_count == 5);        // 300 / 60 s
  CHECK(a.bytes_received == 1000);  // 60000 / 60 s
  CHECK(a.bytes_sent == 1000);
  CHECK(a.xact_time_us == 100);     // 6000 µs / 60 transactions
  CHECK(a.query_time_us == 30);     // 9000 µs / 300 queries
  CHECK(a.wait_time_us == 50);      // 3000 µs / 60 s
}

TEST_CASE("average: no activity, zero period, and totals that went backwards give zeros") {
  const StatsTotals t{5, 5, 5, 5, 5, 5, 5};
  const auto idle = average(t, t, std::chrono::seconds(60));
  CHECK(idle.xact_count == 0);
  CHECK(idle.xact_time_us == 0);
  const auto zero = average(StatsTotals{}, t, std::chrono::microseconds(0));
  CHECK(zero.query_count == 0);
  const auto back = average(t, StatsTotals{}, std::chrono::seconds(1));
  CHECK(back.query_count == 0);
  CHECK(back.query_time_us == 0);
}

TEST_CASE("StatsWindow: averages come from the last completed period, not the live totals") {
  StatsWindow w;
  using Clock = StatsWindow::Clock;
  const Clock::time_point t0{};
  auto totals = [](std::uint64_t q) {
    StatsTotals s;
    s.query_count = q;
    return std::vector<std::pair<std::string, StatsTotals>>{{"appdb", s}};
  };
  CHECK(w.stats(totals(50)).at(0).average.query_count == 0);  // nothing completed yet
  w.roll(t0, totals(0));
  CHECK(w.stats(totals(50)).at(0).average.query_count == 0);
  w.roll(t0 + std::chrono::seconds(10), totals(100));
  const auto s = w.stats(totals(999));
  REQUIRE(s.size() == 1);
  CHECK(s[0].total.query_count == 999);    // totals are live
  CHECK(s[0].average.query_count == 10);   // (100 - 0) / 10 s
  // A database that appeared during the period counts from zero.
  StatsTotals other;
  other.query_count = 20;
  auto now = totals(100);
  now.push_back({"newdb", other});
  w.roll(t0 + std::chrono::seconds(20), now);
  const auto s2 = w.stats(now);
  CHECK(s2.at(0).average.query_count == 0);
  CHECK(s2.at(1).average.query_count == 2);
}

TEST_CASE("describe_databases, describe_users and describe_config follow the config") {
  const char* toml = R"(
[tls]
mode = "disable"
[pool]
size = 25
max_overflow = 5
[databases.appdb]
dsn = "postgresql://svc@db.internal:5433/realdb"
min_idle = 2
mode = "session"
[databases.sock]
dsn = "host=/run/postgresql dbname=sock"
[users.backupuser]
mode = "session"
[users.app]
size = 3
)";
  auto loaded = config::load_string(toml, "test.toml", [](std::string_view) { return std::nullopt; });
  for (const auto& e : loaded.errors) MESSAGE(e.to_string());
  REQUIRE(loaded.config);
  const auto dbs = describe_databases(*loaded.config);
  REQUIRE(dbs.size() == 2);
  CHECK(dbs[0].name == "appdb");
  CHECK(dbs[0].host == "db.internal");
  CHECK(dbs[0].port == 5433);
  CHECK(dbs[0].database == "realdb");
  CHECK(dbs[0].force_user == "svc");
  CHECK(dbs[0].pool_size == 25);
  CHECK(dbs[0].min_pool_size == 2);
  CHECK(dbs[0].reserve_pool == 5);
  CHECK(dbs[0].pool_mode == "session");
  CHECK(dbs[1].host == std::nullopt);  // unix socket
  CHECK(dbs[1].pool_mode == std::nullopt);

  const auto users = describe_users(*loaded.config);
  REQUIRE(users.size() == 2);
  CHECK(users[0].name == "app");
  CHECK(users[0].pool_mode == std::nullopt);
  CHECK(users[1].pool_mode == "session");

  const auto cfg = describe_config(*loaded.config);
  auto find = [&](const std::string& key) {
    for (const auto& e : cfg)
      if (e.key == key) return e;
    FAIL("missing key " << key);
    return ConfigEntry{};
  };
  CHECK(find("pool.size").value == "25");
  CHECK(find("pool.size").default_value == "20");
  CHECK(find("pool.timeout").value == "30s");
  CHECK(find("pool.idle_timeout").value == "10m");
  CHECK(find("pool.max_lifetime").value == "30m");
  CHECK(find("server.listen").changeable == false);
  CHECK(find("tls.mode").value == "disable");
  CHECK(find("tls.mode").default_value == "prefer");
}
