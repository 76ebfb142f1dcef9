// Each class of config error: its message and the exact line:col it points at, and that all are collected.
#include <doctest/doctest.h>

#include "support.hpp"

using namespace pgweir::config;
using namespace pgweir::config::test;

namespace {

void check_at(const Diagnostic& e, int line, int column) {
  INFO(e.to_string());
  CHECK(e.line == line);
  CHECK(e.column == column);
}

}  // namespace

TEST_CASE("errors: TOML syntax error with its line:col") {
  const auto e = only_error(load("[pool]\nsize = = 3\n"));
  check_at(e, 2, 8);
  CHECK(e.message.starts_with("TOML syntax error: "));
}

TEST_CASE("errors: unknown keys, with a suggestion when one is close") {
  SUBCASE("a typo in a table") {
    const auto e = only_error(load("[pool]\n  sise = 5\n"));
    check_at(e, 2, 3);
    CHECK(e.message == "unknown key `pool.sise`; did you mean `size`?");
    CHECK(e.to_string() == "test.toml:2:3: unknown key `pool.sise`; did you mean `size`?");
  }
  SUBCASE("a dotted key") {
    const auto e = only_error(load("pool.sise = 5\n"));
    check_at(e, 1, 6);
    CHECK(contains(e.message, "did you mean `size`"));
  }
  SUBCASE("a transposition counts as one edit") {
    CHECK(contains(only_error(load("[pool]\nmax_overlfow = 1\n")).message, "did you mean `max_overflow`?"));
  }
  SUBCASE("a different case") {
    CHECK(contains(only_error(load("[pool]\nIDLE_TIMEOUT = 1\n")).message, "did you mean `idle_timeout`?"));
  }
  SUBCASE("nothing close") {
    const auto e = only_error(load("[pool]\nbanana = 1\n"));
    CHECK(e.message == "unknown key `pool.banana`");
  }
  SUBCASE("a top-level table") {
    const auto e = only_error(load("[pools]\nsize = 1\n"));
    check_at(e, 1, 2);
    CHECK(e.message == "unknown key `pools`; did you mean `pool`?");
  }
  SUBCASE("in a database table, where dsn and password are known too") {
    const auto e = only_error(load("[databases.app]\ndsn = \"host=a\"\npasword = \"x\"\n"));
    check_at(e, 3, 1);
    CHECK(e.message == "unknown key `databases.app.pasword`; did you mean `password`?");
  }
  SUBCASE("dsn is not a user key") {
    const auto e = only_error(load("[users.bob]\ndsn = \"host=a\"\n"));
    CHECK(e.message == "unknown key `users.bob.dsn`");
  }
}

TEST_CASE("errors: wrong types say what was expected") {
  SUBCASE("integer") {
    const auto e = only_error(load("[pool]\nsize = \"20\"\n"));
    check_at(e, 2, 8);
    CHECK(e.message == "`pool.size` must be an integer, not a string");
  }
  SUBCASE("string") {
    CHECK(only_error(load("[pool]\nreset_query = 1\n")).message ==
          "`pool.reset_query` must be a string, not an integer");
  }
  SUBCASE("duration") {
    const auto e = only_error(load("[pool]\ntimeout = 1.5\n"));
    CHECK(contains(e.message, "`pool.timeout` must be a duration"));
    CHECK(contains(e.message, "not a floating-point number"));
  }
  SUBCASE("array of strings") {
    CHECK(only_error(load("[admin]\nusers = \"bob\"\n")).message ==
          "`admin.users` must be an array of strings, not a string");
    const auto e = only_error(load("[server]\nlisten = [\"127.0.0.1:1\", 6432]\n"));
    check_at(e, 2, 26);
    CHECK(e.message == "`server.listen[1]` must be a string, not an integer");
  }
  SUBCASE("table") {
    const auto e = only_error(load("pool = 5\n"));
    check_at(e, 1, 8);
    CHECK(e.message == "`pool` must be a table, not an integer");
    CHECK(only_error(load("[databases]\napp = \"host=a\"\n")).message ==
          "`databases.app` must be a table, not a string");
  }
}

TEST_CASE("errors: numbers out of range") {
  struct Case {
    const char* toml;
    int column;
    const char* message;
  };
  const Case cases[] = {
      {"[pool]\nsize = 0\n", 8, "`pool.size` must be between 1 and 10000 (got 0)"},
      {"[pool]\nmax_overflow = -1\n", 16, "`pool.max_overflow` must be between 0 and 10000 (got -1)"},
      {"[server]\nworkers = 1025\n", 11, "`server.workers` must be between 0 and 1024 (got 1025)"},
      {"[server]\nworker_fill = -1\n", 15, "`server.worker_fill` must be between 0 and 1000000 (got -1)"},
      {"[server]\nmax_client_connections = 0\n", 26,
       "`server.max_client_connections` must be between 1 and 1000000 (got 0)"},
      {"[pool]\nmax_prepared_statements = 99999999999\n", 27,
       "`pool.max_prepared_statements` must be between 0 and 100000 (got 99999999999)"},
      {"[users.u]\nsize = 0\n", 8, "`users.u.size` must be between 1 and 10000 (got 0)"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.toml);
    const auto e = only_error(load(c.toml));
    check_at(e, 2, c.column);
    CHECK(e.message == c.message);
  }
}

TEST_CASE("errors: listen addresses") {
  SUBCASE("port out of range") {
    const auto e = only_error(load("[server]\nlisten = [\"0.0.0.0:6432\", \"0.0.0.0:70000\"]\n"));
    check_at(e, 2, 27);
    CHECK(contains(e.message, "`server.listen[1]`: \"0.0.0.0:70000\" is not a listen address"));
  }
  SUBCASE("IPv6 without brackets") {
    CHECK(contains(only_error(load("[server]\nlisten = [\"::1:6432\"]\n")).message, "is not a listen address"));
  }
  SUBCASE("no listen entry at all") {
    const auto e = only_error(load("[server]\nlisten = []\n"));
    check_at(e, 2, 10);
    CHECK(contains(e.message, "`server.listen` must name at least one address"));
  }
  SUBCASE("metrics") {
    const auto e = only_error(load("[metrics]\nlisten = \"9127\"\n"));
    check_at(e, 2, 10);
    CHECK(contains(e.message, "`metrics.listen`: \"9127\" is not a listen address"));
  }
  SUBCASE("unix socket directory too long for sun_path") {
    const auto e = only_error(load("[server]\nunix_socket_dir = \"/" + std::string(100, 'd') + "\"\n"));
    check_at(e, 2, 19);
    CHECK(contains(e.message, "too long"));
  }
}

TEST_CASE("errors: enum values list the allowed ones") {
  SUBCASE("with a suggestion") {
    const auto e = only_error(load("[pool]\nmode = \"sesion\"\n"));
    check_at(e, 2, 8);
    CHECK(e.message ==
          "`pool.mode` must be one of session, transaction, statement (got \"sesion\"); did you mean `session`?");
  }
  SUBCASE("without one") {
    CHECK(only_error(load("[log]\nlevel = \"loud\"\n")).message ==
          "`log.level` must be one of error, warn, info, debug (got \"loud\")");
  }
  SUBCASE("every enum key is checked") {
    for (std::string toml : {"[tls]\nmode = \"on\"\n", "[tls]\nmode = \"disable\"\nmin_protocol = \"TLSv1.1\"\n",
                             "[auth]\nmethod = \"password\"\n", "[pool]\nsession_state = \"keep\"\n",
                             "[log]\nformat = \"xml\"\n", "[users.u]\nmode = \"x\"\n"}) {
      CAPTURE(toml);
      CHECK(contains(only_error(load(toml)).message, "must be one of"));
    }
  }
}

TEST_CASE("errors: durations") {
  struct Case {
    const char* value;
    const char* message;
  };
  const Case cases[] = {
      {"\"30sec\"", "`pool.timeout`: \"30sec\" is not a duration"},
      {"\"30\"", "`pool.timeout`: \"30\" is not a duration"},
      {"\"1.5s\"", "`pool.timeout`: \"1.5s\" is not a duration"},
      {"\"-5s\"", "`pool.timeout` must not be negative (got \"-5s\")"},
      {"-5", "`pool.timeout` must not be negative (got -5)"},
      {"\"\"", "`pool.timeout`: \"\" is not a duration"},
      {"999999999999", "`pool.timeout` is too long"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.value);
    const auto e = only_error(load(std::string("[pool]\ntimeout = ") + c.value + "\n"));
    check_at(e, 2, 11);
    CHECK(contains(e.message, c.message));
  }
}

TEST_CASE("errors: an unset variable is named, at its string") {
  SUBCASE("plain string") {
    const auto e = only_error(load("[auth]\nquery_user = \"${NOPE}\"\n"));
    check_at(e, 2, 14);
    CHECK(contains(e.message, "`auth.query_user`: environment variable `NOPE` is not set"));
  }
  SUBCASE("inside an array") {
    const auto e = only_error(load("[admin]\nusers = [\"root\",\n  \"${ADMINS}\"]\n"));
    check_at(e, 3, 3);
    CHECK(contains(e.message, "`admin.users[1]`: environment variable `ADMINS` is not set"));
  }
  SUBCASE("in a duration") {
    const auto e = only_error(load("[pool]\ntimeout = \"${POOL_TIMEOUT}\"\n"));
    check_at(e, 2, 11);
    CHECK(contains(e.message, "POOL_TIMEOUT"));
  }
  SUBCASE("no second error about the key being missing") {
    const auto e = only_error(load("[tls]\nmode = \"require\"\ncert_file = \"${CERT}\"\nkey_file = \"" +
                                   std::string(PGWEIR_REFERENCE_CONFIG) + "\"\n"));
    CHECK(contains(e.message, "CERT"));
  }
  SUBCASE("malformed reference") {
    CHECK(contains(only_error(load("[pool]\nreset_query = \"${OOPS\"\n")).message, "unterminated `${`"));
    CHECK(contains(only_error(load("[pool]\nreset_query = \"${}\"\n")).message, "is not a variable reference"));
  }
}

TEST_CASE("errors: databases") {
  SUBCASE("no dsn: an error at the table's header") {
    const auto e = only_error(load("\n[databases.appdb]\nsize = 5\n"));
    check_at(e, 2, 1);
    CHECK(contains(e.message, "database `appdb` has no `dsn`"));
  }
  SUBCASE("dsn refused by libpq") {
    const auto e = only_error(load("[databases.appdb]\ndsn = \"host=a foo=bar\"\n"));
    check_at(e, 2, 7);
    CHECK(contains(e.message, "`databases.appdb.dsn`: invalid connection option \"foo\""));
  }
  SUBCASE("empty dsn") {
    CHECK(only_error(load("[databases.appdb]\ndsn = \"\"\n")).message == "`databases.appdb.dsn` is empty");
  }
  SUBCASE("a bad dsn never shows its password") {
    const auto e = only_error(load("[databases.appdb]\ndsn = \"postgresql://u:hunter%zz2@h/db\"\n"));
    CHECK_FALSE(contains(e.message, "hunter"));
  }
  SUBCASE("password and password_file together") {
    const auto e = only_error(load("[databases.a]\ndsn = \"host=a\"\npassword = \"x\"\npassword_file = \"/x\"\n"));
    check_at(e, 4, 17);
    CHECK(e.message == "`databases.a.password` and `databases.a.password_file` are both set; keep one");
  }
  SUBCASE("a password in the dsn and in password") {
    const auto e = only_error(load("[databases.a]\ndsn = \"host=a password=y\"\npassword = \"x\"\n"));
    check_at(e, 3, 12);
    CHECK(contains(e.message, "already contains a password"));
  }
  SUBCASE("the wildcard must not name a dbname") {
    const auto e = only_error(load("[databases.\"*\"]\ndsn = \"postgresql://h/fixed\"\n"));
    check_at(e, 2, 7);
    CHECK(contains(e.message, "`databases.\"*\".dsn` must not name a dbname"));
  }
  SUBCASE("the console's names are reserved") {
    const auto e = only_error(load("[databases.pgbouncer]\ndsn = \"host=a\"\n"));
    check_at(e, 1, 12);
    CHECK(contains(e.message, "reserved for the admin console"));
  }
  SUBCASE("min_idle above size, where it is set") {
    const auto e = only_error(load("[pool]\nsize = 5\n[databases.a]\ndsn = \"host=a\"\nmin_idle = 6\n"));
    check_at(e, 5, 12);
    CHECK(e.message == "`databases.a.min_idle` (6) must not exceed `databases.a.size` (5)");
  }
}

TEST_CASE("errors: TLS and auth requirements") {
  SUBCASE("the default mode needs a certificate; no [tls] table means no position") {
    const auto result = load_string("", "test.toml", k_no_env);
    INFO(all_errors(result));
    REQUIRE(result.errors.size() == 2);
    CHECK(result.errors[0].to_string() ==
          "test.toml: `tls.cert_file` is required when `tls.mode` is \"prefer\" (set tls.mode = \"disable\" to turn "
          "client TLS off)");
    CHECK(contains(result.errors[1].message, "`tls.key_file` is required"));
  }
  SUBCASE("pointing at the mode that needs them") {
    const auto result = load("[tls]\nmode = \"require\"\n");
    REQUIRE(result.errors.size() == 2);
    check_at(result.errors[0], 2, 8);
    check_at(result.errors[1], 2, 8);
  }
  SUBCASE("verify-ca needs ca_file") {
    TempDir dir;
    const auto cert = dir.write("c.pem", "x");
    const auto e =
        only_error(load("[tls]\nmode = \"verify-ca\"\ncert_file = \"" + cert + "\"\nkey_file = \"" + cert + "\"\n"));
    check_at(e, 2, 8);
    CHECK(contains(e.message, "`tls.ca_file` is required when `tls.mode` is \"verify-ca\""));
  }
  SUBCASE("hba needs hba_file") {
    const auto e = only_error(load("[auth]\nmethod = \"hba\"\n"));
    check_at(e, 2, 10);
    CHECK(e.message == "`auth.hba_file` is required when `auth.method` is \"hba\"");
  }
  SUBCASE("cert needs client certificate verification") {
    const auto e = only_error(load("[auth]\nmethod = \"cert\"\n"));
    check_at(e, 2, 10);
    CHECK(contains(e.message, "needs `tls.mode` = \"verify-ca\" or \"verify-full\""));
  }
  SUBCASE("query needs query_user") {
    const auto e = only_error(load("[auth]\nquery = \"SELECT 1\"\n"));
    check_at(e, 2, 9);
    CHECK(contains(e.message, "`auth.query_user` is required"));
  }
}

TEST_CASE("errors: all are collected, in file order") {
  const auto result = load(R"([pool]
size = 0
mode = "x"
[server]
workers = "many"
[bogus]
[databases.a]
size = 1
)");
  INFO(all_errors(result));
  CHECK(result.config == nullptr);
  REQUIRE(result.errors.size() == 5);
  check_at(result.errors[0], 2, 8);
  check_at(result.errors[1], 3, 8);
  check_at(result.errors[2], 5, 11);
  check_at(result.errors[3], 6, 2);
  check_at(result.errors[4], 7, 1);
}

TEST_CASE("Diagnostic::to_string") {
  CHECK(Diagnostic{"/etc/pgweir/pgweir.toml", 12, 5, "boom"}.to_string() == "/etc/pgweir/pgweir.toml:12:5: boom");
  CHECK(Diagnostic{"/etc/pgweir/pgweir.toml", 0, 0, "boom"}.to_string() == "/etc/pgweir/pgweir.toml: boom");
}
