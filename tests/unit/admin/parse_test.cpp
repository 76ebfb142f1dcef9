// parse_command: case, semicolons, whitespace, quoting and bad arguments.
#include <doctest/doctest.h>

#include "pgweir/admin/console.hpp"

using namespace pgweir::admin;
using K = Command::Kind;

TEST_CASE("commands are case-insensitive and allow trailing semicolons and whitespace") {
  for (auto q : {"SHOW POOLS", "show pools", "Show Pools;", "  SHOW\tPOOLS ;  ", "SHOW POOLS;;", "\nshow\npools\n"}) {
    CAPTURE(q);
    auto c = parse_command(q);
    REQUIRE(c);
    CHECK(c->kind == K::show);
    CHECK(c->argument == "pools");
  }
}

TEST_CASE("every command parses to its kind and argument") {
  struct Case {
    const char* text;
    K kind;
    std::optional<std::string> argument;
  };
  const Case cases[] = {
      {"PAUSE", K::pause, std::nullopt},
      {"PAUSE appdb", K::pause, "appdb"},
      {"pause \"My DB\"", K::pause, "My DB"},
      {"pause \"a\"\"b\"", K::pause, "a\"b"},
      {"RESUME", K::resume, std::nullopt},
      {"resume AppDb", K::resume, "AppDb"},  // database names keep their case
      {"RECONNECT", K::reconnect, std::nullopt},
      {"RECONNECT my-db", K::reconnect, "my-db"},
      {"KILL appdb", K::kill, "appdb"},
      {"KILL_CLIENT 17", K::kill_client, "17"},
      {"KILL_CLIENT 0xff", K::kill_client, "0xff"},
      {"RELOAD", K::reload, std::nullopt},
      {"SHUTDOWN", K::shutdown, std::nullopt},
      {"SHUTDOWN wait_for_clients", K::shutdown, "WAIT_FOR_CLIENTS"},
      {"SHUTDOWN WAIT_FOR_SERVERS", K::shutdown, "WAIT_FOR_SERVERS"},
      {"SHOW STATS", K::show, "stats"},
      {"SUSPEND", K::unsupported, std::nullopt},
      {"  ;", K::empty, std::nullopt},
  };
  for (const auto& c : cases) {
    CAPTURE(c.text);
    auto p = parse_command(c.text);
    REQUIRE(p);
    CHECK(p->kind == c.kind);
    CHECK(p->argument == c.argument);
  }
}

TEST_CASE("SET forms") {
  auto a = parse_command("SET client_encoding = 'UTF8'");
  REQUIRE(a);
  CHECK(a->kind == K::set);
  CHECK(a->argument == "client_encoding");
  CHECK(a->set_value == "UTF8");
  auto b = parse_command("set DateStyle TO 'ISO, MDY';");
  REQUIRE(b);
  CHECK(b->argument == "datestyle");
  CHECK(b->set_value == "ISO, MDY");
  auto c = parse_command("SET x='it''s'");
  REQUIRE(c);
  CHECK(c->set_value == "it's");
  auto d = parse_command("SET application_name = ''");
  REQUIRE(d);
  CHECK(d->set_value.empty());
  for (auto bad : {"SET", "SET x", "SET x =", "SET x y z", "SET = 1", "SET x = = 1", "SET x = 'open"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_command(bad));
  }
}

TEST_CASE("bad arguments and garbage are errors with a helpful message") {
  for (auto bad : {"SHOW", "SHOW POOLS STATS", "PAUSE a b", "KILL", "KILL a b", "KILL_CLIENT", "KILL_CLIENT abc",
                   "KILL_CLIENT -1", "KILL_CLIENT 0x", "KILL_CLIENT 99999999999999999999999", "RELOAD now",
                   "SHUTDOWN NOW", "SHUTDOWN WAIT_FOR_CLIENTS x", "SHOW POOLS; SHOW STATS", "PAUSE \"unterminated",
                   "\"SHOW\" POOLS", "= 1", "FROBNICATE", "PAUSE ''", "PAUSE \"\""}) {
    CAPTURE(bad);
    auto p = parse_command(bad);
    REQUIRE_FALSE(p);
    CHECK_FALSE(p.error().message.empty());
  }
  CHECK(parse_command("SHOW").error().message.find("usage: SHOW") == 0);
  CHECK(parse_command("FROBNICATE").error().message.find("\"FROBNICATE\"") != std::string::npos);
  // Echoed text is cut short and control characters are masked.
  const auto long_garbage = parse_command(std::string("X\x01") + std::string(500, 'y'));
  REQUIRE_FALSE(long_garbage);
  CHECK(long_garbage.error().message.size() < 150);
  CHECK(long_garbage.error().message.find('\x01') == std::string::npos);
}

TEST_CASE("console database names") {
  CHECK(is_console_database("pgweir"));
  CHECK(is_console_database("pgbouncer"));
  CHECK_FALSE(is_console_database("appdb"));
  CHECK_FALSE(is_console_database("PGWEIR"));
}
