// pq::parse_dsn: both libpq forms, several hosts, unix sockets, libpq's connect-time checks, and secrets kept
// out of every error message.
#include <doctest/doctest.h>

#include "pgweir/pq/dsn.hpp"
#include "support.hpp"

using pgweir::config::test::contains;
using pgweir::pq::parse_dsn;

TEST_CASE("dsn: URI form") {
  auto dsn = parse_dsn(
      "postgresql://app:s3cret@db.example.com:5433/appdb?sslmode=verify-full&sslrootcert=/ca.crt"
      "&application_name=weir&connect_timeout=7&target_session_attrs=read-write");
  REQUIRE(dsn);
  CHECK(dsn->hosts == std::vector<std::string>{"db.example.com"});
  CHECK(dsn->ports == std::vector<std::uint16_t>{5433});
  CHECK(dsn->user == "app");
  CHECK(dsn->password == "s3cret");
  CHECK(dsn->dbname == "appdb");
  CHECK(dsn->sslmode == "verify-full");
  CHECK(dsn->sslrootcert == "/ca.crt");
  CHECK(dsn->application_name == "weir");
  CHECK(dsn->connect_timeout_seconds == 7);
  CHECK(dsn->target_session_attrs == "read-write");
  CHECK(dsn->all.at("host") == "db.example.com");
  CHECK(dsn->all.count("sslcert") == 0);  // only keywords that were given
}

TEST_CASE("dsn: key=value form with quoting") {
  auto dsn = parse_dsn(
      "host=db port=6000 dbname=d user=u password='it\\'s quoted' sslmode=require "
      "sslcert=/c.pem sslkey=/k.pem options='-c search_path=app'");
  REQUIRE(dsn);
  CHECK(dsn->hosts == std::vector<std::string>{"db"});
  CHECK(dsn->ports == std::vector<std::uint16_t>{6000});
  CHECK(dsn->dbname == "d");
  CHECK(dsn->user == "u");
  CHECK(dsn->password == "it's quoted");
  CHECK(dsn->sslmode == "require");
  CHECK(dsn->sslcert == "/c.pem");
  CHECK(dsn->sslkey == "/k.pem");
  CHECK(dsn->options == "-c search_path=app");
}

TEST_CASE("dsn: defaults when keys are absent") {
  auto dsn = parse_dsn("host=db");
  REQUIRE(dsn);
  CHECK(dsn->ports == std::vector<std::uint16_t>{5432});
  CHECK(dsn->sslmode == "prefer");
  CHECK(dsn->target_session_attrs == "any");
  CHECK(dsn->connect_timeout_seconds == 0);
  CHECK(dsn->dbname.empty());
  CHECK(dsn->user.empty());
  CHECK(dsn->password.empty());
}

TEST_CASE("dsn: several hosts and ports") {
  SUBCASE("key=value, one port per host") {
    auto dsn = parse_dsn("host=a,b port=5432,5433");
    REQUIRE(dsn);
    CHECK(dsn->hosts == std::vector<std::string>{"a", "b"});
    CHECK(dsn->ports == std::vector<std::uint16_t>{5432, 5433});
  }
  SUBCASE("URI") {
    auto dsn = parse_dsn("postgresql://a:6001,b:6002/db?target_session_attrs=primary");
    REQUIRE(dsn);
    CHECK(dsn->hosts == std::vector<std::string>{"a", "b"});
    CHECK(dsn->ports == std::vector<std::uint16_t>{6001, 6002});
    CHECK(dsn->target_session_attrs == "primary");
  }
  SUBCASE("one port for every host") {
    auto dsn = parse_dsn("host=a,b,c port=7000");
    REQUIRE(dsn);
    CHECK(dsn->hosts.size() == 3);
    CHECK(dsn->ports == std::vector<std::uint16_t>{7000});
  }
  SUBCASE("an empty port entry means the default") {
    auto dsn = parse_dsn("host=a,b port=6000,");
    REQUIRE(dsn);
    CHECK(dsn->ports == std::vector<std::uint16_t>{6000, 5432});
  }
  SUBCASE("port count matches neither one nor the host count") {
    auto dsn = parse_dsn("host=a,b port=1,2,3");
    REQUIRE_FALSE(dsn);
    CHECK(dsn.error().message == "could not match 3 port numbers to 2 hosts");
  }
}

TEST_CASE("dsn: unix socket directories") {
  SUBCASE("key=value") {
    auto dsn = parse_dsn("host=/var/run/postgresql dbname=app");
    REQUIRE(dsn);
    CHECK(dsn->hosts == std::vector<std::string>{"/var/run/postgresql"});
  }
  SUBCASE("percent-encoded in a URI") {
    auto dsn = parse_dsn("postgresql://%2Ftmp%2Fpg:5440/app");
    REQUIRE(dsn);
    CHECK(dsn->hosts == std::vector<std::string>{"/tmp/pg"});
    CHECK(dsn->ports == std::vector<std::uint16_t>{5440});
  }
  SUBCASE("host query parameter") {
    auto dsn = parse_dsn("postgresql:///app?host=/tmp");
    REQUIRE(dsn);
    CHECK(dsn->hosts == std::vector<std::string>{"/tmp"});
    CHECK(dsn->dbname == "app");
  }
  SUBCASE("no host at all: libpq's default socket directory, not $PGHOST") {
    ::setenv("PGHOST", "from-environment", 1);
    auto dsn = parse_dsn("dbname=app");
    ::unsetenv("PGHOST");
    REQUIRE(dsn);
    REQUIRE(dsn->hosts.size() == 1);
    CHECK(dsn->hosts[0].starts_with("/"));
  }
  SUBCASE("hostaddr without host") {
    auto dsn = parse_dsn("hostaddr=10.0.0.5");
    REQUIRE(dsn);
    CHECK(dsn->hosts == std::vector<std::string>{"10.0.0.5"});
  }
}

TEST_CASE("dsn: malformed ones are refused with libpq's words") {
  struct Case {
    const char* dsn;
    const char* message;
  };
  const Case cases[] = {
      {"host=a foo=bar", "invalid connection option \"foo\""},
      {"host=a dbname", "missing \"=\" after \"dbname\""},
      {"host=a dbname='x", "unterminated quoted string"},
      {"postgresql://h/db?bogus=1", "bogus"},
      {"port=abc", "invalid port number: \"abc\""},
      {"port=0", "invalid port number: \"0\""},
      {"port=65536", "invalid port number: \"65536\""},
      {"sslmode=maybe", "invalid sslmode value: \"maybe\""},
      {"target_session_attrs=whatever", "invalid target_session_attrs value"},
      {"connect_timeout=soon", "invalid integer value \"soon\" for connection option \"connect_timeout\""},
  };
  for (const auto& c : cases) {
    CAPTURE(c.dsn);
    auto dsn = parse_dsn(c.dsn);
    REQUIRE_FALSE(dsn);
    CHECK(contains(dsn.error().message, c.message));
    CHECK_FALSE(dsn.error().message.ends_with("\n"));
  }
}

TEST_CASE("dsn: errors never contain the password") {
  struct Case {
    const char* dsn;
    const char* secret;
  };
  const Case cases[] = {
      // libpq quotes a badly percent-encoded password back in full.
      {"postgresql://u:hunter%zz2@h/db", "hunter"},
      {"postgresql://h/db?password=hunter%zz2", "hunter"},
      // An unquoted password with a space: libpq complains about the word after it.
      {"host=h password=hunter two", "two"},
      {"host=h sslpassword=abc swordfish", "swordfish"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.dsn);
    auto dsn = parse_dsn(c.dsn);
    REQUIRE_FALSE(dsn);
    INFO(dsn.error().message);
    CHECK_FALSE(dsn.error().message.empty());
    CHECK_FALSE(contains(dsn.error().message, c.secret));
  }
}

TEST_CASE("dsn: an error outside the password keeps libpq's own message") {
  auto dsn = parse_dsn("host=h password=hunter2 foo=bar");
  REQUIRE_FALSE(dsn);
  CHECK(contains(dsn.error().message, "invalid connection option \"foo\""));
  CHECK_FALSE(contains(dsn.error().message, "hunter2"));
}
