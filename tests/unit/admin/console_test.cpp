// SHOW result sets against PgBouncer 1.18's column names, order and types; actions, roles and errors.
#include <doctest/doctest.h>

#include <random>

#include "support.hpp"

using namespace pgweir::admin;
using namespace pgweir::admin::test;

namespace {

constexpr std::uint32_t k_text = 25, k_int4 = 23, k_numeric = 1700;

// "name:type" for every column, type one of text/int4/numeric: the shape a PgBouncer 1.18 client expects.
std::vector<std::string> shape(const Reply& r) {
  std::vector<std::string> out;
  for (const auto& c : r.columns) {
    std::string t = c.type_oid == k_text      ? "text"
                    : c.type_oid == k_int4    ? "int4"
                    : c.type_oid == k_numeric ? "numeric"
                                              : "oid" + std::to_string(c.type_oid);
    out.push_back(c.name + ":" + t);
  }
  return out;
}

}  // namespace

TEST_CASE("SHOW POOLS: PgBouncer 1.18 columns and values from the snapshot") {
  FakeInventory inv;
  const auto r = run(inv, "SHOW POOLS;");
  CHECK(shape(r) == std::vector<std::string>{
                        "database:text", "user:text", "cl_active:int4", "cl_waiting:int4",
                        "cl_active_cancel_req:int4", "cl_waiting_cancel_req:int4", "sv_active:int4",
                        "sv_active_cancel:int4", "sv_being_canceled:int4", "sv_idle:int4", "sv_used:int4",
                        "sv_tested:int4", "sv_login:int4", "maxwait:int4", "maxwait_us:int4", "pool_mode:text"});
  REQUIRE(r.rows.size() == 1);
  CHECK(r.at(0, "database") == "appdb");
  CHECK(r.at(0, "user") == "app");
  CHECK(r.at(0, "cl_active") == "5");
  CHECK(r.at(0, "cl_waiting") == "4");
  CHECK(r.at(0, "sv_active") == "2");
  CHECK(r.at(0, "sv_idle") == "3");
  CHECK(r.at(0, "sv_tested") == "1");
  CHECK(r.at(0, "sv_login") == "1");
  CHECK(r.at(0, "maxwait") == "2");
  CHECK(r.at(0, "maxwait_us") == "500000");
  CHECK(r.at(0, "pool_mode") == "transaction");
  CHECK(r.command_tag == "SHOW");
  CHECK(r.ready_status == 'I');
  CHECK(r.tags == std::vector<char>{'T', 'D', 'C', 'Z'});
}

TEST_CASE("SHOW STATS, STATS_TOTALS, STATS_AVERAGES, TOTALS: PgBouncer 1.18 columns (numeric)") {
  FakeInventory inv;
  DatabaseStats s;
  s.database = "appdb";
  s.total = {10, 20, 300, 4000, 50, 60, 70};
  s.average = {1, 2, 3, 4, 5, 6, 7};
  inv.stats_.push_back(s);

  const auto stats = run(inv, "show stats");
  CHECK(shape(stats) ==
        std::vector<std::string>{"database:text", "total_xact_count:numeric", "total_query_count:numeric",
                                 "total_received:numeric", "total_sent:numeric", "total_xact_time:numeric",
                                 "total_query_time:numeric", "total_wait_time:numeric", "avg_xact_count:numeric",
                                 "avg_query_count:numeric", "avg_recv:numeric", "avg_sent:numeric",
                                 "avg_xact_time:numeric", "avg_query_time:numeric", "avg_wait_time:numeric"});
  REQUIRE(stats.rows.size() == 1);
  CHECK(stats.rows[0] == std::vector<std::optional<std::string>>{"appdb", "10", "20", "300", "4000", "50", "60",
                                                                 "70", "1", "2", "3", "4", "5", "6", "7"});
  // pgbouncer-exporter 1.7 reads total_requests, which PgBouncer 1.8+ no longer has (SPEC §4).
  for (const auto& c : stats.column_names()) CHECK(c != "total_requests");

  const std::vector<std::string> subset{"database:text",       "xact_count:numeric", "query_count:numeric",
                                        "bytes_received:numeric", "bytes_sent:numeric", "xact_time:numeric",
                                        "query_time:numeric",  "wait_time:numeric"};
  const auto totals = run(inv, "SHOW STATS_TOTALS");
  CHECK(shape(totals) == subset);
  CHECK(totals.rows.at(0) ==
        std::vector<std::optional<std::string>>{"appdb", "10", "20", "300", "4000", "50", "60", "70"});
  const auto averages = run(inv, "SHOW STATS_AVERAGES");
  CHECK(shape(averages) == subset);
  CHECK(averages.rows.at(0) == std::vector<std::optional<std::string>>{"appdb", "1", "2", "3", "4", "5", "6", "7"});

  DatabaseStats s2 = s;
  s2.database = "other";
  s2.average.xact_time_us = 15;
  s2.average.xact_count = 3;
  inv.stats_.push_back(s2);
  const auto sum = run(inv, "SHOW TOTALS");
  CHECK(shape(sum) == std::vector<std::string>{"name:text", "value:numeric"});
  REQUIRE(sum.rows.size() == 14);
  CHECK(sum.rows[0] == std::vector<std::optional<std::string>>{"total_xact_count", "20"});
  CHECK(sum.rows[7] == std::vector<std::optional<std::string>>{"avg_xact_count", "4"});
  // (5 µs × 1/s + 15 µs × 3/s) / 4/s
  CHECK(sum.rows[11] == std::vector<std::optional<std::string>>{"avg_xact_time", "12"});
}

TEST_CASE("SHOW DATABASES: PgBouncer 1.18 columns, NULL for unset host/force_user/pool_mode") {
  FakeInventory inv;
  inv.databases_[0].force_user = "svc";
  DatabaseInfo unix_db;
  unix_db.name = "local";
  unix_db.database = "local";
  inv.databases_.push_back(unix_db);
  const auto r = run(inv, "SHOW DATABASES");
  CHECK(shape(r) == std::vector<std::string>{"name:text", "host:text", "port:int4", "database:text",
                                             "force_user:text", "pool_size:int4", "min_pool_size:int4",
                                             "reserve_pool:int4", "pool_mode:text", "max_connections:int4",
                                             "current_connections:int4", "paused:int4", "disabled:int4"});
  REQUIRE(r.rows.size() == 2);
  CHECK(r.at(0, "host") == "db.internal");
  CHECK(r.at(0, "force_user") == "svc");
  CHECK(r.at(0, "pool_size") == "30");
  CHECK(r.at(0, "reserve_pool") == "10");
  CHECK(r.at(0, "pool_mode") == std::nullopt);
  CHECK(r.at(1, "host") == std::nullopt);
  CHECK(r.at(1, "port") == "5432");
}

TEST_CASE("SHOW LISTS: the twelve PgBouncer 1.18 rows the exporter reads by name") {
  FakeInventory inv;
  const auto r = run(inv, "SHOW LISTS");
  CHECK(shape(r) == std::vector<std::string>{"list:text", "items:int4"});
  std::vector<std::string> names;
  for (const auto& row : r.rows) names.push_back(*row[0]);
  CHECK(names == std::vector<std::string>{"databases", "users", "pools", "free_clients", "used_clients",
                                          "login_clients", "free_servers", "used_servers", "dns_names", "dns_zones",
                                          "dns_queries", "dns_pending"});
  CHECK(r.rows[0][1] == "1");  // databases
  CHECK(r.rows[1][1] == "2");  // users
  CHECK(r.rows[2][1] == "1");  // pools
  CHECK(r.rows[4][1] == "7");  // used_clients
  CHECK(r.rows[5][1] == "1");  // login_clients
  CHECK(r.rows[7][1] == "6");  // used_servers
}

TEST_CASE("SHOW CLIENTS and SHOW SERVERS: PgBouncer 1.18 columns") {
  FakeInventory inv;
  ConnectionInfo c;
  c.id = 42;
  c.user = "app";
  c.database = "appdb";
  c.state = "waiting";
  c.addr = "10.0.0.5";
  c.port = 51234;
  c.local_addr = "10.0.0.1";
  c.local_port = 6432;
  c.connect_time = std::chrono::system_clock::time_point(std::chrono::seconds(1'700'000'000));
  c.request_time = c.connect_time;
  c.wait = std::chrono::microseconds(3'000'007);
  c.application_name = "psql";
  inv.clients_.push_back(c);
  ConnectionInfo s = c;
  s.id = 7;
  s.link = 42;
  s.state = "active";
  s.remote_pid = 12345;
  s.close_needed = true;
  s.tls = "TLSv1.3";
  inv.servers_.push_back(s);

  const std::vector<std::string> columns{
      "type:text",         "user:text",         "database:text", "state:text",        "addr:text",
      "port:int4",         "local_addr:text",   "local_port:int4", "connect_time:text", "request_time:text",
      "wait:int4",         "wait_us:int4",      "close_needed:int4", "ptr:text",        "link:text",
      "remote_pid:int4",   "tls:text",          "application_name:text"};
  const auto clients = run(inv, "SHOW CLIENTS");
  CHECK(shape(clients) == columns);
  REQUIRE(clients.rows.size() == 1);
  CHECK(clients.at(0, "type") == "C");
  CHECK(clients.at(0, "ptr") == "42");
  CHECK(clients.at(0, "link") == "");
  CHECK(clients.at(0, "wait") == "3");
  CHECK(clients.at(0, "wait_us") == "7");
  CHECK(clients.at(0, "connect_time") == "2023-11-14 22:13:20 UTC");
  CHECK(clients.at(0, "application_name") == "psql");

  const auto servers = run(inv, "SHOW SERVERS");
  CHECK(shape(servers) == columns);
  CHECK(servers.at(0, "type") == "S");
  CHECK(servers.at(0, "link") == "42");
  CHECK(servers.at(0, "remote_pid") == "12345");
  CHECK(servers.at(0, "close_needed") == "1");
  CHECK(servers.at(0, "tls") == "TLSv1.3");
}

TEST_CASE("SHOW USERS, CONFIG, VERSION, HELP") {
  FakeInventory inv;
  const auto users = run(inv, "SHOW USERS");
  CHECK(shape(users) == std::vector<std::string>{"name:text", "pool_mode:text"});
  CHECK(users.at(0, "pool_mode") == std::nullopt);
  CHECK(users.at(1, "pool_mode") == "session");

  const auto config = run(inv, "SHOW CONFIG");
  CHECK(shape(config) == std::vector<std::string>{"key:text", "value:text", "default:text", "changeable:text"});
  CHECK(config.rows.at(0) == std::vector<std::optional<std::string>>{"pool.size", "20", "20", "yes"});

  const auto version = run(inv, "SHOW VERSION");
  CHECK(shape(version) == std::vector<std::string>{"version:text"});
  CHECK(version.rows.at(0).at(0) == "pgweir 0.1.0");

  const auto help = run(inv, "SHOW HELP");
  CHECK(help.tags == std::vector<char>{'N', 'C', 'Z'});
  CHECK(help.command_tag == "SHOW");
  CHECK(help.notice_detail.find("KILL_CLIENT") != std::string::npos);
}

TEST_CASE("driver chatter: SET of session parameters and SHOW of them succeed for every role") {
  FakeInventory inv;
  for (auto role : {Role::admin, Role::stats}) {
    CHECK(run(inv, "SET client_encoding = 'UTF8'", role).command_tag == "SET");
    CHECK(run(inv, "set DateStyle to ISO", role).command_tag == "SET");
    CHECK(run(inv, "SET extra_float_digits = 3;", role).command_tag == "SET");
    const auto enc = run(inv, "SHOW client_encoding", role);
    CHECK(enc.column_names() == std::vector<std::string>{"client_encoding"});
    CHECK(enc.rows.at(0).at(0) == "UTF8");
  }
  const auto other = run(inv, "SET pool_size = 5");
  CHECK(other.error_code == "0A000");
  CHECK(inv.actions.empty());
}

TEST_CASE("empty queries get EmptyQueryResponse") {
  FakeInventory inv;
  for (auto q : {"", "   ", ";", " ; ;\n"}) {
    CAPTURE(q);
    const auto r = run(inv, q);
    CHECK(r.tags == std::vector<char>{'I', 'Z'});
  }
}

TEST_CASE("actions reach the inventory with their arguments") {
  FakeInventory inv;
  CHECK(run(inv, "PAUSE").command_tag == "PAUSE");
  CHECK(run(inv, "pause appdb;").command_tag == "PAUSE");
  CHECK(run(inv, "Resume \"appdb\"").command_tag == "RESUME");
  CHECK(run(inv, "RESUME").command_tag == "RESUME");
  CHECK(run(inv, "RECONNECT").command_tag == "RECONNECT");
  CHECK(run(inv, "RECONNECT appdb").command_tag == "RECONNECT");
  CHECK(run(inv, "KILL appdb").command_tag == "KILL");
  CHECK(run(inv, "KILL_CLIENT 42").command_tag == "KILL_CLIENT");
  CHECK(run(inv, "kill_client 0x2a").command_tag == "KILL_CLIENT");
  CHECK(run(inv, "RELOAD").command_tag == "RELOAD");
  CHECK(run(inv, "SHUTDOWN").command_tag == "SHUTDOWN");
  CHECK(run(inv, "shutdown wait_for_clients").command_tag == "SHUTDOWN");
  CHECK(run(inv, "SHUTDOWN WAIT_FOR_SERVERS;").command_tag == "SHUTDOWN");
  CHECK(inv.actions == std::vector<std::string>{"pause", "pause appdb", "resume appdb", "resume", "reconnect",
                                                "reconnect appdb", "kill appdb", "kill_client 42", "kill_client 42",
                                                "reload", "shutdown 0", "shutdown 2", "shutdown 1"});
}

TEST_CASE("a database served through the wildcard can be named once it has a pool") {
  FakeInventory inv;
  inv.pools_[0].snapshot.key.database = "dynamic";
  CHECK(run(inv, "PAUSE dynamic").command_tag == "PAUSE");
  CHECK(run(inv, "PAUSE \"*\"").error_code == "3D000");
}

TEST_CASE("action errors: unknown database 3D000, console database and refusals 55000") {
  FakeInventory inv;
  const auto missing = run(inv, "PAUSE nosuchdb");
  CHECK(missing.error_code == "3D000");
  CHECK(missing.error_message.find("nosuchdb") != std::string::npos);
  CHECK(run(inv, "KILL pgweir").error_code == "55000");
  CHECK(run(inv, "RECONNECT pgbouncer").error_code == "55000");
  CHECK(inv.actions.empty());

  inv.fail_with = "pgweir is already paused";
  const auto refused = run(inv, "PAUSE");
  CHECK(refused.error_code == "55000");
  CHECK(refused.error_message == "pgweir is already paused");
  inv.fail_with = "pgweir.toml:3:1: unknown key";
  CHECK(run(inv, "RELOAD").error_message == "pgweir.toml:3:1: unknown key");
}

TEST_CASE("stats users may SHOW but get 42501 for everything else") {
  FakeInventory inv;
  for (auto q : {"SHOW POOLS", "SHOW STATS", "SHOW DATABASES", "SHOW LISTS", "SHOW CLIENTS", "SHOW SERVERS",
                 "SHOW USERS", "SHOW CONFIG", "SHOW VERSION", "SHOW HELP"}) {
    CAPTURE(q);
    CHECK(run(inv, q, Role::stats).error_code.empty());
  }
  for (auto q : {"PAUSE", "PAUSE appdb", "RESUME", "RECONNECT", "KILL appdb", "KILL_CLIENT 1", "RELOAD", "SHUTDOWN",
                 "SUSPEND", "KILL nosuchdb"}) {
    CAPTURE(q);
    const auto r = run(inv, q, Role::stats);
    CHECK(r.error_code == "42501");
    CHECK(r.rows.empty());
  }
  CHECK(inv.actions.empty());
}

TEST_CASE("unsupported PgBouncer commands get 0A000, unknown ones 42601") {
  FakeInventory inv;
  CHECK(run(inv, "SUSPEND").error_code == "0A000");
  CHECK(run(inv, "DISABLE appdb").error_code == "0A000");
  CHECK(run(inv, "SHOW FDS").error_code == "0A000");
  CHECK(run(inv, "SHOW MEM").error_code == "0A000");
  CHECK(run(inv, "SHOW NONSENSE").error_code == "42601");
  CHECK(run(inv, "SELECT 1").error_code == "0A000");
  const auto garbage = run(inv, "DROP TABLE users");
  CHECK(garbage.error_code == "42601");
  CHECK(garbage.error_message.find("SHOW HELP") != std::string::npos);
}

TEST_CASE("random input never crashes and always yields exactly one ReadyForQuery") {
  FakeInventory inv;
  Console console;
  std::mt19937 rng(12345);
  const std::string alphabet = "SHOWPAUSEKILL_CLIENTset=; \"'\t\nabcxyz0123456789\x01\x7f\xff";
  const std::vector<std::string> words{"SHOW", "POOLS", "PAUSE", "KILL_CLIENT", "SET", "=", "TO", ";", "\"", "'",
                                       "appdb", "pgweir", "0x", "SHUTDOWN", "WAIT_FOR_CLIENTS", " ", "RELOAD"};
  for (int i = 0; i < 10000; ++i) {
    std::string q;
    const int n = static_cast<int>(rng() % 12);
    for (int j = 0; j < n; ++j) {
      if (rng() % 2)
        q += alphabet[rng() % alphabet.size()];
      else
        q += words[rng() % words.size()];
    }
    const auto role = rng() % 2 ? Role::admin : Role::stats;
    const std::string wire = console.execute(q, role, inv);
    // Decode without doctest's per-assertion cost on the happy path.
    std::string_view w = wire;
    int ready = 0;
    bool ok = true;
    while (!w.empty()) {
      const auto f = pgweir::protocol::peek_message(w, pgweir::limits::k_max_message);
      if (f.status != pgweir::protocol::FrameStatus::ok) {
        ok = false;
        break;
      }
      ready += f.frame.tag == 'Z';
      w.remove_prefix(f.frame.size());
    }
    if (!ok || ready != 1 || wire.back() != 'I') {
      CAPTURE(q);
      FAIL("malformed response");
    }
  }
}
