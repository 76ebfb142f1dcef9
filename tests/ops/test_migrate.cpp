// Tests for `pgweir --from-pgbouncer`: the ini reader, and a realistic pgbouncer.ini converted and then loaded by
// pgweir's own config loader, so the output is checked as pgweir will read it.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "pgweir/config/config.hpp"
#include "pgweir/migrate/pgbouncer.hpp"

namespace config = pgweir::config;
namespace migrate = pgweir::migrate;
using namespace std::chrono_literals;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  REQUIRE_MESSAGE(in, "cannot read " << path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

std::string replace_all(std::string text, std::string_view from, std::string_view to) {
  for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
  return text;
}

// A directory holding the files the fixture names (the loader checks that they are readable).
struct FixtureDir {
  std::string path;
  FixtureDir() {
    char tmpl[] = "/tmp/pgweir-migrate-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path = tmpl;
    write_file(path + "/userlist.txt", "\"pgbouncer\" \"secret\"\n\"appuser\" \"apppass\"\n");
    write_file(path + "/pg_hba.conf", "host all all 0.0.0.0/0 scram-sha-256\n");
    for (const char* f : {"server.crt", "server.key", "ca.crt"}) write_file(path + "/" + f, "placeholder\n");
  }
  ~FixtureDir() { std::filesystem::remove_all(path); }
};

// True when some `key = value  # comment` line names `setting` in its comment (the key's PgBouncer source).
bool source_comment_names(const std::string& toml, const std::string& setting) {
  std::istringstream lines(toml);
  for (std::string line; std::getline(lines, line);) {
    auto comment = line.find("  # ");
    if (line.starts_with("#") || comment == std::string::npos) continue;
    if (line.find(setting, comment) != std::string::npos) return true;
  }
  return false;
}

// No environment: a `${x}` from the ini must reach pgweir escaped, never as a substitution.
std::optional<std::string> no_env(std::string_view) { return std::nullopt; }

config::LoadResult load(const std::string& toml) {
  auto result = config::load_string(toml, "converted.toml", no_env);
  for (const auto& e : result.errors) MESSAGE(e.to_string());
  return result;
}

}  // namespace

TEST_CASE("ini reader: sections, both comment characters, quoted database names, %include") {
  auto ini = migrate::parse_ini(
      "; comment\n# another\n[Databases]\n\"my \"\"db\"\"\" = host=x\n[pgbouncer]\n  Listen_Port = 6000  \n"
      "server_reset_query = DISCARD ALL; # not a comment\n%include other.ini\nnot a setting\n");
  REQUIRE(ini.entries.size() == 4);
  CHECK(ini.entries[0].section == "databases");
  CHECK(ini.entries[0].key == "my \"db\"");
  CHECK(ini.entries[0].value == "host=x");
  CHECK(ini.entries[1].key == "Listen_Port");
  CHECK(ini.entries[1].value == "6000");
  CHECK(ini.entries[1].line == 6);
  CHECK(ini.entries[2].value == "DISCARD ALL; # not a comment");
  CHECK(ini.entries[3].key == "%include");
  CHECK(ini.entries[3].value == "other.ini");
  REQUIRE(ini.problems.size() == 1);
  CHECK(ini.problems[0].starts_with("9:"));
}

TEST_CASE("connection strings: quotes, both escapes, spaces around '='") {
  std::vector<migrate::ConnPair> pairs;
  REQUIRE(migrate::parse_conn_pairs("Host = db  password='it''s \\'x\\'' pool_size=5", pairs));
  REQUIRE(pairs.size() == 3);
  CHECK(pairs[0].key == "host");
  CHECK(pairs[0].value == "db");
  CHECK(pairs[1].value == "it's 'x'");
  CHECK(pairs[2].value == "5");
  pairs.clear();
  CHECK_FALSE(migrate::parse_conn_pairs("password='open", pairs));
  pairs.clear();
  CHECK_FALSE(migrate::parse_conn_pairs("lonely", pairs));
}

TEST_CASE("a realistic pgbouncer.ini converts to a config pgweir loads, with every setting accounted for") {
  FixtureDir dir;
  const std::string ini = replace_all(read_file(PGWEIR_OPS_DATA "/pgbouncer.ini"), "@DIR@", dir.path);
  const std::string toml = migrate::from_pgbouncer(ini, "/etc/pgbouncer/pgbouncer.ini");
  INFO(toml);
  auto loaded = load(toml);
  REQUIRE(loaded.errors.empty());
  const auto& c = *loaded.config;

  SUBCASE("[pgbouncer] settings") {
    CHECK(c.server.listen == std::vector<std::string>{"10.0.0.5:6543", "[::1]:6543"});
    CHECK(c.server.unix_socket_dir == "/var/run/postgresql");
    CHECK(c.server.max_client_connections == 5000);
    CHECK(c.server.client_login_timeout == 30s);
    CHECK(c.server.client_idle_timeout == 0s);

    CHECK(c.tls.mode == config::TlsMode::require);
    CHECK(c.tls.cert_file == dir.path + "/server.crt");
    CHECK(c.tls.key_file == dir.path + "/server.key");
    CHECK(c.tls.ca_file == dir.path + "/ca.crt");
    CHECK(c.tls.min_protocol == config::TlsVersion::tls1_2);
    CHECK(c.tls.ciphers == "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384");

    CHECK(c.auth.method == config::AuthMethod::scram_sha_256);
    CHECK(c.auth.users_file == dir.path + "/userlist.txt");
    CHECK(c.auth.hba_file == dir.path + "/pg_hba.conf");
    CHECK(c.auth.query == "SELECT usename, passwd FROM pgbouncer.get_auth($1)");
    CHECK(c.auth.query_user == "pgbouncer");

    CHECK(c.admin.users == std::vector<std::string>{"postgres", "admin"});
    CHECK(c.admin.stats_users == std::vector<std::string>{"stats", "monitoring"});

    CHECK(c.pool.mode == config::PoolMode::transaction);
    CHECK(c.pool.size == 30);
    CHECK(c.pool.max_overflow == 8);
    CHECK(c.pool.min_idle == 5);
    CHECK(c.pool.timeout == 45s);
    CHECK(c.pool.connect_timeout == 5s);
    CHECK(c.pool.idle_timeout == 5min);
    CHECK(c.pool.max_lifetime == 15min);
    CHECK(c.pool.pre_ping == 10s);
    CHECK(c.pool.reset_query == "DISCARD ALL;");
    CHECK(c.pool.max_db_connections == 100);
    CHECK(c.pool.max_user_connections == 90);
    CHECK(c.pool.idle_transaction_timeout == 60s);
    CHECK(c.pool.query_timeout == 500ms);
    CHECK(c.pool.max_prepared_statements == 150);
    CHECK(c.log.level == config::LogLevel::debug);
  }

  SUBCASE("[databases]: dsn, password, pool overrides, server_tls_* defaults") {
    REQUIRE(c.databases.contains("appdb"));
    const auto& app = c.databases.at("appdb");
    CHECK(app.target.hosts == std::vector<std::string>{"db1.internal"});
    CHECK(app.target.ports == std::vector<std::uint16_t>{5433});
    CHECK(app.target.dbname == "app_production");
    CHECK(app.target.user == "appuser");
    CHECK(app.target.sslmode == "verify-ca");
    CHECK(app.target.sslrootcert == "/etc/ssl/db-ca.pem");
    CHECK(app.target.password.empty());  // kept out of the dsn, so the dsn can be logged
    REQUIRE(app.password);
    CHECK(*app.password == "s3cr'et ${x}");  // neither the '' nor the ${x} was mangled
    CHECK(app.overrides.size == 40);
    CHECK(app.overrides.max_overflow == 5);
    CHECK(app.overrides.mode == config::PoolMode::transaction);

    REQUIRE(c.databases.contains("temporal"));
    const auto& temporal = c.databases.at("temporal");
    CHECK(temporal.overrides.size == 10);
    CHECK(temporal.overrides.min_idle == 10);  // PgBouncer's 15 is more than pgweir allows for size 10

    REQUIRE(c.databases.contains("reports db"));
    const auto& reports = c.databases.at("reports db");
    CHECK(reports.target.dbname == "reports db");  // PgBouncer's default dbname is the entry's name
    CHECK(reports.target.hosts == std::vector<std::string>{"/var/run/postgresql"});
    CHECK(reports.target.application_name == "reports");
    CHECK(reports.target.options == "-c DateStyle=ISO -c TimeZone=UTC");

    REQUIRE(c.databases.contains("analytics"));
    CHECK(c.databases.at("analytics").target.sslmode == "verify-full");  // its own wins over server_tls_sslmode
    CHECK(c.databases.at("analytics").target.sslrootcert == "/etc/ssl/analytics-ca.pem");

    REQUIRE(c.databases.contains("*"));
    CHECK(c.databases.at("*").target.hosts == std::vector<std::string>{"db-fallback.internal"});
    CHECK(c.databases.at("*").target.dbname.empty());

    CHECK_FALSE(c.databases.contains("pgbouncer"));  // the console's name
    CHECK(c.databases.size() == 5);
  }

  SUBCASE("[users]") {
    REQUIRE(c.users.contains("backupuser"));
    CHECK(c.users.at("backupuser").overrides.mode == config::PoolMode::session);
    CHECK(c.users.at("backupuser").overrides.max_user_connections == 4);
    REQUIRE(c.users.contains("temporaluser"));
    CHECK(c.users.at("temporaluser").overrides.size == 25);
  }

  SUBCASE("settings without an equivalent are comments saying why") {
    for (const char* expected : {
             "# pgbouncer: logfile = /var/log/pgbouncer/pgbouncer.log (no equivalent: ",
             "# pgbouncer: pidfile = /var/run/pgbouncer/pgbouncer.pid (no equivalent: ",
             "# pgbouncer: unix_socket_mode = 0777 (no equivalent: ",
             "# pgbouncer: reserve_pool_timeout = 3 (no equivalent: ",
             "# pgbouncer: server_check_query = select 1 (no equivalent: ",
             "# pgbouncer: server_tls_protocols = secure (no equivalent: ",
             "# pgbouncer: tcp_keepalive = 1 (no equivalent: ",
             "# pgbouncer: frobnicate_level = 11 (no equivalent: not a PgBouncer setting pgweir knows)",
             "# pgbouncer: %include /etc/pgbouncer/extra.ini (no equivalent: ",
             "# pgbouncer: connect_query = SELECT 1 (no equivalent: ",
             "# pgbouncer: auth_user = pgbouncer (no equivalent: ",
             "# pgbouncer: [databases] pgbouncer = host=127.0.0.1 (no equivalent: ",
         }) {
      CHECK_MESSAGE(toml.find(expected) != std::string::npos, "missing: " << expected);
    }
    // Every setting of the [pgbouncer] section shows up once, as a key's source or as a comment.
    for (const auto& e : migrate::parse_ini(ini).entries) {
      if (e.section != "pgbouncer" || e.key == "%include") continue;
      const bool as_key = source_comment_names(toml, e.key);
      const bool as_note = toml.find("# pgbouncer: " + e.key + " = ") != std::string::npos;
      CHECK_MESSAGE((as_key || as_note), e.key << " is neither converted nor commented");
    }
  }
}

TEST_CASE("an empty pgbouncer.ini keeps PgBouncer's behaviour where pgweir's defaults differ") {
  const std::string toml = migrate::from_pgbouncer("[pgbouncer]\n", "empty.ini");
  INFO(toml);
  auto loaded = load(toml);
  REQUIRE(loaded.errors.empty());
  const auto& c = *loaded.config;
  CHECK(c.server.listen == std::vector<std::string>{"127.0.0.1:6432"});  // PgBouncer had no TCP listener
  CHECK(c.server.unix_socket_dir == "/tmp");
  CHECK(c.server.max_client_connections == 100);
  CHECK(c.tls.mode == config::TlsMode::disable);
  CHECK(c.auth.method == config::AuthMethod::md5);
  CHECK(c.pool.mode == config::PoolMode::session);
  CHECK(c.pool.max_overflow == 0);
  CHECK(c.pool.timeout == 120s);
  CHECK(c.pool.connect_timeout == 15s);
  CHECK(c.pool.max_lifetime == 1h);
  CHECK(c.pool.size == 20);
}

TEST_CASE("special values: listen_addr *, auth_type plain/any/pam, server_lifetime 0, server_check_delay 0") {
  auto convert = [](const std::string& settings) {
    auto toml = migrate::from_pgbouncer("[pgbouncer]\n" + settings, "x.ini");
    auto loaded = load(toml);
    INFO(toml);
    REQUIRE(loaded.errors.empty());
    return std::pair{toml, loaded.config};
  };
  CHECK(convert("listen_addr = *\n").second->server.listen ==
        std::vector<std::string>{"0.0.0.0:6432", "[::]:6432"});
  CHECK(convert("auth_type = plain\n").second->auth.method == config::AuthMethod::md5);
  CHECK(convert("auth_type = any\n").second->auth.method == config::AuthMethod::trust);
  auto [pam_toml, pam] = convert("auth_type = pam\n");
  CHECK(pam->auth.method == config::AuthMethod::scram_sha_256);
  CHECK(pam_toml.find("# pgbouncer: auth_type = pam (no equivalent: ") != std::string::npos);
  auto [lifetime_toml, lifetime] = convert("server_lifetime = 0\nserver_check_delay = 0\n");
  CHECK(lifetime->pool.max_lifetime == 1h);
  CHECK(lifetime_toml.find("# pgbouncer: server_lifetime = 0 (no equivalent: ") != std::string::npos);
  CHECK(lifetime->pool.pre_ping == 1ms);
  auto [bad_toml, bad] = convert("default_pool_size = lots\npool_mode = turbo\n");
  CHECK(bad->pool.size == 20);
  CHECK(bad->pool.mode == config::PoolMode::session);
  CHECK(bad_toml.find("# pgbouncer: default_pool_size = lots (not converted: ") != std::string::npos);
  CHECK(convert("client_tls_protocols = tlsv1.3\n").second->tls.min_protocol == config::TlsVersion::tls1_3);
  auto [old_toml, old] = convert("client_tls_protocols = all\n");
  CHECK(old->tls.min_protocol == config::TlsVersion::tls1_2);
  CHECK(old_toml.find("# pgbouncer: client_tls_protocols = all (no equivalent: ") != std::string::npos);
  auto [auth_only_query, _] = convert("auth_query = SELECT 1\n");
  CHECK(auth_only_query.find("\nquery = ") == std::string::npos);  // PgBouncer ignores it without auth_user
}
