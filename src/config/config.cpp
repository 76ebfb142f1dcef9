// The config value types' behaviour: pool setting precedence, database lookup, and the small parsers
// (durations, listen addresses) that other modules may use on their own.
#include "pgweir/config/config.hpp"

#include <charconv>
#include <cstdlib>

#include "schema.hpp"

namespace pgweir::config {

std::string_view to_string(PoolMode v) { return detail::name_of<PoolMode>(v, detail::k_pool_modes); }
std::string_view to_string(SessionState v) { return detail::name_of<SessionState>(v, detail::k_session_states); }
std::string_view to_string(TlsMode v) { return detail::name_of<TlsMode>(v, detail::k_tls_modes); }
std::string_view to_string(AuthMethod v) { return detail::name_of<AuthMethod>(v, detail::k_auth_methods); }
std::string_view to_string(TlsVersion v) { return detail::name_of<TlsVersion>(v, detail::k_tls_versions); }
std::string_view to_string(IoBackend v) { return detail::name_of<IoBackend>(v, detail::k_io_backends); }
std::string_view to_string(LogLevel v) { return detail::name_of<LogLevel>(v, detail::k_log_levels); }
std::string_view to_string(LogFormat v) { return detail::name_of<LogFormat>(v, detail::k_log_formats); }

void PoolOverrides::apply_to(PoolSettings& s) const {
  const auto set = [](auto& target, const auto& source) {
    if (source) target = *source;
  };
  set(s.mode, mode);
  set(s.size, size);
  set(s.max_overflow, max_overflow);
  set(s.min_idle, min_idle);
  set(s.timeout, timeout);
  set(s.connect_timeout, connect_timeout);
  set(s.idle_timeout, idle_timeout);
  set(s.max_lifetime, max_lifetime);
  set(s.pre_ping, pre_ping);
  set(s.reset_query, reset_query);
  set(s.max_db_connections, max_db_connections);
  set(s.max_user_connections, max_user_connections);
  set(s.idle_transaction_timeout, idle_transaction_timeout);
  set(s.query_timeout, query_timeout);
  set(s.max_prepared_statements, max_prepared_statements);
  set(s.session_state, session_state);
}

const DatabaseConfig* Config::find_database(std::string_view name) const {
  if (auto it = databases.find(name); it != databases.end()) return &it->second;
  if (auto it = databases.find("*"); it != databases.end()) return &it->second;
  return nullptr;
}

PoolSettings Config::pool_settings(std::string_view database, std::string_view user) const {
  PoolSettings settings = pool;
  if (const auto* db = find_database(database)) db->overrides.apply_to(settings);
  if (auto it = users.find(user); it != users.end()) it->second.overrides.apply_to(settings);
  return settings;
}

std::string Diagnostic::to_string() const {
  if (line <= 0) return file + ": " + message;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

std::optional<std::string> process_env(std::string_view name) {
  const char* value = std::getenv(std::string(name).c_str());
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

std::optional<ListenAddress> parse_listen_address(std::string_view text) {
  std::string_view host;
  std::string_view port;
  if (text.starts_with('[')) {
    const auto close = text.find(']');
    if (close == std::string_view::npos || text.substr(close + 1, 1) != ":") return std::nullopt;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    // An IPv6 address without brackets cannot be told apart from its port.
    if (host.find(':') != std::string_view::npos) return std::nullopt;
  }
  if (host.empty() || host.find_first_of(" \t\r\n[]") != std::string_view::npos) return std::nullopt;
  if (port.empty() || port.find_first_not_of("0123456789") != std::string_view::npos) return std::nullopt;
  unsigned number = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), number);
  if (ec != std::errc{} || end != port.data() + port.size() || number < 1 || number > 65535) return std::nullopt;
  return ListenAddress{std::string(host), static_cast<std::uint16_t>(number)};
}

std::optional<Duration> parse_duration(std::string_view text) {
  const auto digits = text.find_first_not_of("0123456789");
  const std::string_view number_text = text.substr(0, digits);
  const std::string_view unit = digits == std::string_view::npos ? std::string_view() : text.substr(digits);
  if (number_text.empty()) return std::nullopt;
  std::uint64_t number = 0;
  const auto [end, ec] = std::from_chars(number_text.data(), number_text.data() + number_text.size(), number);
  if (ec != std::errc{} || end != number_text.data() + number_text.size()) return std::nullopt;

  std::uint64_t milliseconds_per_unit = 0;
  if (unit.empty()) {
    // A bare number is ambiguous (PgBouncer mixes seconds and milliseconds); only "0" needs no unit.
    if (number != 0) return std::nullopt;
    milliseconds_per_unit = 1;
  } else if (unit == "ms") {
    milliseconds_per_unit = 1;
  } else if (unit == "s") {
    milliseconds_per_unit = 1'000;
  } else if (unit == "m") {
    milliseconds_per_unit = 60'000;
  } else if (unit == "h") {
    milliseconds_per_unit = 3'600'000;
  } else {
    return std::nullopt;
  }
  const auto limit = static_cast<std::uint64_t>(detail::k_max_duration.count());
  if (number > limit / milliseconds_per_unit) return std::nullopt;
  return Duration(static_cast<Duration::rep>(number * milliseconds_per_unit));
}

}  // namespace pgweir::config
