// pgweir's configuration (SPEC §2): types, loading from TOML, validation with file:line:col diagnostics.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pgweir/pq/dsn.hpp"

namespace pgweir::config {

using Duration = std::chrono::milliseconds;  // zero = off

enum class PoolMode : std::uint8_t { session, transaction, statement };
enum class SessionState { pin, error, allow };
enum class TlsMode { disable, allow, prefer, require, verify_ca, verify_full };
enum class TlsVersion { tls1_2, tls1_3 };
enum class AuthMethod { trust, md5, scram_sha_256, cert, hba };
enum class LogLevel { error, warn, info, debug };
enum class LogFormat { text, json };
enum class IoBackend { epoll, io_uring };

std::string_view to_string(PoolMode);
std::string_view to_string(SessionState);
std::string_view to_string(TlsMode);
std::string_view to_string(AuthMethod);
std::string_view to_string(TlsVersion);
std::string_view to_string(IoBackend);
std::string_view to_string(LogLevel);
std::string_view to_string(LogFormat);

// [pool] keys; the defaults are SPEC §2's.
struct PoolSettings {
  PoolMode mode = PoolMode::transaction;
  int size = 20;
  int max_overflow = 10;
  int min_idle = 0;
  Duration timeout{30'000};
  Duration connect_timeout{10'000};
  Duration idle_timeout{600'000};
  Duration max_lifetime{1'800'000};
  Duration pre_ping{30'000};
  std::string reset_query = "DISCARD ALL";
  int max_db_connections = 0;
  int max_user_connections = 0;
  Duration idle_transaction_timeout{0};
  Duration query_timeout{0};
  int max_prepared_statements = 200;
  SessionState session_state = SessionState::pin;
  bool operator==(const PoolSettings&) const = default;
};

// The same keys, each present only where a [databases.NAME] or [users.NAME] table sets it.
struct PoolOverrides {
  std::optional<PoolMode> mode;
  std::optional<int> size, max_overflow, min_idle;
  std::optional<Duration> timeout, connect_timeout, idle_timeout, max_lifetime, pre_ping;
  std::optional<std::string> reset_query;
  std::optional<int> max_db_connections, max_user_connections;
  std::optional<Duration> idle_transaction_timeout, query_timeout;
  std::optional<int> max_prepared_statements;
  std::optional<SessionState> session_state;
  void apply_to(PoolSettings& s) const;  // overwrite s with every key set here
  bool operator==(const PoolOverrides&) const = default;
};

struct ServerSection {
  std::vector<std::string> listen{"0.0.0.0:6432"};  // validated "host:port" / "[v6]:port"
  std::string unix_socket_dir;
  int workers = 0;  // 0 = one per core
  // A new client goes to the first worker serving fewer than this many clients, and when every worker serves that
  // many, to the one serving the fewest. 0 spreads clients evenly from the first.
  int worker_fill = 16;
  // How the workers wait for plain sockets: an io_uring per worker (net/ring.hpp), or Asio's epoll reactor. Where
  // the kernel refuses io_uring, pgweir falls back to epoll with a warning.
  IoBackend io = IoBackend::io_uring;
  int max_client_connections = 10000;
  Duration client_login_timeout{60'000};
  Duration client_idle_timeout{0};
  // A pool client idle (no server, nothing in flight) this long is parked: its relay coroutines end and it
  // waits for input holding only its session object. 0 keeps every client's relay running.
  Duration client_park_after{2'000};
  Duration shutdown_timeout{30'000};
};

struct TlsSection {
  TlsMode mode = TlsMode::prefer;
  std::string cert_file, key_file, ca_file;
  TlsVersion min_protocol = TlsVersion::tls1_2;
  std::string ciphers = "HIGH:!aNULL:!MD5";
};

struct AuthSection {
  AuthMethod method = AuthMethod::scram_sha_256;
  std::string users_file, hba_file, query, query_user, query_database;
};

struct AdminSection {
  std::vector<std::string> users, stats_users;
};

struct MetricsSection {
  std::string listen = "127.0.0.1:9127";  // "" = off
};

struct LogSection {
  LogLevel level = LogLevel::info;
  LogFormat format = LogFormat::text;
};

struct DatabaseConfig {
  std::string name;                 // the table name; "*" for the wildcard
  std::string dsn;                  // after ${VAR} substitution (may contain a password: never log it)
  pq::Dsn target;                   // parsed dsn
  std::optional<std::string> password;  // `password`, or the contents of `password_file` (trailing newline cut)
  PoolOverrides overrides;
  bool operator==(const DatabaseConfig& o) const {
    return name == o.name && dsn == o.dsn && password == o.password && overrides == o.overrides;
  }
};

struct UserConfig {
  std::string name;
  PoolOverrides overrides;
  bool operator==(const UserConfig&) const = default;
};

// A listen entry, split.
struct ListenAddress {
  std::string host;  // without brackets
  std::uint16_t port = 0;
};
// "0.0.0.0:6432", "[::]:6432", "localhost:6432"; nullopt when malformed.
std::optional<ListenAddress> parse_listen_address(std::string_view text);

struct Config {
  std::string path;  // the file it came from
  ServerSection server;
  TlsSection tls;
  AuthSection auth;
  AdminSection admin;
  PoolSettings pool;
  std::map<std::string, DatabaseConfig, std::less<>> databases;
  std::map<std::string, UserConfig, std::less<>> users;
  MetricsSection metrics;
  LogSection log;

  // Exact name first, then "*". nullptr when neither.
  const DatabaseConfig* find_database(std::string_view name) const;
  // [pool], then [databases.NAME] (or "*"), then [users.NAME]: the later one wins.
  PoolSettings pool_settings(std::string_view database, std::string_view user) const;
};

// One problem found in a config: printed as "FILE:LINE:COL: message".
struct Diagnostic {
  std::string file;
  int line = 0;    // 0 when the problem has no position (e.g. the file cannot be read)
  int column = 0;
  std::string message;
  std::string to_string() const;
};

// Looks up environment variables for ${VAR} substitution; the default reads the process environment.
using EnvLookup = std::function<std::optional<std::string>(std::string_view name)>;
std::optional<std::string> process_env(std::string_view name);

struct LoadResult {
  std::shared_ptr<const Config> config;  // null when errors is non-empty
  std::vector<Diagnostic> errors;        // every error found, not just the first
};

// Parses and validates. Checks: TOML syntax, unknown keys (with "did you mean `x`?" when one is close),
// types and ranges, enum values (listing the allowed ones), durations, ${VAR}/${VAR:-default} substitution in every
// string, password_file readable, dsn parsed by libpq, cert/key/ca/users/hba files readable when set and needed,
// cert_file + key_file required unless tls.mode = "disable".
LoadResult load_file(const std::string& path, const EnvLookup& env = process_env);
LoadResult load_string(std::string_view toml_text, const std::string& path, const EnvLookup& env = process_env);

// "500ms", "30s", "15m", "1h", "0", or a TOML integer of seconds. nullopt when malformed or negative.
std::optional<Duration> parse_duration(std::string_view text);

}  // namespace pgweir::config
