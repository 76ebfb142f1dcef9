// detect_session_state: which SQL leaves state on a server connection, through quoting and comments.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <random>
#include <string>

#include "../../../src/client/session_state.hpp"

using pgweir::client::detect_session_state;

TEST_CASE("statements that leave session state, with their reason") {
  struct Case {
    const char* sql;
    const char* reason;
  };
  const Case cases[] = {
      {"SET work_mem = '64MB'", "set"},
      {"set search_path to app, public", "set"},
      {"SET SESSION statement_timeout = 5", "set"},
      {"SET SCHEMA 'x'", "set"},
      {"SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", "set"},
      {"SET ROLE admin", "role"},
      {"SET SESSION AUTHORIZATION bob", "role"},
      {"LISTEN jobs", "listen"},
      {"PREPARE q AS SELECT 1", "prepare"},
      {"CREATE TEMP TABLE t (a int)", "temp_table"},
      {"create temporary table t as select 1", "temp_table"},
      {"CREATE GLOBAL TEMPORARY TABLE t (a int)", "temp_table"},
      {"SELECT pg_advisory_lock(42)", "advisory_lock"},
      {"select PG_TRY_ADVISORY_LOCK(1, 2)", "advisory_lock"},
      {"DECLARE c CURSOR WITH HOLD FOR SELECT 1", "hold_cursor"},
      {"SELECT 1; LISTEN x", "listen"},
      {"/* comment */ -- another\n LISTEN x", "listen"},
      // The quick pass hands these to the lexer: a keyword after whitespace or in any case, a trailing semicolon,
      // a second statement, an advisory lock anywhere.
      {" \n\t\vListen jobs", "listen"},
      {"SET work_mem = 1;", "set"},
      {"select 1; set work_mem = 1;", "set"},
      {"WITH l AS (SELECT pg_advisory_lock(1)) SELECT * FROM l", "advisory_lock"},
  };
  for (const auto& c : cases) {
    INFO(std::string(c.sql));
    auto r = detect_session_state(c.sql);
    REQUIRE(r.has_value());
    CHECK(*r == c.reason);
  }
}

TEST_CASE("statements that do not") {
  const char* cases[] = {
      "SELECT 1",
      "SET LOCAL work_mem = '64MB'",
      "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
      "SET CONSTRAINTS ALL DEFERRED",
      "SET TimeZone = 'UTC'",
      "SET TIME ZONE 'UTC'",
      "SET DateStyle TO ISO",
      "SET application_name = 'x'",
      "SET client_encoding TO 'UTF8'",
      "SET NAMES 'UTF8'",
      "PREPARE TRANSACTION 'tx1'",
      "DECLARE c CURSOR FOR SELECT 1",
      "SELECT pg_advisory_xact_lock(1)",
      "SELECT 'LISTEN x'",
      "SELECT $$ LISTEN x; SET work_mem = 1 $$",
      "SELECT $tag$ pg_advisory_lock(1) $tag$",
      "SELECT E'it\\'s; LISTEN x'",
      "-- LISTEN x\nSELECT 1",
      "/* nested /* LISTEN */ SET x = 1 */ SELECT 1",
      "SELECT \"listen\" FROM t",
      "CREATE TABLE temp (a int)",
      "SELECT $1::int",
      "",
      ";;;",
      "RESET ALL",
      "DISCARD ALL",
      "SELECT abalance FROM pgbench_accounts WHERE aid = 12345;",
      "SELECT 1;  \n;",
      "SETTINGS",
      "select 'advisory'",
  };
  for (const char* sql : cases) {
    INFO(std::string(sql));
    CHECK_FALSE(detect_session_state(sql).has_value());
  }
}

TEST_CASE("the quick pass finds a second statement or an advisory lock at every offset") {
  // The quick pass reads 16 bytes at a time: move what it must find across those steps and the tail.
  for (std::size_t pad = 0; pad < 40; ++pad) {
    std::string spaces(pad, ' ');
    INFO("pad ", pad);
    CHECK(detect_session_state("SELECT" + spaces + " pg_advisory_lock(1)") == "advisory_lock");
    CHECK(detect_session_state("SELECT" + spaces + " PG_ADVISORY_LOCK(1)") == "advisory_lock");
    CHECK(detect_session_state("SELECT 1" + spaces + "; LISTEN x") == "listen");
    CHECK(detect_session_state("SELECT vv" + spaces + "\x1b; SET work_mem = 1") == "set");
    CHECK_FALSE(detect_session_state("SELECT 1" + spaces + ";  \n;").has_value());
    CHECK_FALSE(detect_session_state("SELECT v, V, \x1b" + spaces + " FROM t;").has_value());
  }
}

TEST_CASE("random text never crashes") {
  std::mt19937 rng(7);
  const std::string alphabet = "SETLISNPRCAMXHOWLDpg_advisorylock'\"$-/*; \n()1e\\";
  for (int i = 0; i < 20000; ++i) {
    std::string s(rng() % 80, ' ');
    for (auto& c : s) c = alphabet[rng() % alphabet.size()];
    (void)detect_session_state(s);
  }
}
