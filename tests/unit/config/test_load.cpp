// Whole configs: every key lands in its struct field, absent keys keep SPEC §2's defaults, the shipped
// reference config is valid, and pool settings resolve [pool] < [databases.NAME] < [users.NAME].
#include <doctest/doctest.h>

#include "support.hpp"

using namespace pgweir::config;
using namespace pgweir::config::test;
using namespace std::chrono_literals;

TEST_CASE("load: every key of a full config reaches the structs") {
  TempDir dir;
  dir.write("server.crt", "cert");
  dir.write("server.key", "key");
  dir.write("ca.crt", "ca");
  dir.write("userlist.txt", "\"u\" \"p\"\n");
  dir.write("pg_hba.conf", "host all all 0.0.0.0/0 scram-sha-256\n");
  dir.write("app.pw", "app-secret\n");
  const std::string path = dir.write("pgweir.toml", R"(
[server]
listen = ["127.0.0.1:6432", "[::1]:6433"]
unix_socket_dir = "/tmp"
workers = 4
worker_fill = 0
max_client_connections = 500
client_login_timeout = "5s"
client_idle_timeout = "15m"
shutdown_timeout = 10

[tls]
mode = "verify-full"
cert_file = "server.crt"
key_file = "${TLS_DIR}/server.key"
ca_file = "ca.crt"
min_protocol = "TLSv1.3"
ciphers = "HIGH"

[auth]
method = "hba"
users_file = "userlist.txt"
hba_file = "pg_hba.conf"
query = "SELECT usename, passwd FROM pg_shadow WHERE usename = $1"
query_user = "pgweir_auth"
query_database = "postgres"

[admin]
users = ["admin", "${ADMIN_USER}"]
stats_users = ["stats"]

[pool]
mode = "session"
size = 5
max_overflow = 2
min_idle = 1
timeout = "500ms"
connect_timeout = "3s"
idle_timeout = "1h"
max_lifetime = 7200
pre_ping = "0"
reset_query = "RESET ALL"
max_db_connections = 50
max_user_connections = 40
idle_transaction_timeout = "1m"
query_timeout = "2m"
max_prepared_statements = 0
session_state = "error"

[databases.appdb]
dsn = "postgresql://app@db1.internal:5433/app?sslmode=verify-full"
password_file = "app.pw"
size = 30
mode = "transaction"

[databases."*"]
dsn = "host=db2.internal port=5432"
password = "${WILDCARD_PW}"

[users.backup]
mode = "statement"
query_timeout = "0"
max_prepared_statements = 50

[metrics]
listen = ""

[log]
level = "debug"
format = "json"
)");
  const auto env = env_of({{"TLS_DIR", dir.path().string()}, {"ADMIN_USER", "root"}, {"WILDCARD_PW", "wild"}});
  const auto result = load_file(path, env);
  const Config& c = ok(result);

  CHECK(c.path == path);
  CHECK(c.server.listen == std::vector<std::string>{"127.0.0.1:6432", "[::1]:6433"});
  CHECK(c.server.unix_socket_dir == "/tmp");
  CHECK(c.server.workers == 4);
  CHECK(c.server.worker_fill == 0);
  CHECK(c.server.max_client_connections == 500);
  CHECK(c.server.client_login_timeout == 5s);
  CHECK(c.server.client_idle_timeout == 15min);
  CHECK(c.server.shutdown_timeout == 10s);

  CHECK(c.tls.mode == TlsMode::verify_full);
  // Relative paths are taken relative to the config file's directory.
  CHECK(c.tls.cert_file == (dir.path() / "server.crt").string());
  CHECK(c.tls.key_file == (dir.path() / "server.key").string());
  CHECK(c.tls.ca_file == (dir.path() / "ca.crt").string());
  CHECK(c.tls.min_protocol == TlsVersion::tls1_3);
  CHECK(c.tls.ciphers == "HIGH");

  CHECK(c.auth.method == AuthMethod::hba);
  CHECK(c.auth.users_file == (dir.path() / "userlist.txt").string());
  CHECK(c.auth.hba_file == (dir.path() / "pg_hba.conf").string());
  CHECK(c.auth.query == "SELECT usename, passwd FROM pg_shadow WHERE usename = $1");
  CHECK(c.auth.query_user == "pgweir_auth");
  CHECK(c.auth.query_database == "postgres");

  CHECK(c.admin.users == std::vector<std::string>{"admin", "root"});
  CHECK(c.admin.stats_users == std::vector<std::string>{"stats"});

  PoolSettings pool;
  pool.mode = PoolMode::session;
  pool.size = 5;
  pool.max_overflow = 2;
  pool.min_idle = 1;
  pool.timeout = 500ms;
  pool.connect_timeout = 3s;
  pool.idle_timeout = 1h;
  pool.max_lifetime = 2h;
  pool.pre_ping = 0ms;
  pool.reset_query = "RESET ALL";
  pool.max_db_connections = 50;
  pool.max_user_connections = 40;
  pool.idle_transaction_timeout = 1min;
  pool.query_timeout = 2min;
  pool.max_prepared_statements = 0;
  pool.session_state = SessionState::error;
  CHECK(c.pool == pool);

  REQUIRE(c.databases.size() == 2);
  const DatabaseConfig& app = c.databases.at("appdb");
  CHECK(app.name == "appdb");
  CHECK(app.dsn == "postgresql://app@db1.internal:5433/app?sslmode=verify-full");
  CHECK(app.target.hosts == std::vector<std::string>{"db1.internal"});
  CHECK(app.target.ports == std::vector<std::uint16_t>{5433});
  CHECK(app.target.user == "app");
  CHECK(app.target.dbname == "app");
  CHECK(app.target.sslmode == "verify-full");
  CHECK(app.password == "app-secret");
  PoolOverrides app_overrides;
  app_overrides.size = 30;
  app_overrides.mode = PoolMode::transaction;
  CHECK(app.overrides == app_overrides);

  const DatabaseConfig& wildcard = c.databases.at("*");
  CHECK(wildcard.name == "*");
  CHECK(wildcard.target.hosts == std::vector<std::string>{"db2.internal"});
  CHECK(wildcard.password == "wild");
  CHECK(wildcard.overrides == PoolOverrides{});

  REQUIRE(c.users.size() == 1);
  const UserConfig& backup = c.users.at("backup");
  CHECK(backup.name == "backup");
  PoolOverrides backup_overrides;
  backup_overrides.mode = PoolMode::statement;
  backup_overrides.query_timeout = 0ms;
  backup_overrides.max_prepared_statements = 50;
  CHECK(backup.overrides == backup_overrides);

  CHECK(c.metrics.listen.empty());
  CHECK(c.log.level == LogLevel::debug);
  CHECK(c.log.format == LogFormat::json);
}

TEST_CASE("load: absent keys keep SPEC §2's defaults") {
  const auto result = load_string("[tls]\nmode = \"disable\"\n", "test.toml", k_no_env);
  const Config& c = ok(result);
  CHECK(c.server.listen == std::vector<std::string>{"0.0.0.0:6432"});
  CHECK(c.server.unix_socket_dir.empty());
  CHECK(c.server.workers == 0);
  CHECK(c.server.worker_fill == 16);
  CHECK(c.server.max_client_connections == 10000);
  CHECK(c.server.client_login_timeout == 60s);
  CHECK(c.server.client_idle_timeout == 0ms);
  CHECK(c.server.shutdown_timeout == 30s);
  CHECK(c.tls.cert_file.empty());
  CHECK(c.tls.min_protocol == TlsVersion::tls1_2);
  CHECK(c.tls.ciphers == "HIGH:!aNULL:!MD5");
  CHECK(c.auth.method == AuthMethod::scram_sha_256);
  CHECK(c.auth.users_file.empty());
  CHECK(c.auth.query.empty());
  CHECK(c.admin.users.empty());
  CHECK(c.admin.stats_users.empty());
  CHECK(c.databases.empty());
  CHECK(c.users.empty());
  CHECK(c.metrics.listen == "127.0.0.1:9127");
  CHECK(c.log.level == LogLevel::info);
  CHECK(c.log.format == LogFormat::text);

  const PoolSettings& p = c.pool;
  CHECK(p.mode == PoolMode::transaction);
  CHECK(p.size == 20);
  CHECK(p.max_overflow == 10);
  CHECK(p.min_idle == 0);
  CHECK(p.timeout == 30s);
  CHECK(p.connect_timeout == 10s);
  CHECK(p.idle_timeout == 10min);
  CHECK(p.max_lifetime == 30min);
  CHECK(p.pre_ping == 30s);
  CHECK(p.reset_query == "DISCARD ALL");
  CHECK(p.max_db_connections == 0);
  CHECK(p.max_user_connections == 0);
  CHECK(p.idle_transaction_timeout == 0ms);
  CHECK(p.query_timeout == 0ms);
  CHECK(p.max_prepared_statements == 200);
  CHECK(p.session_state == SessionState::pin);
}

TEST_CASE("load: the reference config/pgweir.toml is valid and documents the defaults") {
  const auto result = load_file(PGWEIR_REFERENCE_CONFIG, k_no_env);
  const Config& c = ok(result);
  CHECK(c.pool == PoolSettings{});
  CHECK(c.server.listen == ServerSection{}.listen);
  CHECK(c.server.max_client_connections == ServerSection{}.max_client_connections);
  CHECK(c.server.worker_fill == ServerSection{}.worker_fill);
  CHECK(c.metrics.listen == MetricsSection{}.listen);
  CHECK(c.auth.method == AuthSection{}.method);
  REQUIRE(c.databases.size() == 1);
  const auto& db = c.databases.begin()->second;
  CHECK(db.target.hosts == std::vector<std::string>{"localhost"});
  CHECK(db.overrides == PoolOverrides{});
}

TEST_CASE("load: a config file that cannot be read is one error naming it") {
  const auto result = load_file("/nonexistent/pgweir.toml", k_no_env);
  const Diagnostic e = only_error(result);
  CHECK(e.line == 0);
  CHECK(e.to_string() == "/nonexistent/pgweir.toml: cannot read `/nonexistent/pgweir.toml`: No such file or directory");
}

TEST_CASE("pool_settings: [pool] < [databases.NAME] or \"*\" < [users.NAME]") {
  const auto result = load(R"(
[pool]
size = 10
timeout = "5s"
mode = "statement"

[databases.a]
dsn = "host=a"
size = 20
mode = "session"

[databases."*"]
dsn = "host=w"
size = 7

[users.u]
size = 30
)");
  const Config& c = ok(result);
  SUBCASE("database only") {
    const auto s = c.pool_settings("a", "someone");
    CHECK(s.size == 20);
    CHECK(s.mode == PoolMode::session);
    CHECK(s.timeout == 5s);
    CHECK(s.max_overflow == 10);  // SPEC default, set nowhere
  }
  SUBCASE("the user wins over the database") {
    const auto s = c.pool_settings("a", "u");
    CHECK(s.size == 30);
    CHECK(s.mode == PoolMode::session);
  }
  SUBCASE("an unknown database falls to the wildcard") {
    CHECK(c.pool_settings("other", "someone").size == 7);
    CHECK(c.pool_settings("other", "someone").mode == PoolMode::statement);
    CHECK(c.pool_settings("other", "u").size == 30);
  }
  SUBCASE("find_database: exact name first, then the wildcard") {
    REQUIRE(c.find_database("a") != nullptr);
    CHECK(c.find_database("a")->name == "a");
    REQUIRE(c.find_database("zzz") != nullptr);
    CHECK(c.find_database("zzz")->name == "*");
  }
}

TEST_CASE("pool_settings: without a wildcard an unknown database gets [pool]") {
  const auto result = load("[pool]\nsize = 3\n[databases.a]\ndsn = \"host=a\"\nsize = 4\n");
  const Config& c = ok(result);
  CHECK(c.find_database("b") == nullptr);
  CHECK(c.pool_settings("b", "x").size == 3);
  CHECK(c.pool_settings("a", "x").size == 4);
}

TEST_CASE("load: inline tables and dotted keys are the same as table headers") {
  const auto result = load("pool = { size = 3 }\ndatabases.a.dsn = \"host=a\"\ndatabases.a.min_idle = 2\n");
  const Config& c = ok(result);
  CHECK(c.pool.size == 3);
  CHECK(c.databases.at("a").overrides.min_idle == 2);
}
