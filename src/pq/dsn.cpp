// DSN parsing: libpq's PQconninfoParse does the parsing, this file adds libpq's connect-time checks
// (ports, sslmode, …) so a bad DSN is caught at config load, and keeps passwords out of error text.
#include "pgweir/pq/dsn.hpp"

#include <libpq-fe.h>
#include <pg_config_manual.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <memory>

namespace pgweir::pq {
namespace {

constexpr std::uint16_t k_default_port = 5432;
constexpr std::string_view k_redacted = "xxxxx";
constexpr std::string_view k_sslmodes[] = {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"};
constexpr std::string_view k_session_attrs[] = {"any",     "read-write", "read-only",
                                                "primary", "standby",    "prefer-standby"};

bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

// "password" and "sslpassword" (the client key's passphrase) are the secrets libpq knows.
bool is_secret_keyword(std::string_view keyword) {
  std::string lower(keyword);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower.find("password") != std::string::npos;
}

std::size_t uri_prefix_length(std::string_view dsn) {
  // libpq compares these case-sensitively too.
  for (std::string_view prefix : {"postgresql://", "postgres://"}) {
    if (dsn.starts_with(prefix)) return prefix.size();
  }
  return 0;
}

std::string redact_uri(std::string_view dsn, std::size_t prefix_length) {
  std::string out(dsn.substr(0, prefix_length));
  std::string_view rest = dsn.substr(prefix_length);
  // libpq takes everything up to the first '@' or '/' as userinfo when that character is '@'.
  const auto stop = rest.find_first_of("@/");
  if (stop != std::string_view::npos && rest[stop] == '@') {
    const auto colon = rest.find(':');
    if (colon < stop) {
      out.append(rest.substr(0, colon + 1)).append(k_redacted);
      rest = rest.substr(stop);
    }
  }
  const auto query = rest.find('?');
  out.append(rest.substr(0, query));
  if (query == std::string_view::npos) return out;
  out.push_back('?');
  rest = rest.substr(query + 1);
  bool first = true;
  while (true) {
    const auto amp = rest.find('&');
    const std::string_view param = rest.substr(0, amp);
    if (!first) out.push_back('&');
    first = false;
    const auto eq = param.find('=');
    if (eq != std::string_view::npos && is_secret_keyword(param.substr(0, eq))) {
      out.append(param.substr(0, eq + 1)).append(k_redacted);
    } else {
      out.append(param);
    }
    if (amp == std::string_view::npos) break;
    rest = rest.substr(amp + 1);
  }
  return out;
}

// Follows libpq's conninfo_parse tokenizer closely enough to find the secret values.
std::string redact_keyword_value(std::string_view dsn) {
  std::string out;
  std::size_t i = 0;
  const std::size_t n = dsn.size();
  auto copy_spaces = [&] {
    while (i < n && is_space(dsn[i])) out.push_back(dsn[i++]);
  };
  auto skip_unquoted_word = [&](std::size_t from) {
    while (from < n && !is_space(dsn[from])) from += (dsn[from] == '\\' && from + 1 < n) ? 2 : 1;
    return from;
  };
  while (true) {
    copy_spaces();
    if (i == n) break;
    const std::size_t key_begin = i;
    while (i < n && dsn[i] != '=' && !is_space(dsn[i])) ++i;
    const std::string_view keyword = dsn.substr(key_begin, i - key_begin);
    out.append(keyword);
    copy_spaces();
    if (i == n || dsn[i] != '=') continue;
    out.push_back(dsn[i++]);
    copy_spaces();
    const std::size_t value_begin = i;
    const bool quoted = i < n && dsn[i] == '\'';
    if (quoted) {
      ++i;
      while (i < n && dsn[i] != '\'') i += (dsn[i] == '\\' && i + 1 < n) ? 2 : 1;
      if (i < n) ++i;
    } else {
      i = skip_unquoted_word(i);
      if (is_secret_keyword(keyword)) {
        // An unquoted password with spaces splits into words libpq would quote back in its error:
        // swallow every following word that is not a keyword=value pair.
        while (true) {
          std::size_t j = i;
          while (j < n && is_space(dsn[j])) ++j;
          const std::size_t word_end = skip_unquoted_word(j);
          if (j == n || dsn.substr(j, word_end - j).find('=') != std::string_view::npos) break;
          i = word_end;
        }
      }
    }
    if (is_secret_keyword(keyword)) {
      out.append(k_redacted);
    } else {
      out.append(dsn.substr(value_begin, i - value_begin));
    }
  }
  return out;
}

std::string redact(std::string_view dsn) {
  const auto prefix = uri_prefix_length(dsn);
  return prefix > 0 ? redact_uri(dsn, prefix) : redact_keyword_value(dsn);
}

struct ConninfoDeleter {
  void operator()(PQconninfoOption* options) const { PQconninfoFree(options); }
};
using ConninfoPtr = std::unique_ptr<PQconninfoOption, ConninfoDeleter>;

// libpq's messages end with a newline; ours are single lines.
std::string trim_message(std::string message) {
  while (!message.empty() && (message.back() == '\n' || is_space(message.back()))) message.pop_back();
  return message;
}

struct ParseOutcome {
  ConninfoPtr options;
  std::string error;
};

ParseOutcome conninfo_parse(const std::string& dsn) {
  char* error = nullptr;
  ConninfoPtr options(PQconninfoParse(dsn.c_str(), &error));
  ParseOutcome outcome{std::move(options), {}};
  if (!outcome.options) {
    outcome.error = error != nullptr ? trim_message(error) : "out of memory";
  }
  if (error != nullptr) PQfreemem(error);
  return outcome;
}

std::vector<std::string> split_commas(std::string_view text) {
  std::vector<std::string> parts;
  while (true) {
    const auto comma = text.find(',');
    parts.emplace_back(text.substr(0, comma));
    if (comma == std::string_view::npos) return parts;
    text = text.substr(comma + 1);
  }
}

std::string quoted(std::string_view value) { return "\"" + std::string(value) + "\""; }

Expected<std::uint16_t> parse_port(std::string_view text) {
  if (text.empty()) return k_default_port;  // libpq: an empty entry means the default
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value < 1 || value > 65535) {
    return make_error("invalid port number: " + quoted(text));
  }
  return static_cast<std::uint16_t>(value);
}

Expected<void> fill_hosts_and_ports(Dsn& dsn) {
  const auto value = [&](const char* key) -> std::string {
    const auto it = dsn.all.find(key);
    return it == dsn.all.end() ? std::string() : it->second;
  };
  std::string hosts = value("host");
  if (hosts.empty()) hosts = value("hostaddr");
  dsn.hosts = split_commas(hosts);
  for (auto& host : dsn.hosts) {
    if (host.empty()) host = DEFAULT_PGSOCKET_DIR;
  }
  dsn.ports.clear();
  for (const auto& text : split_commas(value("port"))) {
    auto port = parse_port(text);
    if (!port) return port.error();
    dsn.ports.push_back(*port);
  }
  if (dsn.ports.size() > 1 && dsn.ports.size() != dsn.hosts.size()) {
    return make_error("could not match " + std::to_string(dsn.ports.size()) + " port numbers to " +
                      std::to_string(dsn.hosts.size()) + " hosts");
  }
  return {};
}

template <std::size_t N>
bool one_of(std::string_view value, const std::string_view (&allowed)[N]) {
  return std::find(std::begin(allowed), std::end(allowed), value) != std::end(allowed);
}

Expected<Dsn> build(const PQconninfoOption* options) {
  Dsn dsn;
  for (const auto* option = options; option->keyword != nullptr; ++option) {
    if (option->val != nullptr && option->val[0] != '\0') dsn.all.emplace(option->keyword, option->val);
  }
  const auto take = [&](const char* key, std::string fallback = {}) {
    const auto it = dsn.all.find(key);
    return it == dsn.all.end() ? fallback : it->second;
  };
  if (auto filled = fill_hosts_and_ports(dsn); !filled) return filled.error();
  dsn.dbname = take("dbname");
  dsn.user = take("user");
  dsn.password = take("password");
  dsn.sslmode = take("sslmode", "prefer");
  if (!one_of(dsn.sslmode, k_sslmodes)) return make_error("invalid sslmode value: " + quoted(dsn.sslmode));
  dsn.sslrootcert = take("sslrootcert");
  dsn.sslcert = take("sslcert");
  dsn.sslkey = take("sslkey");
  dsn.application_name = take("application_name");
  dsn.options = take("options");
  dsn.target_session_attrs = take("target_session_attrs", "any");
  if (!one_of(dsn.target_session_attrs, k_session_attrs)) {
    return make_error("invalid target_session_attrs value: " + quoted(dsn.target_session_attrs));
  }
  if (const auto timeout = take("connect_timeout"); !timeout.empty()) {
    int seconds = 0;
    const auto [end, ec] = std::from_chars(timeout.data(), timeout.data() + timeout.size(), seconds);
    if (ec != std::errc{} || end != timeout.data() + timeout.size() || seconds < 0) {
      return make_error("invalid integer value " + quoted(timeout) + " for connection option \"connect_timeout\"");
    }
    dsn.connect_timeout_seconds = seconds;
  }
  return dsn;
}

}  // namespace

Expected<Dsn> parse_dsn(std::string_view text) {
  const std::string dsn(text);
  auto parsed = conninfo_parse(dsn);
  if (parsed.options) return build(parsed.options.get());

  // libpq quotes pieces of its input back (a badly percent-encoded password, a word of an unquoted one), so
  // the message that is reported comes from a copy whose secrets are replaced.
  const std::string redacted = redact(dsn);
  if (redacted == dsn) return make_error(parsed.error);
  auto retry = conninfo_parse(redacted);
  if (!retry.options) return make_error(retry.error);
  return make_error(
      "the password in the dsn is malformed (in a URI, percent-encode special characters; "
      "in key=value form, quote a value that contains spaces)");
}

}  // namespace pgweir::pq
