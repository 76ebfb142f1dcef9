// Exact exposition text for each metric type, escaping, histogram buckets, registration rules and concurrent updates.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <thread>
#include <vector>

#include "pgweir/metrics/pgweir_metrics.hpp"
#include "pgweir/metrics/registry.hpp"

using namespace pgweir::metrics;

TEST_CASE("counter family renders HELP/TYPE once and one line per label set, sorted") {
  Registry r;
  auto& f = r.counter("pgweir_queries_total", "Queries.", {"database", "user"});
  f.with({"b", "u"}).inc(2);
  f.with({"a", "u"}).inc();
  CHECK(r.render() ==
        "# HELP pgweir_queries_total Queries.\n"
        "# TYPE pgweir_queries_total counter\n"
        "pgweir_queries_total{database=\"a\",user=\"u\"} 1\n"
        "pgweir_queries_total{database=\"b\",user=\"u\"} 2\n");
}

TEST_CASE("with returns the same cell for the same labels") {
  Registry r;
  auto& f = r.counter("x_total", "h", {"l"});
  Counter& a = f.with({"v"});
  for (int i = 0; i < 100; ++i) f.with({std::to_string(i)});  // grow the map: cells must not move
  CHECK(&a == &f.with({"v"}));
}

TEST_CASE("unlabelled gauge is exposed from registration and supports set/add/sub") {
  Registry r;
  auto& g = r.gauge("pgweir_thing", "A thing.");
  CHECK(r.render() == "# HELP pgweir_thing A thing.\n# TYPE pgweir_thing gauge\npgweir_thing 0\n");
  g.with().set(5);
  g.with().add(2.5);
  g.with().sub(1);
  CHECK(r.render() == "# HELP pgweir_thing A thing.\n# TYPE pgweir_thing gauge\npgweir_thing 6.5\n");
}

TEST_CASE("histogram renders cumulative buckets, +Inf, _sum and _count") {
  Registry r;
  const double bounds[] = {0.1, 1, 10};
  auto& h = r.histogram("pgweir_wait_seconds", "Wait.", {"database"}, bounds);
  auto& cell = h.with({"d"});
  cell.observe(0.05);
  cell.observe(0.1);  // le is inclusive
  cell.observe(0.5);
  cell.observe(100);
  CHECK(r.render() ==
        "# HELP pgweir_wait_seconds Wait.\n"
        "# TYPE pgweir_wait_seconds histogram\n"
        "pgweir_wait_seconds_bucket{database=\"d\",le=\"0.1\"} 2\n"
        "pgweir_wait_seconds_bucket{database=\"d\",le=\"1\"} 3\n"
        "pgweir_wait_seconds_bucket{database=\"d\",le=\"10\"} 3\n"
        "pgweir_wait_seconds_bucket{database=\"d\",le=\"+Inf\"} 4\n"
        "pgweir_wait_seconds_sum{database=\"d\"} 100.65\n"
        "pgweir_wait_seconds_count{database=\"d\"} 4\n");
  const auto snap = cell.snapshot();
  for (std::size_t i = 1; i < snap.cumulative.size(); ++i) CHECK(snap.cumulative[i] >= snap.cumulative[i - 1]);
  CHECK(snap.cumulative.back() == snap.count);
}

TEST_CASE("histogram: +Inf lands in the +Inf bucket, and NaN or negative values add nothing to _sum") {
  const double bounds[] = {0.001, 1};
  Histogram h(bounds);
  h.observe(0.0004);
  h.observe(std::numeric_limits<double>::infinity());
  h.observe(std::numeric_limits<double>::quiet_NaN());
  h.observe(-2);
  const auto s = h.snapshot();
  CHECK(s.count == 4);
  CHECK(s.cumulative[0] == 3);  // 0.0004, NaN and -2 compare above no bound
  CHECK(s.cumulative[1] == 3);
  CHECK(s.cumulative[2] == 4);
  CHECK(std::isfinite(s.sum));
  CHECK(s.sum > 1e9);  // +Inf is counted as the longest duration the sum holds
  CHECK(s.sum < 1e11);
}

TEST_CASE("label values escape backslash, double quote and newline; HELP escapes backslash and newline") {
  CHECK(escape_label_value("a\\b\"c\nd") == "a\\\\b\\\"c\\nd");
  CHECK(escape_help("x\\y\nz \"q\"") == "x\\\\y\\nz \"q\"");
  Registry r;
  r.gauge("g", "line1\nline2", {"l"}).with({"say \"hi\"\n"}).set(1);
  CHECK(r.render() == "# HELP g line1\\nline2\n# TYPE g gauge\ng{l=\"say \\\"hi\\\"\\n\"} 1\n");
}

TEST_CASE("value formatting") {
  CHECK(format_value(0) == "0");
  CHECK(format_value(42) == "42");
  CHECK(format_value(-3) == "-3");
  CHECK(format_value(0.25) == "0.25");
  CHECK(format_value(1e300) == "1e+300");
  CHECK(format_value(1.0 / 0.0) == "+Inf");
  CHECK(format_value(-1.0 / 0.0) == "-Inf");
  CHECK(format_value(0.0 / 0.0) == "NaN");
}

TEST_CASE("registration rules") {
  Registry r;
  CHECK_THROWS_AS(r.counter("no_suffix", "h"), std::logic_error);
  CHECK_THROWS_AS(r.gauge("bad-name", "h"), std::logic_error);
  CHECK_THROWS_AS(r.gauge("g", "h", {"le"}), std::logic_error);
  CHECK_THROWS_AS(r.gauge("g2", "h", {"__reserved"}), std::logic_error);
  const double unsorted[] = {1, 0.5};
  CHECK_THROWS_AS(r.histogram("h", "h", {}, unsorted), std::logic_error);
  auto& a = r.gauge("same", "h", {"x"});
  CHECK(&a == &r.gauge("same", "h", {"x"}));
  CHECK_THROWS_AS(r.gauge("same", "h", {"y"}), std::logic_error);
  r.gauge("clash_total", "h");
  CHECK_THROWS_AS(r.counter("clash_total", "h"), std::logic_error);
}

TEST_CASE("wrong label count does not crash: missing values are empty, extras dropped") {
  Registry r;
  auto& f = r.counter("c_total", "h", {"a", "b"});
  f.with({"only"}).inc();
  f.with({"1", "2", "3"}).inc();
  CHECK(r.render() ==
        "# HELP c_total h\n# TYPE c_total counter\n"
        "c_total{a=\"1\",b=\"2\"} 1\n"
        "c_total{a=\"only\",b=\"\"} 1\n");
}

TEST_CASE("concurrent increments and observations give exact totals") {
  Registry r;
  auto& f = r.counter("c_total", "h", {"t"});
  const double bounds[] = {1};
  auto& h = r.histogram("h_seconds", "h", {}, bounds).with();
  constexpr int k_threads = 8, k_per_thread = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < k_threads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < k_per_thread; ++i) {
        f.with({"shared"}).inc();                    // contended lookup and cell
        f.with({std::to_string(t % 2)}).inc();        // two cells created concurrently
        h.observe(i % 2 ? 0.5 : 2.0);
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(f.with({"shared"}).value() == std::uint64_t{k_threads} * k_per_thread);
  CHECK(f.with({"0"}).value() + f.with({"1"}).value() == std::uint64_t{k_threads} * k_per_thread);
  const auto s = h.snapshot();
  CHECK(s.count == std::uint64_t{k_threads} * k_per_thread);
  CHECK(s.cumulative[0] == s.count / 2);
  CHECK(s.sum == doctest::Approx(1.25 * k_threads * k_per_thread));
}

TEST_CASE("collectors: samples emitted out of order are grouped under one header, after registry families") {
  Registry r;
  r.counter("first_total", "f");
  r.add_collector([](Writer& w) {
    w.gauge("pool_a", "A.", {{"database", "x"}}, 1);
    w.gauge("pool_b", "B.", {{"database", "x"}}, 2);
    w.gauge("pool_a", "A.", {{"database", "y"}}, 3);
  });
  CHECK(r.render() ==
        "# HELP first_total f\n# TYPE first_total counter\nfirst_total 0\n"
        "# HELP pool_a A.\n# TYPE pool_a gauge\npool_a{database=\"x\"} 1\npool_a{database=\"y\"} 3\n"
        "# HELP pool_b B.\n# TYPE pool_b gauge\npool_b{database=\"x\"} 2\n");
}

TEST_CASE("pgweir metrics and pool collector produce the SPEC names") {
  Registry r;
  Metrics m(r, "0.1.0");
  auto cells = m.for_pool("appdb", "app");
  cells.queries.inc(3);
  cells.wait.observe(0.002);
  m.client_logins.with({"ok"}).inc();
  add_pool_collector(r, [] {
    PoolGauges p;
    p.database = "appdb";
    p.user = "app";
    p.clients_active = 2;
    p.servers_idle = 4;
    p.size = 20;
    p.max_overflow = 10;
    p.overflow_connections = 1;
    p.timeouts = 7;
    return std::vector<PoolGauges>{p};
  });
  const std::string text = r.render();
  for (const char* line : {
           "pgweir_queries_total{database=\"appdb\",user=\"app\"} 3\n",
           "pgweir_prepared_retries_total{database=\"appdb\",user=\"app\"} 0\n",
           "pgweir_pool_wait_seconds_bucket{database=\"appdb\",user=\"app\",le=\"0.0025\"} 1\n",
           "pgweir_pool_wait_seconds_count{database=\"appdb\",user=\"app\"} 1\n",
           "pgweir_client_logins_total{result=\"ok\"} 1\n",
           "pgweir_client_logins_total{result=\"auth_failed\"} 0\n",
           "pgweir_build_info{version=\"0.1.0\"} 1\n",
           "pgweir_client_connections{database=\"appdb\",user=\"app\",state=\"active\"} 2\n",
           "pgweir_client_connections{database=\"appdb\",user=\"app\",state=\"waiting\"} 0\n",
           "pgweir_server_connections{database=\"appdb\",user=\"app\",state=\"idle\"} 4\n",
           "pgweir_server_connections{database=\"appdb\",user=\"app\",state=\"testing\"} 0\n",
           "pgweir_pool_size{database=\"appdb\",user=\"app\"} 20\n",
           "pgweir_pool_max_overflow{database=\"appdb\",user=\"app\"} 10\n",
           "pgweir_pool_overflow_connections{database=\"appdb\",user=\"app\"} 1\n",
           "pgweir_pool_timeouts_total{database=\"appdb\",user=\"app\"} 7\n",
           "# TYPE pgweir_pool_timeouts_total counter\n",
           "# TYPE pgweir_query_duration_seconds histogram\n",
       }) {
    CAPTURE(line);
    CHECK(text.find(line) != std::string::npos);
  }
}
