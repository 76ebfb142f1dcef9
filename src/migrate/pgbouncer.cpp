// Maps PgBouncer settings onto pgweir.toml keys (`pgweir --from-pgbouncer`): what each setting becomes, which
// PgBouncer defaults must be written out because pgweir's differ, and why the rest has no equivalent.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>

#include "pgweir/migrate/pgbouncer.hpp"

namespace pgweir::migrate {
namespace {

// PgBouncer's built-in defaults where they differ from pgweir's; written out when the ini does not set them.
constexpr std::string_view k_pgbouncer_port = "6432";
constexpr std::string_view k_pgbouncer_auth_query = "SELECT usename, passwd FROM pg_shadow WHERE usename=$1";

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

std::vector<std::string> split_list(std::string_view s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == ',') {
      auto item = trim(s.substr(start, i - start));
      if (!item.empty()) out.push_back(std::move(item));
      start = i + 1;
    }
  }
  return out;
}

// A TOML basic string. pgweir substitutes ${VAR} in every string, so a literal "${" from PgBouncer is written "$${".
std::string toml_string(std::string_view s) {
  std::string out = "\"";
  for (std::size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      static constexpr char k_hex[] = "0123456789ABCDEF";
      out += "\\u00";
      out += k_hex[c >> 4];
      out += k_hex[c & 15];
    } else if (c == '$' && i + 1 < s.size() && s[i + 1] == '{') {
      out += "$$";
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string toml_string_array(const std::vector<std::string>& items) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + toml_string(items[i]);
  return out + "]";
}

// Table-name part: bare when TOML allows it, quoted otherwise (no ${} escaping: keys are not substituted).
std::string toml_key(std::string_view s) {
  bool bare = !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
  if (bare) return std::string(s);
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// A value in a libpq key=value string, quoted when it has to be.
std::string conninfo_value(std::string_view v) {
  bool plain = !v.empty() && std::none_of(v.begin(), v.end(), [](char c) {
    return std::isspace(static_cast<unsigned char>(c)) || c == '\'' || c == '\\';
  });
  if (plain) return std::string(v);
  std::string out = "'";
  for (char c : v) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

std::optional<long long> parse_int(std::string_view s, long long min, long long max) {
  long long n = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || end != s.data() + s.size() || n < min || n > max) return std::nullopt;
  return n;
}

// PgBouncer times are seconds, possibly fractional ("0.5"). Returns a pgweir duration literal ("90s", "15m", "0").
std::optional<std::string> parse_seconds(std::string_view s) {
  if (s.empty()) return std::nullopt;
  std::string text(s);
  char* end = nullptr;
  double seconds = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || !std::isfinite(seconds) || seconds < 0 || seconds > 1e9) return std::nullopt;
  auto ms = static_cast<long long>(std::llround(seconds * 1000));
  if (ms == 0) return seconds == 0 ? std::optional<std::string>("\"0\"") : std::optional<std::string>("\"1ms\"");
  if (ms % 1000 != 0) return "\"" + std::to_string(ms) + "ms\"";
  long long n = ms / 1000;
  if (n % 3600 == 0) return "\"" + std::to_string(n / 3600) + "h\"";
  if (n % 60 == 0) return "\"" + std::to_string(n / 60) + "m\"";
  return "\"" + std::to_string(n) + "s\"";
}

bool is_pool_mode(std::string_view v) { return v == "session" || v == "transaction" || v == "statement"; }

bool is_sslmode(std::string_view v) {
  return v == "disable" || v == "allow" || v == "prefer" || v == "require" || v == "verify-ca" || v == "verify-full";
}

// Upper bounds as pgweir validates them; a larger PgBouncer value would not load.
constexpr long long k_max_pool_size = 10000;
constexpr long long k_max_count = 1'000'000;

struct Line {
  std::string key;
  std::string value;  // a TOML literal
  std::string comment;
};

struct Table {
  std::string header;  // "server", "databases.appdb", …
  std::vector<Line> lines;
  std::vector<std::string> notes;  // comment lines written at the end of the table

  void set(std::string key, std::string value, std::string comment = {}) {
    for (auto& l : lines)
      if (l.key == key) {
        l.value = std::move(value);
        l.comment = std::move(comment);
        return;
      }
    lines.push_back({std::move(key), std::move(value), std::move(comment)});
  }
  const Line* find(std::string_view key) const {
    for (const auto& l : lines)
      if (l.key == key) return &l;
    return nullptr;
  }
};

std::string note(std::string_view key, std::string_view value, std::string_view why) {
  return "# pgbouncer: " + std::string(key) + " = " + std::string(value) + " (no equivalent: " + std::string(why) + ")";
}

// Settings pgweir has no key for, with the reason given in the comment.
const std::map<std::string, std::string, std::less<>>& unsupported_reasons() {
  static const std::map<std::string, std::string, std::less<>> reasons = {
      {"logfile", "pgweir logs to stderr; journald or the container runtime keeps the log"},
      {"pidfile", "pgweir runs in the foreground and the service manager tracks its PID"},
      {"user", "set the user in the service manager (User= in systemd/pgweir.service)"},
      {"syslog", "pgweir logs to stderr; journald forwards to syslog"},
      {"syslog_ident", "pgweir logs to stderr; journald forwards to syslog"},
      {"syslog_facility", "pgweir logs to stderr; journald forwards to syslog"},
      {"log_connections", "pgweir logs every login (client_login) at level info"},
      {"log_disconnections", "pgweir logs every logout (client_logout) with its reason at level info"},
      {"log_pooler_errors", "pgweir has no switch for it; set log.level"},
      {"log_stats", "pgweir exports statistics on the metrics endpoint instead"},
      {"stats_period", "pgweir's metrics are scraped on the scraper's own schedule"},
      {"unix_socket_mode", "pgweir's socket takes the process umask; use the systemd unit's UMask= or the directory's mode"},
      {"unix_socket_group", "give the socket directory to that group (RuntimeDirectory= with Group=)"},
      {"reserve_pool_timeout", "pgweir opens overflow connections as soon as a client has to wait"},
      {"server_check_query", "pgweir's pre_ping check is built in"},
      {"server_reset_query_always", "pgweir runs reset_query only after session-mode clients"},
      {"server_round_robin", "pgweir has no switch for it; list several hosts in the dsn"},
      {"server_fast_close", "pgweir has no switch for it"},
      {"server_login_retry", "pgweir has no retry delay setting"},
      {"ignore_startup_parameters", "pgweir honours every startup parameter PostgreSQL accepts"},
      {"disable_pqexec", "not supported"},
      {"application_name_add_host", "not supported"},
      {"track_extra_parameters", "pgweir re-applies every parameter the client set and the server reported"},
      {"autodb_idle_timeout", "pgweir has no separate timeout for wildcard-database pools; idle_timeout applies"},
      {"suspend_timeout", "pgweir has no online restart (SUSPEND)"},
      {"cancel_wait_timeout", "pgweir has no such timeout"},
      {"so_reuseport", "pgweir runs one process with several event-loop threads (server.workers)"},
      {"peer_id", "pgweir has no peering"},
      {"pkt_buf", "pgweir sizes its buffers itself"},
      {"max_packet_size", "pgweir's message size limit is built in"},
      {"sbuf_loopcnt", "pgweir sizes its buffers itself"},
      {"listen_backlog", "pgweir's listen backlog is built in"},
      {"tcp_defer_accept", "not supported"},
      {"tcp_socket_buffer", "not supported"},
      {"tcp_keepalive", "pgweir uses the system's TCP keepalive settings"},
      {"tcp_keepcnt", "pgweir uses the system's TCP keepalive settings"},
      {"tcp_keepidle", "pgweir uses the system's TCP keepalive settings"},
      {"tcp_keepintvl", "pgweir uses the system's TCP keepalive settings"},
      {"tcp_user_timeout", "pgweir uses the system's TCP settings"},
      {"dns_max_ttl", "pgweir leaves host name resolution to the system resolver"},
      {"dns_nxdomain_ttl", "pgweir leaves host name resolution to the system resolver"},
      {"dns_zone_check_period", "pgweir leaves host name resolution to the system resolver"},
      {"resolv_conf", "pgweir uses the system resolver"},
      {"client_tls_ecdhcurve", "pgweir uses OpenSSL's default groups"},
      {"client_tls_dheparams", "pgweir uses OpenSSL's default groups"},
      {"client_tls13_ciphers", "pgweir uses OpenSSL's TLS 1.3 cipher suites"},
      {"server_tls_protocols", "pgweir connects to servers with TLS 1.2 or newer"},
      {"server_tls_ciphers", "pgweir uses OpenSSL's default cipher list towards servers"},
      {"server_tls13_ciphers", "pgweir uses OpenSSL's default cipher list towards servers"},
      {"server_tls_sslmode", "it applies to the dsn of each database, and no [databases] entry took it"},
      {"server_tls_ca_file", "it applies to the dsn of each database, and no [databases] entry took it"},
      {"server_tls_cert_file", "it applies to the dsn of each database, and no [databases] entry took it"},
      {"server_tls_key_file", "it applies to the dsn of each database, and no [databases] entry took it"},
      {"conffile", "pgweir takes its config file from -c"},
      {"service_name", "not needed outside Windows"},
      {"job_name", "not needed outside Windows"},
      {"auth_ident_file", "pgweir's hba has no ident maps"},
      {"max_db_client_connections", "pgweir caps clients over all databases only (server.max_client_connections)"},
      {"max_user_client_connections", "pgweir caps clients over all databases only (server.max_client_connections)"},
  };
  return reasons;
}

class Converter {
 public:
  std::string convert(std::string_view ini_text, std::string_view source_name) {
    IniFile ini = parse_ini(ini_text);
    for (const auto& p : ini.problems) general_notes_.push_back("# pgbouncer.ini line " + p + " (skipped)");
    std::vector<const IniEntry*> databases, users;
    for (const auto& e : ini.entries) {
      if (e.key == "%include") {
        general_notes_.push_back("# pgbouncer: %include " + e.value +
                                 " (no equivalent: pgweir reads one file; convert the included file and merge it)");
      } else if (e.section == "pgbouncer") {
        settings_[lower(e.key)] = e.value;  // the last one wins, as in PgBouncer
      } else if (e.section == "databases") {
        databases.push_back(&e);
      } else if (e.section == "users") {
        users.push_back(&e);
      } else {
        general_notes_.push_back(note(e.key, e.value, "line " + std::to_string(e.line) + " is in section [" +
                                                          e.section + "], which PgBouncer does not read"));
      }
    }

    convert_server();
    convert_tls();
    convert_auth();
    convert_admin();
    convert_pool();
    convert_log();
    for (const auto* e : databases) convert_database(*e);
    for (const auto* e : users) convert_user(*e);
    for (const auto& [key, value] : settings_) {
      if (used_.contains(key)) continue;
      auto reason = unsupported_reasons().find(key);
      general_notes_.push_back(
          note(key, value, reason != unsupported_reasons().end() ? reason->second : "not a PgBouncer setting pgweir knows"));
    }
    return render(source_name);
  }

 private:
  // The value of [pgbouncer] `key`, marking it as handled.
  std::optional<std::string> take(const std::string& key) {
    used_.insert(key);
    auto it = settings_.find(key);
    if (it == settings_.end()) return std::nullopt;
    return it->second;
  }

  void invalid(Table& table, std::string_view key, std::string_view value, std::string_view expected) {
    table.notes.push_back("# pgbouncer: " + std::string(key) + " = " + std::string(value) + " (not converted: " +
                          std::string(expected) + ")");
  }

  // An integer setting onto `table.pgweir_key`; `fallback` is PgBouncer's default when it differs from pgweir's.
  void integer(Table& table, const std::string& key, const std::string& pgweir_key, long long min, long long max,
               std::optional<std::string_view> fallback = std::nullopt) {
    auto value = take(key);
    if (!value) {
      if (fallback) table.set(pgweir_key, std::string(*fallback), "PgBouncer's default for " + key);
      return;
    }
    if (auto n = parse_int(*value, min, max)) {
      table.set(pgweir_key, std::to_string(*n), key);
    } else {
      invalid(table, key, *value, "expected a whole number from " + std::to_string(min) + " to " + std::to_string(max));
    }
  }

  void duration(Table& table, const std::string& key, const std::string& pgweir_key,
                std::optional<std::string_view> fallback = std::nullopt) {
    auto value = take(key);
    if (!value) {
      if (fallback) table.set(pgweir_key, *parse_seconds(*fallback), "PgBouncer's default for " + key);
      return;
    }
    if (auto d = parse_seconds(*value)) {
      table.set(pgweir_key, *d, key);
    } else {
      invalid(table, key, *value, "expected a number of seconds");
    }
  }

  void string(Table& table, const std::string& key, const std::string& pgweir_key) {
    if (auto value = take(key)) table.set(pgweir_key, toml_string(*value), key);
  }

  void convert_server() {
    auto& t = server_;
    std::string port(k_pgbouncer_port);
    if (auto p = take("listen_port")) {
      if (parse_int(*p, 1, 65535)) {
        port = *p;
      } else {
        invalid(t, "listen_port", *p, "expected a port from 1 to 65535; 6432 used");
      }
    }
    std::vector<std::string> listen;
    auto addresses = take("listen_addr");
    for (const auto& a : split_list(addresses.value_or(""))) {
      if (a == "*") {
        listen.push_back("0.0.0.0:" + port);
        listen.push_back("[::]:" + port);
      } else if (a.find(':') != std::string::npos) {
        listen.push_back("[" + a + "]:" + port);
      } else {
        listen.push_back(a + ":" + port);
      }
    }
    if (listen.empty()) {
      // PgBouncer without listen_addr accepts unix-socket clients only; pgweir always has a TCP listener.
      t.set("listen", toml_string_array({"127.0.0.1:" + port}),
            "PgBouncer had no listen_addr (unix socket only); pgweir needs one TCP address");
    } else {
      t.set("listen", toml_string_array(listen),
            addresses && addresses->find('*') != std::string::npos
                ? "listen_addr = *; drop \"[::]\" on a host without IPv6"
                : "listen_addr, listen_port");
    }
    if (auto dir = take("unix_socket_dir")) {
      t.set("unix_socket_dir", toml_string(*dir), "unix_socket_dir");
    } else {
      t.set("unix_socket_dir", toml_string("/tmp"), "PgBouncer's default for unix_socket_dir");
    }
    integer(t, "max_client_conn", "max_client_connections", 1, k_max_count, "100");
    duration(t, "client_login_timeout", "client_login_timeout");
    duration(t, "client_idle_timeout", "client_idle_timeout");
  }

  void convert_tls() {
    auto& t = tls_;
    auto mode = take("client_tls_sslmode");
    if (mode && is_sslmode(lower(*mode))) {
      t.set("mode", toml_string(lower(*mode)), "client_tls_sslmode");
    } else {
      if (mode) invalid(t, "client_tls_sslmode", *mode, "not an sslmode; \"disable\" used");
      t.set("mode", toml_string("disable"), "PgBouncer's default for client_tls_sslmode");
    }
    string(t, "client_tls_cert_file", "cert_file");
    string(t, "client_tls_key_file", "key_file");
    string(t, "client_tls_ca_file", "ca_file");
    if (auto protocols = take("client_tls_protocols")) convert_protocols(*protocols);
    if (auto ciphers = take("client_tls_ciphers")) {
      static const std::set<std::string, std::less<>> k_aliases = {"default", "secure", "normal", "fast",
                                                                   "compat",  "legacy", "all"};
      if (k_aliases.contains(lower(*ciphers))) {
        t.notes.push_back(note("client_tls_ciphers", *ciphers,
                               "PgBouncer's alias names are not OpenSSL's; pgweir's default list is kept"));
      } else {
        t.set("ciphers", toml_string(*ciphers), "client_tls_ciphers");
      }
    }
  }

  void convert_protocols(const std::string& value) {
    // pgweir speaks TLS 1.2 and 1.3 only, so the question is just whether 1.2 stays enabled.
    bool tls12 = false, tls13 = false, older = false;
    std::string words = lower(value);
    std::replace_if(words.begin(), words.end(), [](char c) { return c == ':' || std::isspace(static_cast<unsigned char>(c)); }, ',');
    for (const auto& part : split_list(words)) {
      if (part == "secure" || part == "default") {
        tls12 = tls13 = true;
      } else if (part == "all" || part == "legacy" || part == "compat") {
        tls12 = tls13 = older = true;
      } else if (part == "tlsv1.2") {
        tls12 = true;
      } else if (part == "tlsv1.3") {
        tls13 = true;
      } else if (part == "tlsv1.0" || part == "tlsv1.1" || part == "tlsv1") {
        older = true;
      } else {
        invalid(tls_, "client_tls_protocols", value, "unknown protocol \"" + part + "\"");
        return;
      }
    }
    if (tls13 && !tls12 && !older) {
      tls_.set("min_protocol", toml_string("TLSv1.3"), "client_tls_protocols");
    } else {
      tls_.set("min_protocol", toml_string("TLSv1.2"), "client_tls_protocols");
      if (older) tls_.notes.push_back(note("client_tls_protocols", value, "pgweir never speaks TLS older than 1.2"));
    }
  }

  void convert_auth() {
    auto& t = auth_;
    auto type = take("auth_type");
    std::string method = lower(type.value_or("md5"));
    if (method == "plain") {
      // pgweir never asks for a clear-text password; md5 works with the same auth_file secrets (plain or md5).
      t.set("method", toml_string("md5"), "auth_type = plain: pgweir asks for md5 instead of a clear-text password");
    } else if (method == "any") {
      t.set("method", toml_string("trust"), "auth_type = any: trust also takes any password");
    } else if (method == "trust" || method == "md5" || method == "scram-sha-256" || method == "cert" ||
               method == "hba") {
      t.set("method", toml_string(method), type ? "auth_type" : "PgBouncer's default for auth_type");
    } else {
      t.notes.push_back(note("auth_type", type.value_or(""), "pgweir has no \"" + method + "\" method; scram-sha-256 kept"));
    }
    string(t, "auth_file", "users_file");
    string(t, "auth_hba_file", "hba_file");
    auto query = take("auth_query");
    auto user = take("auth_user");
    string(t, "auth_dbname", "query_database");
    if (user && !user->empty()) {
      t.set("query", toml_string(query.value_or(std::string(k_pgbouncer_auth_query))),
            query ? "auth_query" : "PgBouncer's default for auth_query");
      t.set("query_user", toml_string(*user), "auth_user");
    } else if (query) {
      t.notes.push_back(note("auth_query", *query, "PgBouncer runs auth_query only with auth_user, which is not set"));
    }
  }

  void convert_admin() {
    if (auto v = take("admin_users")) admin_.set("users", toml_string_array(split_list(*v)), "admin_users");
    if (auto v = take("stats_users")) admin_.set("stats_users", toml_string_array(split_list(*v)), "stats_users");
  }

  void convert_pool() {
    auto& t = pool_;
    if (auto mode = take("pool_mode"); mode && is_pool_mode(lower(*mode))) {
      t.set("mode", toml_string(lower(*mode)), "pool_mode");
    } else {
      if (mode) invalid(t, "pool_mode", *mode, "expected session, transaction or statement; session used");
      t.set("mode", toml_string("session"), "PgBouncer's default for pool_mode");
    }
    integer(t, "default_pool_size", "size", 1, k_max_pool_size);
    integer(t, "reserve_pool_size", "max_overflow", 0, k_max_pool_size, "0");
    integer(t, "min_pool_size", "min_idle", 0, k_max_pool_size);
    duration(t, "query_wait_timeout", "timeout", "120");
    duration(t, "server_connect_timeout", "connect_timeout", "15");
    duration(t, "server_idle_timeout", "idle_timeout");
    if (auto lifetime = settings_.find("server_lifetime");
        lifetime != settings_.end() && parse_seconds(lifetime->second) == "\"0\"") {
      used_.insert("server_lifetime");
      t.notes.push_back(note("server_lifetime", "0",
                             "PgBouncer uses each server connection once; pgweir's 0 would mean never recycle"));
      t.set("max_lifetime", "\"1h\"", "PgBouncer's default for server_lifetime");
    } else {
      duration(t, "server_lifetime", "max_lifetime", "3600");
    }
    if (auto delay = settings_.find("server_check_delay");
        delay != settings_.end() && parse_seconds(delay->second) == "\"0\"") {
      used_.insert("server_check_delay");
      t.set("pre_ping", "\"1ms\"", "server_check_delay = 0 checks every time; 0 would turn pgweir's check off");
    } else {
      duration(t, "server_check_delay", "pre_ping");
    }
    string(t, "server_reset_query", "reset_query");
    integer(t, "max_db_connections", "max_db_connections", 0, k_max_count);
    integer(t, "max_user_connections", "max_user_connections", 0, k_max_count);
    duration(t, "idle_transaction_timeout", "idle_transaction_timeout");
    duration(t, "query_timeout", "query_timeout");
    integer(t, "max_prepared_statements", "max_prepared_statements", 0, k_max_count);
    t.notes.push_back(
        "# session_state: pgweir pins a transaction-mode client that changes session state to its server (\"pin\"); "
        "PgBouncer lets the state leak, as \"allow\" would.");
    clamp_min_idle(t, 20, 0);
  }

  // pgweir refuses min_idle above size, which PgBouncer accepts; its pool would never keep more than size open.
  void clamp_min_idle(Table& t, long long parent_size, long long parent_min) {
    auto number = [&](std::string_view key, long long fallback) {
      const Line* l = t.find(key);
      return l ? std::strtoll(l->value.c_str(), nullptr, 10) : fallback;
    };
    long long size = number("size", parent_size);
    long long min = number("min_idle", parent_min);
    if (min > size) t.set("min_idle", std::to_string(size), "lowered to size: pgweir keeps at most size connections idle");
  }

  long long pool_number(std::string_view key, long long fallback) const {
    const Line* l = pool_.find(key);
    return l ? std::strtoll(l->value.c_str(), nullptr, 10) : fallback;
  }

  void convert_log() {
    if (auto verbose = take("verbose")) {
      auto n = parse_int(*verbose, 0, 10);
      if (n && *n > 0) {
        log_.set("level", toml_string("debug"), "verbose");
      } else if (!n) {
        invalid(log_, "verbose", *verbose, "expected a number");
      }
    }
  }

  void convert_database(const IniEntry& e) {
    Table t;
    t.header = "databases." + toml_key(e.key);
    if (e.key == "pgweir" || e.key == "pgbouncer") {
      general_notes_.push_back(note("[databases] " + e.key, e.value, "the name is pgweir's admin console"));
      return;
    }
    std::vector<ConnPair> pairs;
    if (!parse_conn_pairs(e.value, pairs)) {
      general_notes_.push_back("# pgbouncer: [databases] " + e.key + " = " + e.value +
                               " (not converted: unterminated quote or a word without '=')");
      return;
    }
    std::vector<std::string> dsn;
    std::vector<std::string> options;
    bool has_dbname = false, has_sslmode = false, has_root = false, has_cert = false, has_key = false;
    for (const auto& [key, value] : pairs) {
      if (key == "host" || key == "port" || key == "user" || key == "client_encoding" || key == "application_name") {
        dsn.push_back(key + "=" + conninfo_value(value));
      } else if (key == "dbname") {
        has_dbname = true;
        if (e.key == "*") {
          t.notes.push_back(note(key, value, "the wildcard database forwards each client's database name as it is"));
        } else {
          dsn.push_back("dbname=" + conninfo_value(value));
        }
      } else if (key == "password") {
        t.set("password", toml_string(value), "password");
      } else if (key == "datestyle" || key == "timezone") {
        options.push_back(std::string("-c ") + (key == "datestyle" ? "DateStyle" : "TimeZone") + "=" + value);
      } else if (key == "pool_size") {
        set_int(t, key, value, "size", 1, k_max_pool_size);
      } else if (key == "min_pool_size") {
        set_int(t, key, value, "min_idle", 0, k_max_pool_size);
      } else if (key == "reserve_pool" || key == "reserve_pool_size") {
        set_int(t, key, value, "max_overflow", 0, k_max_pool_size);
      } else if (key == "max_db_connections") {
        set_int(t, key, value, "max_db_connections", 0, k_max_count);
      } else if (key == "pool_mode") {
        if (is_pool_mode(lower(value))) {
          t.set("mode", toml_string(lower(value)), "pool_mode");
        } else {
          invalid(t, key, value, "expected session, transaction or statement");
        }
      } else if (key == "server_lifetime") {
        set_duration(t, key, value, "max_lifetime");
      } else if (key == "sslmode" || key == "sslrootcert" || key == "sslcert" || key == "sslkey") {
        has_sslmode |= key == "sslmode";
        has_root |= key == "sslrootcert";
        has_cert |= key == "sslcert";
        has_key |= key == "sslkey";
        dsn.push_back(key + "=" + conninfo_value(value));
      } else if (key == "auth_user") {
        t.notes.push_back(note(key, value, "pgweir's auth.query_user is global, not per database"));
      } else if (key == "auth_dbname") {
        t.notes.push_back(note(key, value, "pgweir's auth.query_database is global, not per database"));
      } else if (key == "connect_query") {
        t.notes.push_back(note(key, value, "pgweir runs no query on new server connections"));
      } else {
        t.notes.push_back(note(key, value, "not a [databases] parameter pgweir knows"));
      }
    }
    if (!has_dbname && e.key != "*") dsn.push_back("dbname=" + conninfo_value(e.key));
    // server_tls_* apply to every database that does not say otherwise.
    std::string dsn_sources;
    const auto server_tls = [&](const char* setting, const char* dsn_key, bool already) {
      auto it = settings_.find(setting);
      if (it == settings_.end() || already || it->second.empty()) return;
      used_.insert(setting);
      dsn.push_back(std::string(dsn_key) + "=" + conninfo_value(it->second));
      dsn_sources += (dsn_sources.empty() ? "" : ", ") + std::string(setting);
    };
    server_tls("server_tls_sslmode", "sslmode", has_sslmode);
    server_tls("server_tls_ca_file", "sslrootcert", has_root);
    server_tls("server_tls_cert_file", "sslcert", has_cert);
    server_tls("server_tls_key_file", "sslkey", has_key);
    if (!options.empty()) {
      std::string joined;
      for (const auto& o : options) joined += (joined.empty() ? "" : " ") + o;
      dsn.push_back("options=" + conninfo_value(joined));
    }
    std::string dsn_text;
    for (const auto& part : dsn) dsn_text += (dsn_text.empty() ? "" : " ") + part;
    if (dsn_text.empty()) dsn_text = "host=/tmp";  // a bare "* =" : PgBouncer's default unix socket directory
    t.lines.insert(t.lines.begin(), Line{"dsn", toml_string(dsn_text), dsn_sources});
    clamp_min_idle(t, pool_number("size", 20), pool_number("min_idle", 0));
    databases_.push_back(std::move(t));
  }

  void convert_user(const IniEntry& e) {
    Table t;
    t.header = "users." + toml_key(e.key);
    std::vector<ConnPair> pairs;
    if (!parse_conn_pairs(e.value, pairs)) {
      general_notes_.push_back("# pgbouncer: [users] " + e.key + " = " + e.value +
                               " (not converted: unterminated quote or a word without '=')");
      return;
    }
    for (const auto& [key, value] : pairs) {
      if (key == "pool_mode") {
        if (is_pool_mode(lower(value))) {
          t.set("mode", toml_string(lower(value)), "pool_mode");
        } else {
          invalid(t, key, value, "expected session, transaction or statement");
        }
      } else if (key == "max_user_connections") {
        set_int(t, key, value, "max_user_connections", 0, k_max_count);
      } else if (key == "pool_size") {
        set_int(t, key, value, "size", 1, k_max_pool_size);
      } else if (key == "reserve_pool_size") {
        set_int(t, key, value, "max_overflow", 0, k_max_pool_size);
      } else if (key == "query_timeout" || key == "idle_transaction_timeout") {
        set_duration(t, key, value, key);
      } else {
        t.notes.push_back(note(key, value, "not a [users] parameter pgweir knows"));
      }
    }
    clamp_min_idle(t, pool_number("size", 20), pool_number("min_idle", 0));
    users_.push_back(std::move(t));
  }

  void set_int(Table& t, const std::string& key, const std::string& value, const std::string& pgweir_key, long long min,
               long long max) {
    if (auto n = parse_int(value, min, max)) {
      t.set(pgweir_key, std::to_string(*n), key);
    } else {
      invalid(t, key, value, "expected a whole number from " + std::to_string(min) + " to " + std::to_string(max));
    }
  }

  void set_duration(Table& t, const std::string& key, const std::string& value, const std::string& pgweir_key) {
    if (auto d = parse_seconds(value)) {
      t.set(pgweir_key, *d, key);
    } else {
      invalid(t, key, value, "expected a number of seconds");
    }
  }

  static void render_table(std::string& out, const Table& t) {
    if (t.lines.empty() && t.notes.empty()) return;
    out += "\n[" + t.header + "]\n";
    std::size_t width = 0;
    for (const auto& l : t.lines) width = std::max(width, l.key.size() + 3 + l.value.size());
    width = std::min<std::size_t>(width, 40);
    for (const auto& l : t.lines) {
      std::string line = l.key + " = " + l.value;
      if (!l.comment.empty()) {
        line.append(line.size() < width ? width - line.size() : 0, ' ');
        line += "  # " + l.comment;
      }
      out += line + "\n";
    }
    for (const auto& n : t.notes) out += n + "\n";
  }

  std::string render(std::string_view source_name) const {
    std::string out;
    out += "# pgweir.toml converted from " + std::string(source_name) + " by `pgweir --from-pgbouncer`.\n";
    out += "# Comments name the PgBouncer setting each key came from. Where PgBouncer's default differs from pgweir's,\n";
    out += "# PgBouncer's is written out so that nothing changes. Settings pgweir has no key for are kept as\n";
    out += "# `# pgbouncer: ...` comments. Check the result with `pgweir --check -c FILE`.\n";
    render_table(out, server_);
    render_table(out, tls_);
    render_table(out, auth_);
    render_table(out, admin_);
    render_table(out, pool_);
    for (const auto& t : databases_) render_table(out, t);
    for (const auto& t : users_) render_table(out, t);
    out += "\n[metrics]\n";
    out += "listen = \"127.0.0.1:9127\"          # new in pgweir: GET /metrics, /healthz, /readyz; \"\" turns it off\n";
    render_table(out, log_);
    if (!general_notes_.empty()) {
      out += "\n# Settings with no pgweir equivalent\n";
      for (const auto& n : general_notes_) out += n + "\n";
    }
    return out;
  }

  std::map<std::string, std::string> settings_;  // [pgbouncer], keys lower-cased
  std::set<std::string> used_;
  Table server_{"server", {}, {}}, tls_{"tls", {}, {}}, auth_{"auth", {}, {}}, admin_{"admin", {}, {}},
      pool_{"pool", {}, {}}, log_{"log", {}, {}};
  std::vector<Table> databases_, users_;
  std::vector<std::string> general_notes_;
};

}  // namespace

std::string from_pgbouncer(std::string_view ini_text, std::string_view source_name) {
  return Converter().convert(ini_text, source_name);
}

}  // namespace pgweir::migrate
