// fuzz_config: config::load_string on arbitrary TOML with a stub environment (no exception may escape, a config and
// diagnostics are never both returned), plus parse_duration and parse_listen_address on the raw text.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "fuzz_support.hpp"
#include "pgweir/config/config.hpp"

namespace {

using namespace pgweir;
using namespace pgweir::config;

// A directory that does not exist: relative file paths in the input resolve to nothing.
const std::string k_path = "/nonexistent/pgweir-fuzz/pgweir.toml";

std::optional<std::string> stub_env(std::string_view name) {
  if (name == "PGWEIR_PASSWORD") return "s3cret";
  if (name == "EMPTY") return "";
  if (name == "DSN") return "host=localhost port=5432 dbname=appdb";
  if (name == "DOLLAR") return "${PGWEIR_PASSWORD}";  // substituted once, never recursively
  return std::nullopt;
}

void check_config(const Config& c) {
  for (const auto& l : c.server.listen) FUZZ_CHECK(parse_listen_address(l).has_value());
  for (const auto& [name, db] : c.databases) {
    FUZZ_CHECK(name == db.name);
    FUZZ_CHECK(c.find_database(name) == &db);
    for (const auto& [user, u] : c.users) {
      FUZZ_CHECK(user == u.name);
      (void)c.pool_settings(name, user);
    }
    (void)c.pool_settings(name, "nobody");
  }
  (void)c.find_database("no such database");
  const PoolSettings s = c.pool_settings("x", "y");
  FUZZ_CHECK(s.size >= 1);
  for (auto d : {s.timeout, s.connect_timeout, s.idle_timeout, s.max_lifetime, s.pre_ping, s.query_timeout})
    FUZZ_CHECK(d.count() >= 0);
  (void)to_string(s.mode);
  (void)to_string(s.session_state);
  (void)to_string(c.tls.mode);
  (void)to_string(c.tls.min_protocol);
  (void)to_string(c.auth.method);
  (void)to_string(c.log.level);
  (void)to_string(c.log.format);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = fuzz::as_view(data, size);

  if (size <= 256) {
    if (auto d = parse_duration(text)) FUZZ_CHECK(d->count() >= 0);
    if (auto a = parse_listen_address(text)) FUZZ_CHECK(!text.empty());
  }

  // No try/catch on purpose: an exception escaping the loader terminates, and libFuzzer saves the input.
  const LoadResult result = load_string(text, k_path, stub_env);
  FUZZ_CHECK((result.config == nullptr) == !result.errors.empty());
  for (const Diagnostic& d : result.errors) {
    FUZZ_CHECK(!d.message.empty());
    FUZZ_CHECK(d.line >= 0 && d.column >= 0);
    (void)d.to_string();
  }
  if (result.config) check_config(*result.config);
  return 0;
}
