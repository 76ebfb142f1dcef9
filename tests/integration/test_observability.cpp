// Integration tests for observability (SPEC §4 admin console, §5 metrics): a live /metrics scrape checked by
// promtool, gauges and counters that move as a user would check them, /healthz and /readyz while PostgreSQL
// goes away and comes back, the PgBouncer 1.18 console (columns, permissions, PAUSE/RESUME, RELOAD,
// KILL_CLIENT, RECONNECT), and Debian's prometheus-pgbouncer-exporter against the console.
#include "common.hpp"

#include <libpq-fe.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <future>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

namespace pgweir::test {
namespace {

// ---------------------------------------------------------------------------------------------------------------
// Set-up helpers

void ensure_role(const std::string& user) {
  auto& pg = shared_cluster();
  if (pg.exec("SELECT count(*) FROM pg_roles WHERE rolname = '" + user + "'") == "0")
    pg.exec("CREATE ROLE " + user + " LOGIN");
}

// The database every test's "appdb" alias points at; each test case uses its own role so that
// pg_stat_activity counts never see another case's server connections.
void ensure_database(const std::string& user) {
  auto& pg = shared_cluster();
  ensure_role(user);
  if (pg.exec("SELECT count(*) FROM pg_database WHERE datname = 'obs_db'") == "0") pg.exec("CREATE DATABASE obs_db");
  pg.exec("GRANT ALL ON DATABASE obs_db TO " + user);
}

struct ObsConfig {
  std::string auth = "method = \"trust\"";
  std::string mode = "transaction";
  int size = 2;
  int overflow = 0;
  std::string timeout = "30s";
  std::string extra_pool;       // more lines for [pool]
  std::string extra_databases;  // more [databases.X] tables
  int worker_fill = 0;          // server.worker_fill; 0: clients alternate between the two workers
};

// pgweir in front of the shared cluster: alias appdb -> obs_db, console users obs_admin (admin) and
// obs_stats (stats), metrics on 127.0.0.1:metrics_port.
std::string obs_config(const ObsConfig& c, int metrics_port) {
  return with_cluster(R"(
[server]
listen = ["127.0.0.1:@PORT@"]
workers = 2
worker_fill = )" + std::to_string(c.worker_fill) + R"(
shutdown_timeout = "5s"

[tls]
mode = "disable"

[auth]
)" + c.auth + R"(

[admin]
users = ["obs_admin"]
stats_users = ["obs_stats"]

[pool]
mode = ")" + c.mode + R"("
size = )" + std::to_string(c.size) + R"(
max_overflow = )" + std::to_string(c.overflow) + R"(
timeout = ")" + c.timeout + R"("
)" + c.extra_pool + R"(

[metrics]
listen = "127.0.0.1:)" + std::to_string(metrics_port) + R"("

[databases.appdb]
dsn = "postgresql://127.0.0.1:@PGPORT@/obs_db?sslmode=disable"
)" + c.extra_databases);
}

// The same config with a misspelt key in [pool] ("sise"), which a reload must reject.
std::string broken(std::string config) {
  const auto pos = config.find("max_overflow = ");
  REQUIRE(pos != std::string::npos);
  config.insert(pos, "sise = 3\n");
  return config;
}

// Polls `pred` every 50 ms until it holds or `timeout` passes.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return pred();
}

// ---------------------------------------------------------------------------------------------------------------
// HTTP (through curl, as a user would) and the Prometheus text format

struct HttpResponse {
  int status = 0;  // 0 if curl could not get an answer
  std::string headers;
  std::string body;
  std::string curl_output;  // curl's own error text, if any
};

HttpResponse http(int port, const std::string& path, const std::string& method = "GET") {
  static TempDir tmp("pgweir-obs-http");
  const auto body_file = tmp.file("body");
  const auto header_file = tmp.file("headers");
  ::unlink(body_file.c_str());
  ::unlink(header_file.c_str());
  std::vector<std::string> argv{"curl", "-s", "-S", "--max-time", "10", "-X", method, "-D", header_file,
                                "-o", body_file, "-w", "%{http_code}"};
  if (method == "POST") argv.insert(argv.end(), {"--data", "x=1"});
  argv.push_back("http://127.0.0.1:" + std::to_string(port) + path);
  auto r = run(argv, {}, 30s);
  HttpResponse out;
  out.curl_output = r.output;
  // With -w the last three characters curl prints are the status code.
  if (r.output.size() >= 3) {
    try {
      out.status = std::stoi(r.output.substr(r.output.size() - 3));
    } catch (...) {
      out.status = 0;
    }
  }
  if (access(header_file.c_str(), R_OK) == 0) out.headers = read_file(header_file);
  if (access(body_file.c_str(), R_OK) == 0) out.body = read_file(body_file);
  return out;
}

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

// Parses the sample lines of a text-format exposition (comments skipped, label values unescaped).
std::vector<Sample> parse_samples(const std::string& body) {
  std::vector<Sample> out;
  std::istringstream in(body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    Sample s;
    std::size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') s.name += line[i++];
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        std::string key;
        while (i < line.size() && line[i] != '=') key += line[i++];
        i += 2;  // ="
        std::string value;
        while (i < line.size() && line[i] != '"') {
          if (line[i] == '\\' && i + 1 < line.size()) {
            ++i;
            value += line[i] == 'n' ? '\n' : line[i];
          } else {
            value += line[i];
          }
          ++i;
        }
        ++i;  // closing quote
        if (i < line.size() && line[i] == ',') ++i;
        s.labels[key] = value;
      }
      ++i;  // }
    }
    while (i < line.size() && line[i] == ' ') ++i;
    auto end = line.find(' ', i);
    auto text = line.substr(i, end == std::string::npos ? std::string::npos : end - i);
    try {
      s.value = text == "+Inf" ? 1e300 : text == "-Inf" ? -1e300 : std::stod(text);
    } catch (...) {
      continue;
    }
    out.push_back(std::move(s));
  }
  return out;
}

using Labels = std::map<std::string, std::string>;

std::string describe_series(const std::string& name, const Labels& labels) {
  std::string out = name + "{";
  bool first = true;
  for (const auto& [k, v] : labels) {
    out += (first ? "" : ",") + k + "=\"" + v + "\"";
    first = false;
  }
  return out + "}";
}

struct Scrape {
  HttpResponse response;
  std::vector<Sample> samples;

  // Sum of the samples named `name` whose labels include `labels`; nullopt if there is none.
  std::optional<double> get(const std::string& name, const Labels& labels = {}) const {
    std::optional<double> sum;
    for (const auto& s : samples) {
      if (s.name != name) continue;
      bool match = std::all_of(labels.begin(), labels.end(), [&](const auto& kv) {
        auto it = s.labels.find(kv.first);
        return it != s.labels.end() && it->second == kv.second;
      });
      if (match) sum = sum.value_or(0) + s.value;
    }
    return sum;
  }
  double get_or_0(const std::string& name, const Labels& labels = {}) const { return get(name, labels).value_or(0); }
  std::string show(const std::string& name, const Labels& labels = {}) const {
    auto v = get(name, labels);
    return describe_series(name, labels) + " = " + (v ? std::to_string(*v) : std::string("(absent)"));
  }
};

Scrape scrape(int metrics_port) {
  Scrape s;
  s.response = http(metrics_port, "/metrics");
  s.samples = parse_samples(s.response.body);
  return s;
}

// Polls /metrics until `name{labels}` satisfies `pred`; returns the last scrape for the failure message.
template <class Pred>
std::pair<bool, Scrape> wait_metric(int metrics_port, const std::string& name, const Labels& labels, Pred pred,
                                    std::chrono::milliseconds timeout = 15s) {
  Scrape last;
  bool ok = eventually(
      [&] {
        last = scrape(metrics_port);
        auto v = last.get(name, labels);
        return v && pred(*v);
      },
      timeout);
  return {ok, last};
}

// ---------------------------------------------------------------------------------------------------------------
// The console through libpq, keeping column names and the full error text (primary message and detail)

struct Table {
  bool ok = false;
  std::string status;  // PQresStatus
  std::vector<std::string> columns;
  std::vector<std::map<std::string, std::string>> rows;
  std::string sqlstate;
  std::string error;  // PQresultErrorMessage: severity, message, detail, hint
};

Table console(PgConn& c, const std::string& sql) {
  Table t;
  PGresult* res = PQexec(c.raw(), sql.c_str());
  auto st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
  t.status = PQresStatus(st);
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY) {
    t.ok = true;
    for (int f = 0; f < PQnfields(res); ++f) t.columns.emplace_back(PQfname(res, f));
    for (int r = 0; r < PQntuples(res); ++r) {
      auto& row = t.rows.emplace_back();
      for (int f = 0; f < PQnfields(res); ++f) row[PQfname(res, f)] = PQgetvalue(res, r, f);
    }
  } else {
    const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
    t.sqlstate = state ? state : "";
    t.error = res ? PQresultErrorMessage(res) : PQerrorMessage(c.raw());
    if (t.error.empty()) t.error = PQerrorMessage(c.raw());
  }
  PQclear(res);
  return t;
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

const std::map<std::string, std::string>* find_row(const Table& t, const std::map<std::string, std::string>& where) {
  for (const auto& row : t.rows) {
    bool match = std::all_of(where.begin(), where.end(), [&](const auto& kv) {
      auto it = row.find(kv.first);
      return it != row.end() && it->second == kv.second;
    });
    if (match) return &row;
  }
  return nullptr;
}

std::string dump(const Table& t) {
  if (!t.ok) return t.status + " " + t.sqlstate + " " + t.error;
  std::string out = join(t.columns) + "\n";
  for (const auto& row : t.rows) {
    std::vector<std::string> cells;
    for (const auto& c : t.columns) cells.push_back(row.at(c));
    out += join(cells) + "\n";
  }
  return out;
}

int to_int(const std::string& s) {
  try {
    return std::stoi(s);
  } catch (...) {
    return -1;
  }
}

// Restarts the shared cluster if a test stopped it and then failed before starting it again.
struct ClusterRestarter {
  bool stopped = false;
  ~ClusterRestarter() {
    if (stopped) {
      try {
        shared_cluster().start();
      } catch (...) {
      }
    }
  }
};

}  // namespace

// ---------------------------------------------------------------------------------------------------------------

TEST_CASE("a live /metrics scrape passes promtool and has every metric SPEC §5 lists") {
  ensure_database("obs_scrape");
  const int mport = free_port();
  ObsConfig c;
  // A second database on a port nothing listens on, so a server connect error is counted.
  c.extra_databases = "\n[databases.broken]\ndsn = \"postgresql://127.0.0.1:" + std::to_string(free_port()) +
                      "/obs_db?sslmode=disable\"\nconnect_timeout = \"2s\"\n";
  Pgweir p(obs_config(c, mport));
  PGWEIR_LOG_ON_FAILURE(p);

  // Traffic: statements, a transaction, and a failed backend connect.
  PgConn a(p.conninfo("appdb", "obs_scrape"));
  REQUIRE_MESSAGE(a.ok(), a.error_text());
  for (int i = 0; i < 5; ++i) CHECK(a.value("SELECT " + std::to_string(i)) == std::to_string(i));
  a.value("BEGIN");
  a.value("SELECT 1");
  a.value("COMMIT");
  auto bad = connect_and_query(p.conninfo("broken", "obs_scrape"), "SELECT 1");
  CHECK_MESSAGE(!bad.ok, "a database whose server does not listen answered a query");

  auto s = scrape(mport);
  INFO("scrape body:\n" << s.response.body);
  REQUIRE_MESSAGE(s.response.status == 200, "GET /metrics: expected 200, got " << s.response.status << " "
                                                                                << s.response.curl_output);
  CHECK_MESSAGE(s.response.headers.find("text/plain; version=0.0.4") != std::string::npos,
                "expected Content-Type text/plain; version=0.0.4, got headers:\n" << s.response.headers);

  // promtool reads the exposition from stdin and prints one line per problem.
  TempDir tmp("pgweir-obs-promtool");
  auto file = tmp.write("metrics.txt", s.response.body);
  auto check = run({"sh", "-c", "promtool check metrics < '" + file + "'"});
  CHECK_MESSAGE(check.exit_code == 0, "promtool check metrics: expected exit 0, got " << check.exit_code << ":\n"
                                                                                       << check.output);
  CHECK_MESSAGE(check.output.empty(), "promtool check metrics reported problems:\n" << check.output);

  // Every metric SPEC §5 lists, with its TYPE line and at least one sample.
  const std::vector<std::pair<std::string, std::string>> families{
      {"pgweir_client_connections", "gauge"},
      {"pgweir_server_connections", "gauge"},
      {"pgweir_pool_size", "gauge"},
      {"pgweir_pool_max_overflow", "gauge"},
      {"pgweir_pool_overflow_connections", "gauge"},
      {"pgweir_pool_wait_seconds", "histogram"},
      {"pgweir_pool_timeouts_total", "counter"},
      {"pgweir_server_connect_errors_total", "counter"},
      {"pgweir_transactions_total", "counter"},
      {"pgweir_queries_total", "counter"},
      {"pgweir_query_duration_seconds", "histogram"},
      {"pgweir_bytes_received_total", "counter"},
      {"pgweir_bytes_sent_total", "counter"},
      {"pgweir_client_logins_total", "counter"},
      {"pgweir_client_disconnects_total", "counter"},
      {"pgweir_config_reloads_total", "counter"},
      {"pgweir_build_info", "gauge"},
      {"pgweir_up", "gauge"},
      {"process_cpu_seconds_total", "counter"},
      {"process_resident_memory_bytes", "gauge"},
      {"process_open_fds", "gauge"},
      {"process_start_time_seconds", "gauge"},
  };
  for (const auto& [name, type] : families) {
    CAPTURE(name);
    // The TYPE line names the family: counters may be declared with or without their _total suffix.
    std::string family = name;
    if (type == "counter" && family.size() > 6 && family.ends_with("_total") &&
        s.response.body.find("# TYPE " + family + " ") == std::string::npos)
      family = family.substr(0, family.size() - 6);
    CHECK_MESSAGE(s.response.body.find("# TYPE " + family + " " + type + "\n") != std::string::npos,
                  "expected a line '# TYPE " << name << " " << type << "'");
    if (name == "pgweir_client_disconnects_total") continue;  // no client has closed yet in every build
    const std::string sample_name = type == "histogram" ? name + "_count" : name;
    CHECK_MESSAGE(s.get(sample_name).has_value(), "no sample of " << sample_name << " in the scrape");
  }
  // Pool metrics carry database and user.
  const Labels pool{{"database", "appdb"}, {"user", "obs_scrape"}};
  CHECK_MESSAGE(s.get_or_0("pgweir_queries_total", pool) >= 8, s.show("pgweir_queries_total", pool));
  CHECK_MESSAGE(s.get("pgweir_pool_size", pool) == 2.0, s.show("pgweir_pool_size", pool));
  CHECK_MESSAGE(s.get("pgweir_pool_max_overflow", pool) == 0.0, s.show("pgweir_pool_max_overflow", pool));
  CHECK_MESSAGE(s.get("pgweir_query_duration_seconds_bucket", {{"database", "appdb"}, {"le", "+Inf"}}).has_value(),
                s.show("pgweir_query_duration_seconds_bucket", {{"database", "appdb"}, {"le", "+Inf"}}));
  CHECK_MESSAGE(s.get_or_0("pgweir_server_connect_errors_total", {{"database", "broken"}}) >= 1,
                s.show("pgweir_server_connect_errors_total", {{"database", "broken"}}));
  CHECK_MESSAGE(s.get("pgweir_build_info", {{"version", PGWEIR_EXPECTED_VERSION}}) == 1.0,
                s.show("pgweir_build_info", {{"version", PGWEIR_EXPECTED_VERSION}}));
  CHECK_MESSAGE(s.response.body.find("pgweir_build_info{version=\"0.1.0\"} 1") != std::string::npos,
                "expected the line pgweir_build_info{version=\"0.1.0\"} 1");
  {
    // pgweir_up follows the ~2 s readiness check.
    auto [ok, last] = wait_metric(mport, "pgweir_up", {}, [](double v) { return v == 1; }, 15s);
    CHECK_MESSAGE(ok, "expected pgweir_up 1 with PostgreSQL up, got " << last.show("pgweir_up"));
  }
  // Results known in advance are exposed from start-up.
  for (const std::string result : {"ok", "auth_failed", "rejected"})
    CHECK_MESSAGE(s.get("pgweir_client_logins_total", {{"result", result}}).has_value(),
                  s.show("pgweir_client_logins_total", {{"result", result}}));
  for (const std::string result : {"ok", "failed"})
    CHECK_MESSAGE(s.get("pgweir_config_reloads_total", {{"result", result}}).has_value(),
                  s.show("pgweir_config_reloads_total", {{"result", result}}));
  CHECK_MESSAGE(s.get_or_0("process_resident_memory_bytes") > 0, s.show("process_resident_memory_bytes"));
  CHECK_MESSAGE(s.get_or_0("process_open_fds") > 0, s.show("process_open_fds"));
}

TEST_CASE("gauges and counters move: waiting client, pool timeout, failed login, traffic, reloads") {
  ensure_database("obs_user");
  TempDir secrets("pgweir-obs-users");
  const auto users_file = secrets.write("users.txt", "\"obs_user\" \"obs-secret\"\n");
  const int mport = free_port();
  ObsConfig c;
  c.auth = "method = \"scram-sha-256\"\nusers_file = \"" + users_file + "\"";
  c.size = 1;
  c.overflow = 0;
  c.timeout = "6s";
  const auto config = obs_config(c, mport);
  Pgweir p(config);
  PGWEIR_LOG_ON_FAILURE(p);
  const Labels pool{{"database", "appdb"}, {"user", "obs_user"}};
  const auto conninfo = p.conninfo("appdb", "obs_user", "obs-secret");

  // --- A holds the only server inside a transaction; B waits for it and gives up after pool.timeout.
  const auto before = scrape(mport);
  REQUIRE(before.response.status == 200);
  const double timeouts0 = before.get_or_0("pgweir_pool_timeouts_total", pool);
  PgConn a(conninfo);
  REQUIRE_MESSAGE(a.ok(), a.error_text());
  a.value("BEGIN");
  a.value("SELECT 1");
  auto b = std::async(std::launch::async, [&] { return connect_and_query(conninfo, "SELECT 'b'"); });
  {
    auto [ok, last] = wait_metric(mport, "pgweir_client_connections",
                                  {{"database", "appdb"}, {"user", "obs_user"}, {"state", "waiting"}},
                                  [](double v) { return v == 1; }, 5s);
    CHECK_MESSAGE(ok, "expected " << last.show("pgweir_client_connections", {{"database", "appdb"},
                                                                             {"user", "obs_user"},
                                                                             {"state", "waiting"}})
                                  << " to become 1 while B waits");
    CHECK_MESSAGE(last.get("pgweir_server_connections",
                           {{"database", "appdb"}, {"user", "obs_user"}, {"state", "active"}}) == 1.0,
                  "expected 1: " << last.show("pgweir_server_connections",
                                              {{"database", "appdb"}, {"user", "obs_user"}, {"state", "active"}}));
    CHECK_MESSAGE(last.get("pgweir_client_connections",
                           {{"database", "appdb"}, {"user", "obs_user"}, {"state", "active"}}) == 1.0,
                  "expected 1 (A): " << last.show("pgweir_client_connections",
                                                  {{"database", "appdb"}, {"user", "obs_user"}, {"state", "active"}}));
    CHECK_MESSAGE(last.get_or_0("pgweir_pool_overflow_connections", pool) == 0.0,
                  last.show("pgweir_pool_overflow_connections", pool));
  }
  REQUIRE(b.wait_for(60s) == std::future_status::ready);
  auto b_result = b.get();
  CHECK_MESSAGE(!b_result.ok, "B got a server although A held the only one");
  CHECK_MESSAGE(b_result.error.sqlstate == "53300", "expected SQLSTATE 53300 after pool.timeout, got "
                                                        << b_result.error.sqlstate << " " << b_result.error.message);
  {
    auto [ok, last] = wait_metric(mport, "pgweir_pool_timeouts_total", pool,
                                  [&](double v) { return v >= timeouts0 + 1; });
    CHECK_MESSAGE(ok, "expected pgweir_pool_timeouts_total >= " << timeouts0 + 1 << ", got "
                                                                << last.show("pgweir_pool_timeouts_total", pool));
  }

  // --- A waiter that does get the server is counted in pgweir_pool_wait_seconds.
  const double waits0 = scrape(mport).get_or_0("pgweir_pool_wait_seconds_count", pool);
  auto d = std::async(std::launch::async, [&] { return connect_and_query(conninfo, "SELECT 'd'"); });
  {
    auto [ok, last] = wait_metric(mport, "pgweir_client_connections",
                                  {{"database", "appdb"}, {"user", "obs_user"}, {"state", "waiting"}},
                                  [](double v) { return v == 1; }, 5s);
    CHECK_MESSAGE(ok, "D should be waiting: " << last.show("pgweir_client_connections",
                                                           {{"database", "appdb"}, {"user", "obs_user"},
                                                            {"state", "waiting"}}));
  }
  a.value("COMMIT");
  REQUIRE(d.wait_for(60s) == std::future_status::ready);
  auto d_result = d.get();
  CHECK_MESSAGE(d_result.ok, "D should get the server after A's COMMIT: " << d_result.error.sqlstate << " "
                                                                          << d_result.error.message);
  {
    auto [ok, last] = wait_metric(mport, "pgweir_pool_wait_seconds_count", pool,
                                  [&](double v) { return v >= waits0 + 1; });
    CHECK_MESSAGE(ok, "expected pgweir_pool_wait_seconds_count >= " << waits0 + 1 << ", got "
                                                                    << last.show("pgweir_pool_wait_seconds_count",
                                                                                 pool));
    CHECK_MESSAGE(last.get_or_0("pgweir_client_connections",
                                {{"database", "appdb"}, {"user", "obs_user"}, {"state", "waiting"}}) == 0.0,
                  "nobody waits now: " << last.show("pgweir_client_connections", {{"database", "appdb"},
                                                                                  {"user", "obs_user"},
                                                                                  {"state", "waiting"}}));
  }

  // --- A wrong password counts as auth_failed; the right one as ok.
  {
    const auto s0 = scrape(mport);
    const double failed0 = s0.get_or_0("pgweir_client_logins_total", {{"result", "auth_failed"}});
    const double ok0 = s0.get_or_0("pgweir_client_logins_total", {{"result", "ok"}});
    auto wrong = connect_and_query(p.conninfo("appdb", "obs_user", "not-the-secret"), "SELECT 1");
    CHECK_MESSAGE(!wrong.ok, "a wrong password was accepted");
    CHECK_MESSAGE(wrong.error.sqlstate == "28P01", "expected 28P01, got " << wrong.error.sqlstate << " "
                                                                          << wrong.error.message);
    auto [ok, last] = wait_metric(mport, "pgweir_client_logins_total", {{"result", "auth_failed"}},
                                  [&](double v) { return v >= failed0 + 1; });
    CHECK_MESSAGE(ok, "expected auth_failed >= " << failed0 + 1 << ", got "
                                                 << last.show("pgweir_client_logins_total", {{"result", "auth_failed"}}));
    auto good = connect_and_query(conninfo, "SELECT 1");
    CHECK(good.ok);
    auto [ok2, last2] = wait_metric(mport, "pgweir_client_logins_total", {{"result", "ok"}},
                                    [&](double v) { return v >= ok0 + 1; });
    CHECK_MESSAGE(ok2, "expected ok >= " << ok0 + 1 << ", got "
                                         << last2.show("pgweir_client_logins_total", {{"result", "ok"}}));
  }

  // --- Queries, transactions and bytes: at least what this client ran.
  {
    const auto s0 = scrape(mport);
    const double q0 = s0.get_or_0("pgweir_queries_total", pool);
    const double x0 = s0.get_or_0("pgweir_transactions_total", pool);
    const double recv0 = s0.get_or_0("pgweir_bytes_received_total", pool);
    const double sent0 = s0.get_or_0("pgweir_bytes_sent_total", pool);
    const double dur0 = s0.get_or_0("pgweir_query_duration_seconds_count", pool);
    PgConn cl(conninfo);
    REQUIRE_MESSAGE(cl.ok(), cl.error_text());
    double query_bytes = 0;  // the Query messages themselves: 'Q', length, text, NUL
    auto q = [&](const std::string& sql) {
      query_bytes += 1 + 4 + sql.size() + 1;
      return cl.value(sql);
    };
    for (int i = 0; i < 10; ++i) q("SELECT " + std::to_string(i));
    q("BEGIN");
    q("SELECT 42");
    q("COMMIT");
    const double queries = 13, transactions = 11;
    auto [ok, last] = wait_metric(mport, "pgweir_queries_total", pool, [&](double v) { return v >= q0 + queries; });
    CHECK_MESSAGE(ok, "ran " << queries << " queries: expected pgweir_queries_total >= " << q0 + queries << ", got "
                             << last.show("pgweir_queries_total", pool));
    auto [okx, lastx] = wait_metric(mport, "pgweir_transactions_total", pool,
                                    [&](double v) { return v >= x0 + transactions; });
    CHECK_MESSAGE(okx, "ran " << transactions << " transactions: expected pgweir_transactions_total >= "
                              << x0 + transactions << ", got " << lastx.show("pgweir_transactions_total", pool));
    auto [okr, lastr] = wait_metric(mport, "pgweir_bytes_received_total", pool,
                                    [&](double v) { return v >= recv0 + query_bytes; });
    CHECK_MESSAGE(okr, "sent " << query_bytes << " bytes of queries: expected pgweir_bytes_received_total >= "
                               << recv0 + query_bytes << ", got " << lastr.show("pgweir_bytes_received_total", pool));
    auto [oks, lasts] = wait_metric(mport, "pgweir_bytes_sent_total", pool,
                                    [&](double v) { return v >= sent0 + 13 * 6; });  // ≥ 13 ReadyForQuery
    CHECK_MESSAGE(oks, "expected pgweir_bytes_sent_total >= " << sent0 + 13 * 6 << ", got "
                                                              << lasts.show("pgweir_bytes_sent_total", pool));
    auto [okd, lastd] = wait_metric(mport, "pgweir_query_duration_seconds_count", pool,
                                    [&](double v) { return v >= dur0 + queries; });
    CHECK_MESSAGE(okd, "expected pgweir_query_duration_seconds_count >= " << dur0 + queries << ", got "
                                                                          << lastd.show(
                                                                                 "pgweir_query_duration_seconds_count",
                                                                                 pool));
  }

  // --- Reloads: SIGHUP with a good config counts ok, with a broken one failed.
  {
    const auto s0 = scrape(mport);
    const double ok0 = s0.get_or_0("pgweir_config_reloads_total", {{"result", "ok"}});
    const double failed0 = s0.get_or_0("pgweir_config_reloads_total", {{"result", "failed"}});
    p.rewrite_config(config);
    p.reload();
    auto [ok, last] = wait_metric(mport, "pgweir_config_reloads_total", {{"result", "ok"}},
                                  [&](double v) { return v >= ok0 + 1; });
    CHECK_MESSAGE(ok, "after SIGHUP with a valid config expected reloads{ok} >= "
                          << ok0 + 1 << ", got " << last.show("pgweir_config_reloads_total", {{"result", "ok"}}));
    p.rewrite_config(broken(config));
    p.reload();
    auto [okf, lastf] = wait_metric(mport, "pgweir_config_reloads_total", {{"result", "failed"}},
                                    [&](double v) { return v >= failed0 + 1; });
    CHECK_MESSAGE(okf, "after SIGHUP with a broken config expected reloads{failed} >= "
                           << failed0 + 1 << ", got " << lastf.show("pgweir_config_reloads_total",
                                                                    {{"result", "failed"}}));
    CHECK_MESSAGE(lastf.get_or_0("pgweir_config_reloads_total", {{"result", "ok"}}) == ok0 + 1,
                  "a failed reload must not count as ok: "
                      << lastf.show("pgweir_config_reloads_total", {{"result", "ok"}}));
    p.rewrite_config(config);
  }
  CHECK(p.running());
}

TEST_CASE("/healthz and /readyz follow PostgreSQL going away and coming back; other paths and methods") {
  ensure_database("obs_health");
  const int mport = free_port();
  Pgweir p(obs_config(ObsConfig{}, mport));
  PGWEIR_LOG_ON_FAILURE(p);

  auto health = http(mport, "/healthz");
  CHECK_MESSAGE(health.status == 200, "GET /healthz: expected 200, got " << health.status << " " << health.body);
  // /readyz may need one ~2 s check cycle after start-up.
  HttpResponse ready;
  CHECK_MESSAGE(eventually([&] { return (ready = http(mport, "/readyz")).status == 200; }, 15s),
                "GET /readyz with PostgreSQL up: expected 200, got " << ready.status << " " << ready.body);
  auto notfound = http(mport, "/nope");
  CHECK_MESSAGE(notfound.status == 404, "GET /nope: expected 404, got " << notfound.status);
  auto post = http(mport, "/metrics", "POST");
  CHECK_MESSAGE(post.status == 405, "POST /metrics: expected 405, got " << post.status);
  CHECK_MESSAGE(post.headers.find("Allow: GET") != std::string::npos,
                "a 405 should say 'Allow: GET'; headers:\n" << post.headers);
  auto post_health = http(mport, "/healthz", "POST");
  CHECK_MESSAGE(post_health.status == 405, "POST /healthz: expected 405, got " << post_health.status);
  auto query_string = http(mport, "/metrics?x=y");
  CHECK_MESSAGE(query_string.status == 200, "GET /metrics?x=y: expected 200, got " << query_string.status);

  ClusterRestarter guard;
  shared_cluster().stop();
  guard.stopped = true;
  CHECK_MESSAGE(eventually([&] { return (ready = http(mport, "/readyz")).status == 503; }, 20s),
                "GET /readyz with PostgreSQL stopped: expected 503 within ~15 s, got " << ready.status << " "
                                                                                       << ready.body);
  health = http(mport, "/healthz");
  CHECK_MESSAGE(health.status == 200, "GET /healthz with PostgreSQL stopped: expected 200, got " << health.status);
  auto s = scrape(mport);
  CHECK_MESSAGE(s.response.status == 200, "GET /metrics with PostgreSQL stopped: expected 200, got "
                                              << s.response.status);
  {
    auto [ok, last] = wait_metric(mport, "pgweir_up", {}, [](double v) { return v == 0; }, 5s);
    CHECK_MESSAGE(ok, "while /readyz says 503 expected pgweir_up 0, got " << last.show("pgweir_up"));
  }

  shared_cluster().start();
  guard.stopped = false;
  CHECK_MESSAGE(eventually([&] { return (ready = http(mport, "/readyz")).status == 200; }, 30s),
                "GET /readyz after PostgreSQL started again: expected 200, got " << ready.status << " "
                                                                                 << ready.body);
  {
    auto [ok, last] = wait_metric(mport, "pgweir_up", {}, [](double v) { return v == 1; }, 5s);
    CHECK_MESSAGE(ok, "after PostgreSQL is back expected pgweir_up 1, got " << last.show("pgweir_up"));
  }
  auto back = connect_and_query(p.conninfo("appdb", "obs_health"), "SELECT 1");
  CHECK_MESSAGE(back.ok, "a query after PostgreSQL came back: " << back.error.sqlstate << " " << back.error.message);
}

TEST_CASE("/readyz rides on answered queries: no PostgreSQL session of pgweir's own while clients are served") {
  const std::string user = "obs_ready";
  ensure_database(user);
  const int mport = free_port();
  ObsConfig c;
  c.size = 1;  // one server connection: any other session in obs_db is a ping
  // The ping logs in as the DSN's user; without one (the OS user, no such role) it ends before a session starts.
  auto config = obs_config(c, mport);
  const std::string dsn_tail = "/obs_db?sslmode=disable";
  const auto at = config.find(dsn_tail);
  REQUIRE(at != std::string::npos);
  config.insert(at + dsn_tail.size(), "&user=" + user);
  Pgweir p(config);
  PGWEIR_LOG_ON_FAILURE(p);
  auto& pg = shared_cluster();
  // Sessions started in obs_db: pgweir's server connections and each readiness ping (a full login).
  auto sessions = [&] { return std::stoll(pg.exec("SELECT sessions FROM pg_stat_database WHERE datname = 'obs_db'")); };

  HttpResponse ready;
  REQUIRE_MESSAGE(eventually([&] { return (ready = http(mport, "/readyz")).status == 200; }, 15s),
                  "GET /readyz with PostgreSQL up: expected 200, got " << ready.status << " " << ready.body);
  PgConn client(p.conninfo("appdb", user));
  REQUIRE_MESSAGE(client.ok(), client.error_text());
  REQUIRE(client.value("SELECT 1") == "1");  // the pool's server connection is open from here on

  // Three health-check cycles of steady traffic on the one server connection.
  const auto before = sessions();
  const auto until = std::chrono::steady_clock::now() + 6500ms;
  int answered = 0;
  while (std::chrono::steady_clock::now() < until) {
    REQUIRE(client.value("SELECT 1") == "1");
    ++answered;
    std::this_thread::sleep_for(20ms);
  }
  const auto during = sessions() - before;
  CHECK_MESSAGE(during == 0, "while " << answered << " queries were answered over 6.5 s, " << during
                                      << " sessions were started in obs_db (expected none: the answers show "
                                         "the database is reachable, no ping needed)");
  ready = http(mport, "/readyz");
  CHECK_MESSAGE(ready.status == 200, "GET /readyz during traffic: expected 200, got " << ready.status << " "
                                                                                      << ready.body);

  // Quiet: readiness goes back to pinging, so a database that went away is still noticed with no traffic.
  const auto quiet = sessions();
  CHECK_MESSAGE(eventually([&] { return sessions() > quiet; }, 10s),
                "with no traffic for 10 s pgweir should have pinged obs_db (a session started); sessions stayed at "
                    << quiet);
}

TEST_CASE("admin console: PgBouncer 1.18 columns, permissions, PAUSE/RESUME, RELOAD, KILL_CLIENT, RECONNECT") {
  const std::string user = "obs_console";
  ensure_database(user);
  const int mport = free_port();
  ObsConfig cfg;
  cfg.size = 2;
  const auto config = obs_config(cfg, mport);
  Pgweir p(config);
  PGWEIR_LOG_ON_FAILURE(p);

  PgConn admin(p.conninfo("pgweir", "obs_admin"));
  REQUIRE_MESSAGE(admin.ok(), "admin login to database pgweir: " << admin.error_text());
  PgConn stats(p.conninfo("pgbouncer", "obs_stats"));
  REQUIRE_MESSAGE(stats.ok(), "stats user login to database pgbouncer: " << stats.error_text());
  {
    PgConn nobody(p.conninfo("pgweir", "obs_nobody"));
    CHECK_MESSAGE(!nobody.ok(), "a user in neither admin.users nor admin.stats_users logged in to the console");
    CHECK_MESSAGE(nobody.error().sqlstate.rfind("28", 0) == 0,
                  "expected an authorization error (28xxx), got " << nobody.error_text());
  }

  // A: inside a transaction (one server active); B: ran a query and went idle (one server idle).
  PgConn a(p.conninfo("appdb", user));
  PgConn b(p.conninfo("appdb", user, "", "application_name=client_b"));
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  a.value("BEGIN");
  a.value("SELECT 1");
  b.value("SELECT 1");

  // --- Exact PgBouncer 1.18 columns.
  const std::map<std::string, std::vector<std::string>> expected_columns{
      {"POOLS",
       {"database", "user", "cl_active", "cl_waiting", "cl_active_cancel_req", "cl_waiting_cancel_req", "sv_active",
        "sv_active_cancel", "sv_being_canceled", "sv_idle", "sv_used", "sv_tested", "sv_login", "maxwait",
        "maxwait_us", "pool_mode"}},
      {"STATS",
       {"database", "total_xact_count", "total_query_count", "total_received", "total_sent", "total_xact_time",
        "total_query_time", "total_wait_time", "avg_xact_count", "avg_query_count", "avg_recv", "avg_sent",
        "avg_xact_time", "avg_query_time", "avg_wait_time"}},
      {"DATABASES",
       {"name", "host", "port", "database", "force_user", "pool_size", "min_pool_size", "reserve_pool", "pool_mode",
        "max_connections", "current_connections", "paused", "disabled"}},
      {"LISTS", {"list", "items"}},
      {"CLIENTS",
       {"type", "user", "database", "state", "addr", "port", "local_addr", "local_port", "connect_time",
        "request_time", "wait", "wait_us", "close_needed", "ptr", "link", "remote_pid", "tls", "application_name"}},
      {"SERVERS",
       {"type", "user", "database", "state", "addr", "port", "local_addr", "local_port", "connect_time",
        "request_time", "wait", "wait_us", "close_needed", "ptr", "link", "remote_pid", "tls", "application_name"}},
      {"USERS", {"name", "pool_mode"}},
      {"CONFIG", {"key", "value", "default", "changeable"}},
      {"VERSION", {"version"}},
  };
  std::map<std::string, Table> shown;
  for (const auto& [what, columns] : expected_columns) {
    CAPTURE(what);
    auto t = console(admin, "SHOW " + what);
    REQUIRE_MESSAGE(t.ok, "SHOW " << what << " failed: " << dump(t));
    CHECK_MESSAGE(t.columns == columns, "SHOW " << what << " columns:\n  expected " << join(columns) << "\n  got      "
                                                << join(t.columns));
    shown[what] = t;
  }
  auto help = console(admin, "SHOW HELP");
  CHECK_MESSAGE(help.ok, "SHOW HELP: " << dump(help));
  CHECK_MESSAGE((shown["VERSION"].rows.size() == 1 &&
                 shown["VERSION"].rows[0]["version"] == std::string("pgweir ") + PGWEIR_EXPECTED_VERSION),
                "SHOW VERSION:\n" << dump(shown["VERSION"]));
  const std::vector<std::string> lists{"databases",    "users",        "pools",      "free_clients",
                                       "used_clients", "login_clients", "free_servers", "used_servers",
                                       "dns_names",    "dns_zones",    "dns_queries", "dns_pending"};
  std::vector<std::string> got_lists;
  for (const auto& row : shown["LISTS"].rows) got_lists.push_back(row.at("list"));
  CHECK_MESSAGE(got_lists == lists, "SHOW LISTS rows: expected " << join(lists) << ", got " << join(got_lists));
  CHECK_MESSAGE(find_row(shown["CONFIG"], {{"key", "pool.size"}, {"value", "2"}}) != nullptr,
                "SHOW CONFIG should have pool.size = 2:\n" << dump(shown["CONFIG"]));

  // --- The test pool's row matches what PostgreSQL sees.
  {
    auto& pg = shared_cluster();
    const std::string where = " FROM pg_stat_activity WHERE usename = '" + user + "' AND datname = 'obs_db'";
    bool settled = eventually(
        [&] {
          return pg.exec("SELECT count(*)" + where + " AND state = 'idle in transaction'") == "1" &&
                 pg.exec("SELECT count(*)" + where + " AND state = 'idle'") == "1";
        },
        10s);
    INFO("pg_stat_activity: " << pg.exec("SELECT string_agg(pid || ':' || coalesce(state, '?'), ' ')" + where));
    CHECK_MESSAGE(settled, "expected one backend idle in transaction (A) and one idle (B)");
    const int pg_in_tx = std::stoi(pg.exec("SELECT count(*)" + where + " AND state IN ('idle in transaction', 'active')"));
    const int pg_idle = std::stoi(pg.exec("SELECT count(*)" + where + " AND state = 'idle'"));
    auto pools = console(admin, "SHOW POOLS");
    const auto* row = find_row(pools, {{"database", "appdb"}, {"user", user}});
    REQUIRE_MESSAGE(row != nullptr, "no SHOW POOLS row for appdb/" << user << ":\n" << dump(pools));
    CHECK_MESSAGE(to_int(row->at("sv_active")) == pg_in_tx, "sv_active " << row->at("sv_active")
                                                                         << " but PostgreSQL has " << pg_in_tx
                                                                         << " backends in a transaction");
    CHECK_MESSAGE(to_int(row->at("sv_idle")) + to_int(row->at("sv_used")) == pg_idle,
                  "sv_idle " << row->at("sv_idle") << " + sv_used " << row->at("sv_used") << " but PostgreSQL has "
                             << pg_idle << " idle backends");
    CHECK_MESSAGE(row->at("cl_active") == "2", "cl_active: expected 2 (A and B), got " << row->at("cl_active"));
    CHECK_MESSAGE(row->at("cl_waiting") == "0", "cl_waiting: expected 0, got " << row->at("cl_waiting"));
    CHECK_MESSAGE(row->at("pool_mode") == "transaction", "pool_mode: got " << row->at("pool_mode"));

    // SHOW SERVERS' remote_pid are exactly PostgreSQL's backends of this user.
    std::set<std::string> pg_pids, shown_pids;
    auto pid_rows = pg.try_exec("SELECT pid" + where);
    for (const auto& r : pid_rows.rows) pg_pids.insert(r[0]);
    auto servers = console(admin, "SHOW SERVERS");
    for (const auto& r : servers.rows)
      if (r.at("user") == user) shown_pids.insert(r.at("remote_pid"));
    CHECK_MESSAGE(shown_pids == pg_pids, "SHOW SERVERS remote_pid vs pg_stat_activity:\n" << dump(servers));

    auto dbs = console(admin, "SHOW DATABASES");
    const auto* db = find_row(dbs, {{"name", "appdb"}});
    REQUIRE_MESSAGE(db != nullptr, "no SHOW DATABASES row for appdb:\n" << dump(dbs));
    CHECK_MESSAGE(db->at("database") == "obs_db", "database: expected obs_db, got " << db->at("database"));
    CHECK_MESSAGE(db->at("port") == std::to_string(pg.port()), "port: got " << db->at("port"));
    CHECK_MESSAGE(db->at("pool_size") == "2", "pool_size: got " << db->at("pool_size"));
    CHECK_MESSAGE(db->at("reserve_pool") == "0", "reserve_pool: got " << db->at("reserve_pool"));

    auto clients = console(admin, "SHOW CLIENTS");
    int mine = 0;
    for (const auto& r : clients.rows) mine += r.at("user") == user && r.at("database") == "appdb";
    CHECK_MESSAGE(mine == 2, "SHOW CLIENTS should list A and B:\n" << dump(clients));
    // request_time is a wall-clock time between the client's connection and now ("YYYY-MM-DD HH:MM:SS UTC"
    // compares as text). pgweir keeps it on the steady clock and converts it for the console.
    std::time_t now_t = std::time(nullptr);
    std::tm now_tm{};
    gmtime_r(&now_t, &now_tm);
    char now_text[32];
    std::strftime(now_text, sizeof now_text, "%Y-%m-%d %H:%M:%S UTC", &now_tm);
    for (const auto& r : clients.rows) {
      if (r.at("user") != user) continue;
      CHECK_MESSAGE(r.at("request_time") >= r.at("connect_time"),
                    "request_time before connect_time:\n" << dump(clients));
      CHECK_MESSAGE(r.at("request_time") <= std::string(now_text),
                    "request_time after " << now_text << ":\n" << dump(clients));
    }

    auto st = console(admin, "SHOW STATS");
    const auto* srow = find_row(st, {{"database", "appdb"}});
    REQUIRE_MESSAGE(srow != nullptr, "no SHOW STATS row for appdb:\n" << dump(st));
    CHECK_MESSAGE(to_int(srow->at("total_query_count")) >= 2, "total_query_count: got " << srow->at("total_query_count"));
  }
  a.value("COMMIT");

  // --- Stats users may SHOW, nothing else.
  {
    auto t = console(stats, "SHOW POOLS");
    CHECK_MESSAGE(t.ok, "stats user SHOW POOLS: " << dump(t));
    for (const std::string cmd : {"PAUSE appdb", "RESUME appdb", "RELOAD", "KILL appdb", "RECONNECT appdb",
                                  "KILL_CLIENT 1"}) {
      CAPTURE(cmd);
      auto r = console(stats, cmd);
      CHECK_MESSAGE(!r.ok, "stats user ran " << cmd);
      CHECK_MESSAGE(r.sqlstate == "42501", cmd << ": expected 42501, got " << r.sqlstate << " " << r.error);
    }
    CHECK_MESSAGE(b.value("SELECT 'pool unaffected'") == "pool unaffected", "");
  }

  // --- Nonsense gets 42601 (or, for an empty query, an empty response) and the console keeps working.
  for (const std::string cmd : {"SHOW NONSENSE", "FOO", ""}) {
    CAPTURE(cmd);
    auto r = console(admin, cmd);
    if (cmd.empty())
      CHECK_MESSAGE((r.status == "PGRES_EMPTY_QUERY" || r.sqlstate == "42601"), "'': got " << dump(r));
    else
      CHECK_MESSAGE((!r.ok && r.sqlstate == "42601"), cmd << ": expected 42601, got " << dump(r));
    auto v = console(admin, "SHOW VERSION");
    CHECK_MESSAGE(v.ok, "the console stopped working after '" << cmd << "': " << dump(v));
  }

  // --- psql through the "pgbouncer" alias, as an operator would.
  {
    auto r = run({pg_bin("psql"), "-X", "-A", "-h", "127.0.0.1", "-p", std::to_string(p.port()), "-U", "obs_admin",
                  "-d", "pgbouncer", "-c", "SHOW POOLS"},
                 {{"PGCONNECT_TIMEOUT", "10"}}, 30s);
    CHECK_MESSAGE(r.exit_code == 0, "psql SHOW POOLS: exit " << r.exit_code << "\n" << r.output);
    CHECK_MESSAGE(r.output.find("appdb|" + user + "|") != std::string::npos, "psql SHOW POOLS output:\n" << r.output);
  }

  // --- PAUSE holds a new client's query until RESUME.
  {
    auto t = console(admin, "PAUSE appdb");
    REQUIRE_MESSAGE(t.ok, "PAUSE appdb: " << dump(t));
    auto held = std::async(std::launch::async,
                           [&] { return connect_and_query(p.conninfo("appdb", user), "SELECT 'released'"); });
    CHECK_MESSAGE(held.wait_for(1s) == std::future_status::timeout,
                  "a query ran while appdb was paused");
    auto dbs = console(admin, "SHOW DATABASES");
    const auto* db = find_row(dbs, {{"name", "appdb"}});
    CHECK_MESSAGE((db != nullptr && db->at("paused") == "1"), "SHOW DATABASES while paused:\n" << dump(dbs));
    auto r = console(admin, "RESUME appdb");
    CHECK_MESSAGE(r.ok, "RESUME appdb: " << dump(r));
    REQUIRE_MESSAGE(held.wait_for(30s) == std::future_status::ready, "the held query did not finish after RESUME");
    auto res = held.get();
    CHECK_MESSAGE(res.ok, "the held query after RESUME: " << res.error.sqlstate << " " << res.error.message);
    CHECK(res.value() == "released");
  }

  // --- RELOAD: a broken file is refused with an error naming the bad key; a good one is applied.
  {
    p.rewrite_config(broken(config));
    auto r = console(admin, "RELOAD");
    CHECK_MESSAGE(!r.ok, "RELOAD with a misspelt key succeeded");
    CHECK_MESSAGE(r.error.find("sise") != std::string::npos, "RELOAD's error should name the bad key 'sise': "
                                                                 << r.sqlstate << " " << r.error);
    CHECK(b.value("SELECT 'still serving'") == "still serving");
    auto good = config;
    good.replace(good.find("size = 2"), 8, "size = 3");
    p.rewrite_config(good);
    auto r2 = console(admin, "RELOAD");
    CHECK_MESSAGE(r2.ok, "RELOAD with a valid config: " << dump(r2));
    auto dbs = console(admin, "SHOW DATABASES");
    const auto* db = find_row(dbs, {{"name", "appdb"}});
    CHECK_MESSAGE((db != nullptr && db->at("pool_size") == "3"), "pool.size 3 after RELOAD:\n" << dump(dbs));
  }

  // --- KILL_CLIENT closes that client, and only it.
  {
    PgConn victim(p.conninfo("appdb", user, "", "application_name=kill_me"));
    REQUIRE(victim.ok());
    victim.value("SELECT 1");
    auto clients = console(admin, "SHOW CLIENTS");
    const auto* row = find_row(clients, {{"application_name", "kill_me"}});
    REQUIRE_MESSAGE(row != nullptr, "SHOW CLIENTS has no application_name kill_me:\n" << dump(clients));
    const auto id = row->at("ptr");
    auto k = console(admin, "KILL_CLIENT " + id);
    CHECK_MESSAGE(k.ok, "KILL_CLIENT " << id << ": " << dump(k));
    CHECK_MESSAGE(eventually([&] { return find_row(console(admin, "SHOW CLIENTS"), {{"ptr", id}}) == nullptr; }, 10s),
                  "client " << id << " still in SHOW CLIENTS after KILL_CLIENT");
    auto after = victim.exec("SELECT 1");
    CHECK_MESSAGE(!after.ok, "the killed client's next query succeeded");
    CHECK(b.value("SELECT 'b survives'") == "b survives");
  }

  // --- RECONNECT closes idle server connections: PostgreSQL's backends are replaced.
  {
    auto& pg = shared_cluster();
    const std::string where = " FROM pg_stat_activity WHERE usename = '" + user + "' AND datname = 'obs_db'";
    std::set<std::string> old_pids;
    for (const auto& r : pg.try_exec("SELECT pid" + where).rows) old_pids.insert(r[0]);
    REQUIRE_MESSAGE(!old_pids.empty(), "no server connection to reconnect");
    auto r = console(admin, "RECONNECT appdb");
    CHECK_MESSAGE(r.ok, "RECONNECT appdb: " << dump(r));
    auto any_old = [&] {
      for (const auto& row : pg.try_exec("SELECT pid" + where).rows)
        if (old_pids.count(row[0])) return true;
      return false;
    };
    CHECK_MESSAGE(eventually([&] { return !any_old(); }, 15s),
                  "old backends still present after RECONNECT: "
                      << pg.exec("SELECT string_agg(pid || ':' || coalesce(state, '?'), ' ')" + where));
    const auto pid = b.value("SELECT pg_backend_pid()");
    CHECK_MESSAGE(old_pids.count(pid) == 0, "B ran on backend " << pid << ", which existed before RECONNECT");
  }
  CHECK(p.running());
}

TEST_CASE("prometheus-pgbouncer-exporter reads POOLS, DATABASES and LISTS from the console") {
  std::string exporter = "/usr/bin/prometheus-pgbouncer-exporter";
  if (access(exporter.c_str(), X_OK) != 0) {
    auto which = run({"sh", "-c", "command -v prometheus-pgbouncer-exporter"});
    if (which.exit_code != 0) {
      MESSAGE("skipped: prometheus-pgbouncer-exporter is not installed (apt-get install prometheus-pgbouncer-exporter)");
      return;
    }
    exporter = which.output.substr(0, which.output.find('\n'));
  }
  const std::string user = "obs_exporter";
  ensure_database(user);
  ObsConfig cfg;
  cfg.size = 4;
  cfg.overflow = 1;
  Pgweir p(obs_config(cfg, free_port()));
  PGWEIR_LOG_ON_FAILURE(p);
  PgConn client(p.conninfo("appdb", user));
  REQUIRE(client.ok());
  client.value("SELECT 1");

  const std::vector<std::string> console_args{"--host", "127.0.0.1", "--pgbouncer-host", "127.0.0.1",
                                              "--pgbouncer-port", std::to_string(p.port()), "--pgbouncer-user",
                                              "obs_admin"};
  TempDir tmp("pgweir-obs-exporter");

  // The stock exporter registers its STATS collector first, and that reads total_requests (gone since
  // PgBouncer 1.8): against PgBouncer 1.18 it stops at start-up with KeyError: 'total_requests'. Against
  // pgweir it must fail the same way and for no other reason (or run, if it ever learns 1.18's columns).
  {
    const int port = free_port();
    std::vector<std::string> argv{exporter, "--port", std::to_string(port)};
    argv.insert(argv.end(), console_args.begin(), console_args.end());
    const auto log = tmp.file("stock.log");
    Child stock(argv, log);
    bool exited = false;
    bool serving = eventually(
        [&] {
          exited = !stock.running();
          return exited || can_connect("127.0.0.1", port);
        },
        30s);
    INFO("stock exporter output:\n" << read_file(log));
    REQUIRE_MESSAGE(serving, "the stock exporter neither served nor exited within 30 s");
    if (exited) {
      CHECK_MESSAGE(read_file(log).find("KeyError: 'total_requests'") != std::string::npos,
                    "the stock exporter should fail only on STATS' total_requests, as against PgBouncer 1.18");
    } else {
      stock.kill();
    }
  }

  // Its POOLS, DATABASES and LISTS collectors, served by its own main() with the STATS collector left out.
  // Run it with the interpreter of the exporter's own #! line (the one its module is installed for).
  std::string python = "/usr/bin/python3";
  {
    const auto script = read_file(exporter);
    if (script.rfind("#!", 0) == 0) {
      python = script.substr(2, script.find('\n') - 2);
      python = python.substr(0, python.find(' '));
    }
  }
  const int port = free_port();
  std::vector<std::string> argv{python, "-c",
                                "import sys\n"
                                "from prometheus_pgbouncer_exporter import cli\n"
                                "class NoStats:\n"
                                "    def __init__(self, *args, **kwargs): pass\n"
                                "    def collect(self): return iter(())\n"
                                "cli.StatsCollector = NoStats\n"
                                "sys.exit(cli.main())\n",
                                "--port", std::to_string(port)};
  argv.insert(argv.end(), console_args.begin(), console_args.end());
  const auto log = tmp.file("exporter.log");
  Child exp(argv, log);
  INFO("exporter output:\n" << read_file(log));
  REQUIRE_MESSAGE((eventually([&] { return !exp.running() || can_connect("127.0.0.1", port); }, 30s) && exp.running()),
                  "the exporter (without STATS) did not start serving: " << read_file(log));
  auto s = scrape(port);
  INFO("exporter /metrics:\n" << s.response.body);
  REQUIRE_MESSAGE(s.response.status == 200, "exporter GET /metrics: expected 200, got " << s.response.status);
  // POOLS
  CHECK_MESSAGE(s.get("pgbouncer_active_clients", {{"database", "appdb"}, {"user", user}}) == 1.0,
                s.show("pgbouncer_active_clients", {{"database", "appdb"}, {"user", user}}));
  CHECK_MESSAGE(s.get("pgbouncer_waiting_clients", {{"database", "appdb"}, {"user", user}}) == 0.0,
                s.show("pgbouncer_waiting_clients", {{"database", "appdb"}, {"user", user}}));
  // DATABASES (labelled with the server-side database name, as with PgBouncer)
  CHECK_MESSAGE(s.get("pgbouncer_pool_size", {{"database", "obs_db"}}) == 4.0,
                s.show("pgbouncer_pool_size", {{"database", "obs_db"}}));
  CHECK_MESSAGE(s.get("pgbouncer_reserve_pool", {{"database", "obs_db"}}) == 1.0,
                s.show("pgbouncer_reserve_pool", {{"database", "obs_db"}}));
  // LISTS
  for (const std::string name : {"databases", "users", "pools", "free_clients", "used_clients", "login_clients",
                                 "free_servers", "used_servers", "dns_names", "dns_zones", "dns_queries",
                                 "dns_pending"})
    CHECK_MESSAGE(s.get("pgbouncer_" + name).has_value(), "no pgbouncer_" << name << " in the exporter's scrape");
  CHECK_MESSAGE(s.get_or_0("pgbouncer_pools") >= 1, s.show("pgbouncer_pools"));
  CHECK_MESSAGE(s.get_or_0("pgbouncer_used_clients") >= 1, s.show("pgbouncer_used_clients"));
  exp.kill();
}

TEST_CASE("server.worker_fill: new clients fill the first worker, then go to the worker with the fewest; "
          "pgweir_worker_clients shows where they are, and a reload changes it") {
  ensure_database("obs_fill");
  const int mport = free_port();
  ObsConfig c;
  c.worker_fill = 2;
  Pgweir p(obs_config(c, mport));
  PGWEIR_LOG_ON_FAILURE(p);
  std::vector<std::unique_ptr<PgConn>> clients;
  auto connect = [&] {
    clients.push_back(std::make_unique<PgConn>(p.conninfo("appdb", "obs_fill")));
    REQUIRE_MESSAGE(clients.back()->ok(), clients.back()->error_text());
    CHECK(clients.back()->value("SELECT 1") == "1");
  };
  // Both workers' gauges reach the given counts (a client that left is counted until its session has ended).
  auto expect = [&](int first, int second) {
    auto counts_are = [&](const Scrape& s) {
      return s.get("pgweir_worker_clients", {{"worker", "0"}}) == first &&
             s.get("pgweir_worker_clients", {{"worker", "1"}}) == second;
    };
    Scrape last = scrape(mport);
    for (int i = 0; i < 100 && !counts_are(last); ++i) {
      std::this_thread::sleep_for(50ms);
      last = scrape(mport);
    }
    CHECK_MESSAGE(counts_are(last), "expected " << first << " and " << second << " clients on the two workers: "
                                                << last.show("pgweir_worker_clients", {{"worker", "0"}}) << ", "
                                                << last.show("pgweir_worker_clients", {{"worker", "1"}}));
  };

  expect(0, 0);
  connect();
  expect(1, 0);
  connect();
  expect(2, 0);  // the first worker takes worker_fill clients before the second gets any
  connect();
  expect(2, 1);
  connect();
  expect(2, 2);
  connect();
  expect(3, 2);  // every worker has worker_fill: the fewest, the first of equals
  clients[0].reset();
  clients[1].reset();
  expect(1, 2);
  connect();
  expect(2, 2);  // below worker_fill again, the first worker is filled first
  connect();
  expect(3, 2);
  for (auto& client : clients)
    if (client) CHECK_MESSAGE(client->value("SELECT 'still here'") == "still here", "a placed client lost its session");

  // worker_fill = 0 spreads from the first client: the next ones go to the second worker until they are even.
  c.worker_fill = 0;
  const double reloads = scrape(mport).get_or_0("pgweir_config_reloads_total", {{"result", "ok"}});
  p.rewrite_config(obs_config(c, mport));
  p.reload();
  REQUIRE(wait_metric(mport, "pgweir_config_reloads_total", {{"result", "ok"}},
                      [&](double v) { return v >= reloads + 1; }).first);
  connect();
  expect(3, 3);
  connect();
  expect(4, 3);
  clients.clear();
  expect(0, 0);
}

TEST_CASE("idle clients park after server.client_park_after and come back: queries, prepared statements, "
          "transactions, EOF, KILL_CLIENT and SIGTERM") {
  const std::string user = "obs_park";
  ensure_database(user);
  const int mport = free_port();
  ObsConfig cfg;
  cfg.size = 2;
  auto config = obs_config(cfg, mport);
  const auto at = config.find("shutdown_timeout = ");
  REQUIRE(at != std::string::npos);
  config.insert(at, "client_park_after = \"200ms\"\n");
  Pgweir p(config);
  PGWEIR_LOG_ON_FAILURE(p);
  PgConn admin(p.conninfo("pgweir", "obs_admin"));
  REQUIRE_MESSAGE(admin.ok(), admin.error_text());
  auto parks = [&] { return scrape(mport).get_or_0("pgweir_client_parks_total"); };

  // A client that logged in and said nothing is parked at once; it answers when it speaks.
  PgConn a(p.conninfo("appdb", user, "", "application_name=park_a"));
  REQUIRE_MESSAGE(a.ok(), a.error_text());
  auto [login_parked, at_login] = wait_metric(mport, "pgweir_client_parks_total", {}, [](double v) { return v >= 1; });
  CHECK_MESSAGE(login_parked, "no park counted after a client logged in and sat idle: "
                                  << at_login.show("pgweir_client_parks_total"));
  const double after_login = parks();
  CHECK(a.value("SELECT 'first'") == "first");

  // A named prepared statement made before the park is still there after it.
  PGresult* prep = PQprepare(a.raw(), "park_stmt", "SELECT $1::int + 1", 1, nullptr);
  REQUIRE_MESSAGE(PQresultStatus(prep) == PGRES_COMMAND_OK, PQerrorMessage(a.raw()));
  PQclear(prep);
  auto [parked, last] = wait_metric(mport, "pgweir_client_parks_total", {},
                                    [&](double v) { return v >= after_login + 1; }, 10s);
  CHECK_MESSAGE(parked, "the idle client did not park again after its query: " << last.show("pgweir_client_parks_total"));
  const char* arg = "41";
  PGresult* run = PQexecPrepared(a.raw(), "park_stmt", 1, &arg, nullptr, nullptr, 0);
  CHECK_MESSAGE(PQresultStatus(run) == PGRES_TUPLES_OK, "EXECUTE after the park: " << PQerrorMessage(a.raw()));
  if (PQresultStatus(run) == PGRES_TUPLES_OK) CHECK(std::string(PQgetvalue(run, 0, 0)) == "42");
  PQclear(run);

  // A client idle inside a transaction keeps its server and is not parked: the transaction goes on.
  a.value("BEGIN");
  a.value("CREATE TEMP TABLE park_t (x int)");
  const double in_tx = parks();
  std::this_thread::sleep_for(800ms);
  CHECK_MESSAGE(parks() == in_tx, "a client parked while its transaction was open");
  a.value("INSERT INTO park_t VALUES (7)");
  CHECK(a.value("SELECT x FROM park_t") == "7");
  a.value("ROLLBACK");

  // A parked client that closes its socket is gone from SHOW CLIENTS.
  {
    PgConn gone(p.conninfo("appdb", user, "", "application_name=park_eof"));
    REQUIRE(gone.ok());
    gone.value("SELECT 1");
    std::this_thread::sleep_for(600ms);
    REQUIRE(find_row(console(admin, "SHOW CLIENTS"), {{"application_name", "park_eof"}}) != nullptr);
  }
  CHECK_MESSAGE(
      eventually([&] { return find_row(console(admin, "SHOW CLIENTS"), {{"application_name", "park_eof"}}) == nullptr; },
                 10s),
      "a parked client that closed its connection is still in SHOW CLIENTS");

  // KILL_CLIENT reaches a parked client.
  {
    PgConn victim(p.conninfo("appdb", user, "", "application_name=park_kill"));
    REQUIRE(victim.ok());
    victim.value("SELECT 1");
    std::this_thread::sleep_for(600ms);
    const auto clients = console(admin, "SHOW CLIENTS");
    const auto* row = find_row(clients, {{"application_name", "park_kill"}});
    REQUIRE_MESSAGE(row != nullptr, dump(clients));
    const auto id = row->at("ptr");
    CHECK(console(admin, "KILL_CLIENT " + id).ok);
    CHECK_MESSAGE(eventually([&] { return find_row(console(admin, "SHOW CLIENTS"), {{"ptr", id}}) == nullptr; }, 10s),
                  "parked client " << id << " still in SHOW CLIENTS after KILL_CLIENT");
    CHECK_MESSAGE(!victim.exec("SELECT 1").ok, "the killed parked client's next query succeeded");
  }

  // Many parked clients at once, each still answering.
  std::vector<std::unique_ptr<PgConn>> many;
  for (int i = 0; i < 50; ++i) {
    many.push_back(std::make_unique<PgConn>(p.conninfo("appdb", user)));
    REQUIRE_MESSAGE(many.back()->ok(), many.back()->error_text());
    many.back()->value("SELECT 1");
  }
  std::this_thread::sleep_for(800ms);
  for (int i = 0; i < 50; ++i) CHECK(many[i]->value("SELECT " + std::to_string(i)) == std::to_string(i));

  // SIGTERM with parked clients: they are closed and pgweir exits 0.
  std::this_thread::sleep_for(600ms);
  CHECK(a.value("SELECT 'still here'") == "still here");
  std::this_thread::sleep_for(600ms);
  p.signal(SIGTERM);
  auto code = p.wait(20s);
  CHECK_MESSAGE(code.has_value(), "pgweir was still running 20 s after SIGTERM with parked clients");
  if (code) CHECK_MESSAGE(*code == 0, "pgweir exited " << *code << " after SIGTERM");
  CHECK_MESSAGE(!a.exec("SELECT 1").ok, "a parked client could still query after pgweir exited");
}

}  // namespace pgweir::test
