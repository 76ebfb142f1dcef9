// Value parsers on their own: durations, listen addresses, ${VAR} substitution, enum names.
#include <doctest/doctest.h>

#include "support.hpp"

using namespace pgweir::config;
using namespace pgweir::config::test;
using namespace std::chrono_literals;

TEST_CASE("parse_duration") {
  struct Case {
    const char* text;
    std::optional<Duration> expected;
  };
  const Case cases[] = {
      {"500ms", 500ms},
      {"30s", 30s},
      {"15m", 15min},
      {"1h", 1h},
      {"0", 0ms},
      {"0s", 0ms},
      {"000", 0ms},
      {"90m", 90min},
      {"1", std::nullopt},
      {"30", std::nullopt},
      {"", std::nullopt},
      {"s", std::nullopt},
      {"-5s", std::nullopt},
      {"5 s", std::nullopt},
      {" 5s", std::nullopt},
      {"5S", std::nullopt},
      {"5d", std::nullopt},
      {"1.5s", std::nullopt},
      {"5sec", std::nullopt},
      {"87600h", 87600h},
      {"87601h", std::nullopt},
      {"99999999999999999999999h", std::nullopt},
  };
  for (const auto& c : cases) {
    CAPTURE(c.text);
    CHECK(parse_duration(c.text) == c.expected);
  }
}

TEST_CASE("durations in a config: strings with units or integer seconds") {
  const auto result = load("[pool]\ntimeout = 45\nidle_timeout = \"0\"\nquery_timeout = 0\nmax_lifetime = \"2h\"\n");
  const Config& c = ok(result);
  CHECK(c.pool.timeout == 45s);
  CHECK(c.pool.idle_timeout == 0ms);
  CHECK(c.pool.query_timeout == 0ms);
  CHECK(c.pool.max_lifetime == 2h);
}

TEST_CASE("parse_listen_address") {
  auto a = parse_listen_address("0.0.0.0:6432");
  REQUIRE(a);
  CHECK(a->host == "0.0.0.0");
  CHECK(a->port == 6432);
  auto b = parse_listen_address("[::]:6433");
  REQUIRE(b);
  CHECK(b->host == "::");
  CHECK(b->port == 6433);
  auto c = parse_listen_address("[fe80::1%eth0]:1");
  REQUIRE(c);
  CHECK(c->host == "fe80::1%eth0");
  auto d = parse_listen_address("localhost:65535");
  REQUIRE(d);
  CHECK(d->host == "localhost");
  CHECK(d->port == 65535);
  for (const char* bad : {"6432", ":6432", "host:", "host:0", "host:65536", "host:64x", "::1:6432", "[::1]6432",
                          "[::1]:", "[]:6432", "[::1:6432", "two words:1", "host:+1", "host:-1"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_listen_address(bad).has_value());
  }
}

TEST_CASE("${VAR} substitution") {
  const auto env = env_of({{"A", "alpha"}, {"EMPTY", ""}, {"REF", "${A}"}});
  const auto substituted = [&](const std::string& text) -> std::string {
    const auto result = load("[pool]\nreset_query = '" + text + "'\n", env);
    return ok(result).pool.reset_query;
  };
  CHECK(substituted("${A}") == "alpha");
  CHECK(substituted("x${A}y${A}") == "xalphayalpha");
  CHECK(substituted("${UNSET:-fallback value}") == "fallback value");
  CHECK(substituted("${A:-fallback}") == "alpha");
  CHECK(substituted("${EMPTY:-fallback}") == "fallback");  // as in the shell, ":-" also covers empty
  CHECK(substituted("${EMPTY}") == "");
  CHECK(substituted("${UNSET:-}") == "");
  CHECK(substituted("${REF}") == "${A}");  // substituted text is not scanned again
  // Only `${` starts a reference: other dollars stay, and `$${` writes a literal `${`.
  CHECK(substituted("SELECT $1") == "SELECT $1");
  CHECK(substituted("pa$$word$") == "pa$$word$");
  CHECK(substituted("$${A}") == "${A}");
  CHECK(substituted("$$${A}") == "$${A}");  // read left to right: a kept `$`, then `$${`
}

TEST_CASE("${VAR} uses the process environment by default") {
  ::setenv("PGWEIR_TEST_CONFIG_VAR", "from-process", 1);
  const auto result =
      load_string("[tls]\nmode = \"disable\"\n[pool]\nreset_query = \"${PGWEIR_TEST_CONFIG_VAR}\"\n", "test.toml");
  ::unsetenv("PGWEIR_TEST_CONFIG_VAR");
  CHECK(ok(result).pool.reset_query == "from-process");
  CHECK(process_env("PGWEIR_TEST_CONFIG_VAR_UNSET") == std::nullopt);
}

TEST_CASE("enum names round-trip through to_string") {
  CHECK(to_string(PoolMode::transaction) == "transaction");
  CHECK(to_string(SessionState::pin) == "pin");
  CHECK(to_string(TlsMode::verify_full) == "verify-full");
  CHECK(to_string(AuthMethod::scram_sha_256) == "scram-sha-256");
  CHECK(to_string(TlsVersion::tls1_3) == "TLSv1.3");
  CHECK(to_string(LogLevel::warn) == "warn");
  CHECK(to_string(LogFormat::json) == "json");
  for (auto mode : {TlsMode::disable, TlsMode::allow, TlsMode::prefer, TlsMode::require, TlsMode::verify_ca}) {
    const auto result = load("[tls]\nmode = \"" + std::string(to_string(mode)) + "\"\ncert_file = \"" +
                             std::string(PGWEIR_REFERENCE_CONFIG) + "\"\nkey_file = \"" + PGWEIR_REFERENCE_CONFIG +
                             "\"\nca_file = \"" + PGWEIR_REFERENCE_CONFIG + "\"\n");
    CHECK(ok(result).tls.mode == mode);
  }
}

TEST_CASE("PoolOverrides::apply_to sets exactly the present keys") {
  PoolSettings settings;
  PoolOverrides overrides;
  overrides.apply_to(settings);
  CHECK(settings == PoolSettings{});
  overrides.size = 3;
  overrides.pre_ping = 0ms;
  overrides.session_state = SessionState::allow;
  overrides.apply_to(settings);
  PoolSettings expected;
  expected.size = 3;
  expected.pre_ping = 0ms;
  expected.session_state = SessionState::allow;
  CHECK(settings == expected);
}
