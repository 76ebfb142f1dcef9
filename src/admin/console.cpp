// The admin console: command parsing, role checks, and the result sets of PgBouncer 1.18's SHOW commands (same column
// names, order and types, so pgbouncer_exporter and dashboards read pgweir unchanged).
#include "pgweir/admin/console.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <ctime>

#include "pgweir/protocol/messages.hpp"

namespace pgweir::admin {

namespace {

// ---------------------------------------------------------------------------------------------
// Parsing

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

std::string upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// Query text echoed in an error: short, one line, printable.
std::string quote_for_error(std::string_view s) {
  constexpr std::size_t k_max = 60;
  std::string out;
  for (char c : s.substr(0, k_max)) out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  if (s.size() > k_max) out += "...";
  return "\"" + out + "\"";
}

struct Token {
  enum class Kind { word, identifier, literal, equals } kind = Kind::word;
  std::string text;  // quotes removed and doubled quotes undone for identifier and literal
};

Expected<std::vector<Token>> tokenize(std::string_view s) {
  std::vector<Token> tokens;
  std::size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (is_space(c)) {
      ++i;
      continue;
    }
    if (c == ';') return make_error("one command per query, please: remove everything after the \";\"");
    if (c == '=') {
      tokens.push_back({Token::Kind::equals, "="});
      ++i;
      continue;
    }
    if (c == '"' || c == '\'') {
      Token t{c == '"' ? Token::Kind::identifier : Token::Kind::literal, {}};
      ++i;
      bool closed = false;
      while (i < s.size()) {
        if (s[i] == c) {
          if (i + 1 < s.size() && s[i + 1] == c) {  // a doubled quote stands for one
            t.text += c;
            i += 2;
            continue;
          }
          ++i;
          closed = true;
          break;
        }
        t.text += s[i++];
      }
      if (!closed) return make_error(std::string("unterminated ") + (c == '"' ? "quoted name" : "string literal"));
      tokens.push_back(std::move(t));
      continue;
    }
    Token t{Token::Kind::word, {}};
    while (i < s.size() && !is_space(s[i]) && s[i] != ';' && s[i] != '=' && s[i] != '"' && s[i] != '\'')
      t.text += s[i++];
    tokens.push_back(std::move(t));
  }
  return tokens;
}

// A database name or client id argument: a bare word or a quoted name.
bool is_name(const Token& t) {
  return (t.kind == Token::Kind::word || t.kind == Token::Kind::identifier) && !t.text.empty();
}

std::optional<std::uint64_t> parse_id(std::string_view s) {
  int base = 10;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    s.remove_prefix(2);
    base = 16;
  }
  std::uint64_t v = 0;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (s.empty() || r.ec != std::errc{} || r.ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

bool is_console_database(std::string_view database) { return database == "pgweir" || database == "pgbouncer"; }

Expected<Command> parse_command(std::string_view text) {
  auto tokens_or = tokenize(text.substr(0, text.find_last_not_of(" \t\n\r\f\v;") + 1));
  // Trailing semicolons (and whitespace between them) end the command; any other ';' is a second command.
  if (text.find_first_not_of(" \t\n\r\f\v;") == std::string_view::npos) return Command{};
  if (!tokens_or) return tokens_or.error();
  const auto& t = *tokens_or;
  if (t.front().kind != Token::Kind::word)
    return make_error("a console command starts with a keyword, not " + quote_for_error(t.front().text) +
                      "; SHOW HELP lists the commands");

  Command cmd;
  cmd.verb = upper(t.front().text);
  const std::size_t args = t.size() - 1;
  auto usage = [&](std::string_view form) { return make_error("usage: " + std::string(form)); };
  auto optional_name = [&](std::string_view form) -> Expected<Command> {
    if (args > 1 || (args == 1 && !is_name(t[1]))) return usage(form);
    if (args == 1) cmd.argument = t[1].text;
    return cmd;
  };

  if (cmd.verb == "SHOW") {
    cmd.kind = Command::Kind::show;
    if (args != 1 || !is_name(t[1])) return usage("SHOW POOLS | STATS | DATABASES | LISTS | CLIENTS | SERVERS | "
                                                  "USERS | CONFIG | VERSION | HELP");
    cmd.argument = lower(t[1].text);
    return cmd;
  }
  if (cmd.verb == "SET") {
    cmd.kind = Command::Kind::set;
    const bool to = args == 3 && t[2].kind == Token::Kind::word && upper(t[2].text) == "TO";
    if (args != 3 || !is_name(t[1]) || (t[2].kind != Token::Kind::equals && !to) || t[3].kind == Token::Kind::equals ||
        (t[3].text.empty() && t[3].kind != Token::Kind::literal))
      return usage("SET name = value  (or SET name TO value)");
    cmd.argument = t[1].kind == Token::Kind::word ? lower(t[1].text) : t[1].text;
    cmd.set_value = t[3].text;
    return cmd;
  }
  if (cmd.verb == "PAUSE" || cmd.verb == "RESUME" || cmd.verb == "RECONNECT") {
    cmd.kind = cmd.verb == "PAUSE"    ? Command::Kind::pause
               : cmd.verb == "RESUME" ? Command::Kind::resume
                                      : Command::Kind::reconnect;
    return optional_name(cmd.verb + " [database]");
  }
  if (cmd.verb == "KILL") {
    cmd.kind = Command::Kind::kill;
    if (args != 1 || !is_name(t[1])) return usage("KILL database");
    cmd.argument = t[1].text;
    return cmd;
  }
  if (cmd.verb == "KILL_CLIENT") {
    cmd.kind = Command::Kind::kill_client;
    if (args != 1 || !is_name(t[1]) || !parse_id(t[1].text))
      return usage("KILL_CLIENT id  (the ptr column of SHOW CLIENTS)");
    cmd.argument = t[1].text;
    return cmd;
  }
  if (cmd.verb == "RELOAD") {
    cmd.kind = Command::Kind::reload;
    if (args != 0) return usage("RELOAD");
    return cmd;
  }
  if (cmd.verb == "SHUTDOWN") {
    cmd.kind = Command::Kind::shutdown;
    if (args == 0) return cmd;
    const std::string mode = upper(t[1].text);
    if (args != 1 || t[1].kind != Token::Kind::word || (mode != "WAIT_FOR_CLIENTS" && mode != "WAIT_FOR_SERVERS"))
      return usage("SHUTDOWN [WAIT_FOR_CLIENTS | WAIT_FOR_SERVERS]");
    cmd.argument = mode;
    return cmd;
  }
  for (std::string_view known : {"SUSPEND", "DISABLE", "ENABLE", "WAIT_CLOSE", "SELECT"}) {
    if (cmd.verb == known) {
      cmd.kind = Command::Kind::unsupported;
      return cmd;
    }
  }
  return make_error("unknown console command " + quote_for_error(t.front().text) + "; SHOW HELP lists the commands");
}

namespace {

// ---------------------------------------------------------------------------------------------
// Result sets

// The column types PgBouncer sends: its 's' and 'T' are text, 'i' int4, 'q' int8, 'N' numeric.
enum class Type { text, int4, int8, numeric };

struct Column {
  std::string_view name;
  Type type;
};

class ResultSet {
 public:
  explicit ResultSet(std::vector<Column> columns) : columns_(std::move(columns)) {}

  // One value per column, in order; nullopt is NULL.
  void row(std::vector<std::optional<std::string>> values) {
    values.resize(columns_.size());
    rows_.push_back(std::move(values));
  }

  void append_to(std::string& out) const {
    std::vector<protocol::FieldDescription> fields;
    fields.reserve(columns_.size());
    for (const auto& c : columns_) {
      protocol::FieldDescription f;
      f.name = c.name;
      switch (c.type) {
        case Type::text: f.type_oid = 25, f.type_size = -1; break;
        case Type::int4: f.type_oid = 23, f.type_size = 4; break;
        case Type::int8: f.type_oid = 20, f.type_size = 8; break;
        case Type::numeric: f.type_oid = 1700, f.type_size = -1; break;
      }
      fields.push_back(f);
    }
    protocol::append_row_description(out, fields);
    for (const auto& r : rows_) {
      protocol::DataRowValues values;
      values.reserve(r.size());
      for (const auto& v : r) values.push_back(v ? std::optional<std::string_view>(*v) : std::nullopt);
      protocol::append_data_row(out, values);
    }
    protocol::append_command_complete(out, "SHOW");
  }

 private:
  std::vector<Column> columns_;
  std::vector<std::vector<std::optional<std::string>>> rows_;
};

template <class N>
std::optional<std::string> num(N n) {
  return std::to_string(n);
}
std::optional<std::string> str(std::string s) { return s; }
std::optional<std::string> opt(const std::optional<std::string>& s) { return s; }

// PgBouncer shows timestamps as text; pgweir uses UTC so that the value does not depend on the host's zone.
std::optional<std::string> timestamp(std::chrono::system_clock::time_point t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  if (!::gmtime_r(&secs, &tm)) return std::string();
  char buf[64];
  const auto n = std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return std::string(buf, n);
}

std::string show_pools(Inventory& inv) {
  ResultSet rs({{"database", Type::text}, {"user", Type::text}, {"cl_active", Type::int4},
                {"cl_waiting", Type::int4}, {"cl_active_cancel_req", Type::int4},
                {"cl_waiting_cancel_req", Type::int4}, {"sv_active", Type::int4}, {"sv_active_cancel", Type::int4},
                {"sv_being_canceled", Type::int4}, {"sv_idle", Type::int4}, {"sv_used", Type::int4},
                {"sv_tested", Type::int4}, {"sv_login", Type::int4}, {"maxwait", Type::int4},
                {"maxwait_us", Type::int4}, {"pool_mode", Type::text}});
  for (const auto& p : inv.pools()) {
    const auto& s = p.snapshot;
    const auto wait_us = std::max<std::int64_t>(0, s.max_wait.count());
    rs.row({str(s.key.database), str(s.key.user), num(p.clients_active), num(s.waiting),
            num(p.clients_active_cancel_req), num(p.clients_waiting_cancel_req), num(s.active),
            num(p.servers_active_cancel), num(p.servers_being_canceled), num(s.idle), num(p.servers_used),
            num(s.testing), num(s.connecting), num(wait_us / 1'000'000), num(wait_us % 1'000'000),
            str(std::string(config::to_string(s.settings.mode)))});
  }
  std::string out;
  rs.append_to(out);
  return out;
}

std::vector<std::optional<std::string>> totals_values(const StatsTotals& t) {
  return {num(t.xact_count),  num(t.query_count),   num(t.bytes_received), num(t.bytes_sent),
          num(t.xact_time_us), num(t.query_time_us), num(t.wait_time_us)};
}
std::vector<std::optional<std::string>> averages_values(const StatsAverages& a) {
  return {num(a.xact_count),  num(a.query_count),   num(a.bytes_received), num(a.bytes_sent),
          num(a.xact_time_us), num(a.query_time_us), num(a.wait_time_us)};
}

std::string show_stats(Inventory& inv, bool totals, bool averages) {
  std::vector<Column> cols{{"database", Type::text}};
  if (totals && averages) {
    for (std::string_view n : {"total_xact_count", "total_query_count", "total_received", "total_sent",
                               "total_xact_time", "total_query_time", "total_wait_time", "avg_xact_count",
                               "avg_query_count", "avg_recv", "avg_sent", "avg_xact_time", "avg_query_time",
                               "avg_wait_time"})
      cols.push_back({n, Type::numeric});
  } else {
    for (std::string_view n :
         {"xact_count", "query_count", "bytes_received", "bytes_sent", "xact_time", "query_time", "wait_time"})
      cols.push_back({n, Type::numeric});
  }
  ResultSet rs(std::move(cols));
  for (const auto& s : inv.stats()) {
    std::vector<std::optional<std::string>> row{s.database};
    if (totals) {
      auto v = totals_values(s.total);
      row.insert(row.end(), v.begin(), v.end());
    }
    if (averages) {
      auto v = averages_values(s.average);
      row.insert(row.end(), v.begin(), v.end());
    }
    rs.row(std::move(row));
  }
  std::string out;
  rs.append_to(out);
  return out;
}

// SHOW TOTALS: SHOW STATS summed over databases, one name/value row per figure.
std::string show_totals(Inventory& inv) {
  StatsTotals t;
  StatsAverages a;
  std::uint64_t xact_time_weighted = 0, query_time_weighted = 0;
  for (const auto& s : inv.stats()) {
    t += s.total;
    a.xact_count += s.average.xact_count;
    a.query_count += s.average.query_count;
    a.bytes_received += s.average.bytes_received;
    a.bytes_sent += s.average.bytes_sent;
    a.wait_time_us += s.average.wait_time_us;
    // Per-transaction times do not add up across databases; weight each by its rate over the same period.
    xact_time_weighted += s.average.xact_time_us * s.average.xact_count;
    query_time_weighted += s.average.query_time_us * s.average.query_count;
  }
  a.xact_time_us = a.xact_count ? xact_time_weighted / a.xact_count : 0;
  a.query_time_us = a.query_count ? query_time_weighted / a.query_count : 0;
  ResultSet rs({{"name", Type::text}, {"value", Type::numeric}});
  const auto tv = totals_values(t);
  const auto av = averages_values(a);
  static constexpr std::array<std::string_view, 7> k_names{"xact_count", "query_count", "client_bytes", "server_bytes",
                                                           "xact_time",  "query_time",  "wait_time"};
  for (std::size_t i = 0; i < k_names.size(); ++i) rs.row({"total_" + std::string(k_names[i]), tv[i]});
  for (std::size_t i = 0; i < k_names.size(); ++i) rs.row({"avg_" + std::string(k_names[i]), av[i]});
  std::string out;
  rs.append_to(out);
  return out;
}

std::string show_databases(Inventory& inv) {
  ResultSet rs({{"name", Type::text}, {"host", Type::text}, {"port", Type::int4}, {"database", Type::text},
                {"force_user", Type::text}, {"pool_size", Type::int4}, {"min_pool_size", Type::int4},
                {"reserve_pool", Type::int4}, {"pool_mode", Type::text}, {"max_connections", Type::int4},
                {"current_connections", Type::int4}, {"paused", Type::int4}, {"disabled", Type::int4}});
  for (const auto& d : inv.databases()) {
    rs.row({str(d.name), opt(d.host), num(d.port), str(d.database), opt(d.force_user), num(d.pool_size),
            num(d.min_pool_size), num(d.reserve_pool), opt(d.pool_mode), num(d.max_connections),
            num(d.current_connections), num(d.paused ? 1 : 0), num(d.disabled ? 1 : 0)});
  }
  std::string out;
  rs.append_to(out);
  return out;
}

std::string show_lists(Inventory& inv) {
  const auto counts = inv.lists();
  ResultSet rs({{"list", Type::text}, {"items", Type::int4}});
  // pgweir has no slab caches or asynchronous DNS cache: those lists are always empty.
  const std::pair<std::string_view, std::size_t> rows[] = {
      {"databases", inv.databases().size()},
      {"users", inv.users().size()},
      {"pools", inv.pools().size()},
      {"free_clients", 0},
      {"used_clients", static_cast<std::size_t>(std::max(0, counts.used_clients))},
      {"login_clients", static_cast<std::size_t>(std::max(0, counts.login_clients))},
      {"free_servers", 0},
      {"used_servers", static_cast<std::size_t>(std::max(0, counts.used_servers))},
      {"dns_names", 0},
      {"dns_zones", 0},
      {"dns_queries", 0},
      {"dns_pending", 0},
  };
  for (const auto& [name, n] : rows) rs.row({str(std::string(name)), num(n)});
  std::string out;
  rs.append_to(out);
  return out;
}

std::string show_connections(const std::vector<ConnectionInfo>& list, std::string_view type) {
  ResultSet rs({{"type", Type::text}, {"user", Type::text}, {"database", Type::text}, {"state", Type::text},
                {"addr", Type::text}, {"port", Type::int4}, {"local_addr", Type::text}, {"local_port", Type::int4},
                {"connect_time", Type::text}, {"request_time", Type::text}, {"wait", Type::int4},
                {"wait_us", Type::int4}, {"close_needed", Type::int4}, {"ptr", Type::text}, {"link", Type::text},
                {"remote_pid", Type::int4}, {"tls", Type::text}, {"application_name", Type::text}});
  for (const auto& c : list) {
    const auto wait_us = std::max<std::int64_t>(0, c.wait.count());
    rs.row({str(std::string(type)), str(c.user), str(c.database), str(c.state), str(c.addr), num(c.port),
            str(c.local_addr), num(c.local_port), timestamp(c.connect_time), timestamp(c.request_time),
            num(wait_us / 1'000'000), num(wait_us % 1'000'000), num(c.close_needed ? 1 : 0), num(c.id),
            str(c.link ? std::to_string(c.link) : std::string()), num(c.remote_pid), str(c.tls),
            str(c.application_name)});
  }
  std::string out;
  rs.append_to(out);
  return out;
}

std::string show_users(Inventory& inv) {
  ResultSet rs({{"name", Type::text}, {"pool_mode", Type::text}});
  for (const auto& u : inv.users()) rs.row({str(u.name), opt(u.pool_mode)});
  std::string out;
  rs.append_to(out);
  return out;
}

std::string show_config(Inventory& inv) {
  ResultSet rs({{"key", Type::text}, {"value", Type::text}, {"default", Type::text}, {"changeable", Type::text}});
  for (const auto& e : inv.config())
    rs.row({str(e.key), str(e.value), str(e.default_value), str(e.changeable ? "yes" : "no")});
  std::string out;
  rs.append_to(out);
  return out;
}

std::string show_single(std::string_view column, std::string value) {
  ResultSet rs({{column, Type::text}});
  rs.row({std::move(value)});
  std::string out;
  rs.append_to(out);
  return out;
}

std::string show_help() {
  protocol::ErrorFields notice;
  notice.severity = "NOTICE";
  notice.code = "00000";
  notice.message = "pgweir console commands";
  notice.detail =
      "SHOW POOLS | STATS | STATS_TOTALS | STATS_AVERAGES | TOTALS | DATABASES | LISTS | CLIENTS | SERVERS |"
      " USERS | CONFIG | VERSION | HELP\n"
      "PAUSE [db]    RESUME [db]    RECONNECT [db]    KILL db    KILL_CLIENT id\n"
      "RELOAD    SHUTDOWN [WAIT_FOR_CLIENTS | WAIT_FOR_SERVERS]";
  std::string out;
  protocol::append_notice_response(out, notice);
  protocol::append_command_complete(out, "SHOW");
  return out;
}

// Session parameters drivers read or set on connect. The console has no session; these answers keep drivers happy.
struct SessionParameter {
  std::string_view name, value;
};
constexpr SessionParameter k_session_parameters[] = {
    {"client_encoding", "UTF8"},
    {"default_transaction_isolation", "read committed"},
    {"standard_conforming_strings", "on"},
    {"datestyle", "ISO, MDY"},
    {"timezone", "UTC"},
    {"application_name", ""},
    {"extra_float_digits", "1"},
};
const SessionParameter* find_session_parameter(std::string_view name) {
  const std::string key = lower(name);
  for (const auto& p : k_session_parameters)
    if (p.name == key) return &p;
  return nullptr;
}

void append_error(std::string& out, std::string_view sqlstate, std::string_view message) {
  protocol::append_error(out, "ERROR", sqlstate, message);
}

// Checks a database argument: it must be one the daemon serves, and not the console itself.
std::optional<std::string> check_database(Inventory& inv, const std::string& name, std::string_view verb,
                                          std::string& out) {
  if (is_console_database(name)) {
    append_error(out, "55000", std::string(verb) + " does not apply to the console database \"" + name + "\"");
    return std::nullopt;
  }
  const auto dbs = inv.databases();
  const bool configured =
      std::any_of(dbs.begin(), dbs.end(), [&](const DatabaseInfo& d) { return d.name == name && name != "*"; });
  bool pooled = false;
  if (!configured) {
    const auto pools = inv.pools();
    pooled = std::any_of(pools.begin(), pools.end(),
                         [&](const PoolInfo& p) { return p.snapshot.key.database == name; });
  }
  if (!configured && !pooled) {
    append_error(out, "3D000", "no such database: " + quote_for_error(name));
    return std::nullopt;
  }
  return name;
}

// Runs an action and writes its CommandComplete, or its error as 55000.
void complete(std::string& out, const Expected<void>& result, std::string_view tag) {
  if (result)
    protocol::append_command_complete(out, tag);
  else
    append_error(out, "55000", result.error().message);
}

std::string run(const Command& cmd, Role role, Inventory& inv) {
  std::string out;
  using K = Command::Kind;
  if (cmd.kind == K::empty) {
    protocol::append_empty_query_response(out);
    return out;
  }
  if (cmd.kind == K::show) {
    const std::string& what = *cmd.argument;
    if (what == "pools") return show_pools(inv);
    if (what == "stats") return show_stats(inv, true, true);
    if (what == "stats_totals") return show_stats(inv, true, false);
    if (what == "stats_averages") return show_stats(inv, false, true);
    if (what == "totals") return show_totals(inv);
    if (what == "databases") return show_databases(inv);
    if (what == "lists") return show_lists(inv);
    if (what == "clients") return show_connections(inv.clients(), "C");
    if (what == "servers") return show_connections(inv.servers(), "S");
    if (what == "users") return show_users(inv);
    if (what == "config") return show_config(inv);
    if (what == "version") return show_single("version", inv.version());
    if (what == "help") return show_help();
    if (const auto* p = find_session_parameter(what)) return show_single(p->name, std::string(p->value));
    for (std::string_view other : {"fds", "sockets", "active_sockets", "mem", "dns_hosts", "dns_zones", "state"}) {
      if (what == other) {
        append_error(out, "0A000", "SHOW " + upper(what) + " is a PgBouncer command that pgweir does not implement");
        return out;
      }
    }
    append_error(out, "42601", "unknown SHOW subject " + quote_for_error(what) + "; SHOW HELP lists them");
    return out;
  }
  if (cmd.kind == K::set) {
    if (find_session_parameter(*cmd.argument)) {
      protocol::append_command_complete(out, "SET");
    } else {
      append_error(out, "0A000",
                   "SET " + quote_for_error(*cmd.argument) +
                       ": pgweir's settings change in the config file, then RELOAD");
    }
    return out;
  }
  if (role != Role::admin) {
    append_error(out, "42501", "permission denied: " + cmd.verb + " needs a user listed in admin.users");
    return out;
  }
  switch (cmd.kind) {
    case K::pause:
    case K::resume:
    case K::reconnect: {
      std::optional<std::string> db;
      if (cmd.argument) {
        db = check_database(inv, *cmd.argument, cmd.verb, out);
        if (!db) return out;
      }
      const auto result = cmd.kind == K::pause    ? inv.pause(db)
                          : cmd.kind == K::resume ? inv.resume(db)
                                                  : inv.reconnect(db);
      complete(out, result, cmd.verb);
      return out;
    }
    case K::kill: {
      const auto db = check_database(inv, *cmd.argument, cmd.verb, out);
      if (db) complete(out, inv.kill(*db), "KILL");
      return out;
    }
    case K::kill_client: {
      const auto id = parse_id(*cmd.argument);
      if (!id) {  // parse_command checked it; kept so a bad Command never reaches the inventory
        append_error(out, "42601", "usage: KILL_CLIENT id");
        return out;
      }
      complete(out, inv.kill_client(*id), "KILL_CLIENT");
      return out;
    }
    case K::reload: complete(out, inv.reload(), "RELOAD"); return out;
    case K::shutdown: {
      const ShutdownMode mode = !cmd.argument                        ? ShutdownMode::immediate
                                : *cmd.argument == "WAIT_FOR_CLIENTS" ? ShutdownMode::wait_for_clients
                                                                      : ShutdownMode::wait_for_servers;
      complete(out, inv.shutdown(mode), "SHUTDOWN");
      return out;
    }
    case K::unsupported:
      append_error(out, "0A000", cmd.verb + " is a PgBouncer command that pgweir does not implement");
      return out;
    default: break;
  }
  append_error(out, "42601", "unknown console command");
  return out;
}

}  // namespace

std::string Console::execute(std::string_view query_text, Role role, Inventory& inventory) {
  std::string out;
  if (auto cmd = parse_command(query_text)) {
    out = run(*cmd, role, inventory);
  } else {
    append_error(out, "42601", cmd.error().message);
  }
  protocol::append_ready_for_query(out, 'I');
  return out;
}

}  // namespace pgweir::admin
