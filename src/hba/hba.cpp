// hba: tokenizes pg_hba.conf lines into rules with line:column errors, and picks the first rule that
// matches a client. Pure: no files, sockets or name resolution.
#include "pgweir/hba/hba.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace pgweir::hba {

namespace {

struct Token {
  std::string text;
  bool quoted = false;
  int column = 0;
};
using Field = std::vector<Token>;  // a comma-separated list

struct LineError {
  int column;
  std::string message;
};

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

std::string quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

// Splits one line into fields. Quotes may open and close anywhere inside a token, as in PostgreSQL; an unquoted
// comma continues the same field, so "a, b" is one list. `end_column` is where a missing field would have started.
std::optional<LineError> tokenize(std::string_view line, std::vector<Field>& fields, int& end_column) {
  std::size_t i = 0;
  const auto skip_blanks = [&] {
    while (i < line.size() && is_blank(line[i])) ++i;
  };
  const auto at_end = [&] { return i >= line.size() || line[i] == '#'; };

  skip_blanks();
  while (!at_end()) {
    Field field;
    for (;;) {
      Token token;
      token.column = static_cast<int>(i) + 1;
      bool in_quote = false;
      std::size_t quote_at = 0;
      bool comma = false;
      for (; i < line.size(); ++i) {
        const char c = line[i];
        if (c == '"') {
          in_quote = !in_quote;
          token.quoted = true;
          quote_at = i;
          continue;
        }
        if (in_quote) {
          token.text.push_back(c);
          continue;
        }
        if (is_blank(c) || c == '#') break;
        if (c == ',') {
          comma = true;
          ++i;
          break;
        }
        token.text.push_back(c);
      }
      if (in_quote) return LineError{static_cast<int>(quote_at) + 1, "unterminated quoted string"};
      if (token.text.empty() && !token.quoted) return LineError{token.column, "empty name in a list"};
      field.push_back(std::move(token));
      if (!comma) break;
      skip_blanks();
      if (at_end()) return LineError{static_cast<int>(i) + 1, "list ends with ','"};
    }
    fields.push_back(std::move(field));
    end_column = static_cast<int>(i) + 2;
    skip_blanks();
  }
  return std::nullopt;
}

bool is_keyword(const Token& t, std::string_view word) { return !t.quoted && t.text == word; }

std::optional<LineError> single(const Field& field, std::string_view what) {
  if (field.size() > 1) {
    return LineError{field[1].column, "more than one " + std::string(what) + " given; only one is allowed here"};
  }
  return std::nullopt;
}

std::optional<LineError> parse_type(const Field& field, ConnType& type) {
  if (auto e = single(field, "connection type")) return e;
  const Token& t = field[0];
  struct Entry {
    std::string_view name;
    ConnType type;
  };
  static constexpr Entry k_types[] = {
      {"local", ConnType::local},         {"host", ConnType::host},
      {"hostssl", ConnType::hostssl},     {"hostnossl", ConnType::hostnossl},
      {"hostgssenc", ConnType::hostgssenc}, {"hostnogssenc", ConnType::hostnogssenc},
  };
  for (const auto& e : k_types) {
    if (t.text == e.name) {
      type = e.type;
      return std::nullopt;
    }
  }
  return LineError{t.column, "unknown connection type " + quote(t.text) +
                                 " (expected local, host, hostssl, hostnossl, hostgssenc or hostnogssenc)"};
}

std::optional<LineError> parse_databases(const Field& field, std::vector<Name>& out) {
  for (const Token& t : field) {
    if (is_keyword(t, "all")) {
      out.push_back({Name::Kind::all, {}});
    } else if (is_keyword(t, "replication")) {
      out.push_back({Name::Kind::replication, {}});
    } else if (is_keyword(t, "sameuser") || is_keyword(t, "samerole") || is_keyword(t, "samegroup")) {
      return LineError{t.column, "database keyword " + quote(t.text) +
                                     " is not supported by pgweir; list the database names instead"};
    } else if (!t.quoted && t.text.starts_with('@')) {
      return LineError{t.column, "file inclusion " + quote(t.text) + " is not supported by pgweir; list the names"};
    } else {
      out.push_back({Name::Kind::literal, t.text});
    }
  }
  return std::nullopt;
}

std::optional<LineError> parse_users(const Field& field, std::vector<Name>& out) {
  for (const Token& t : field) {
    if (is_keyword(t, "all")) {
      out.push_back({Name::Kind::all, {}});
    } else if (!t.quoted && t.text.starts_with('+')) {
      return LineError{t.column, "group membership " + quote(t.text) +
                                     " is not supported by pgweir; list the user names instead"};
    } else if (!t.quoted && t.text.starts_with('@')) {
      return LineError{t.column, "file inclusion " + quote(t.text) + " is not supported by pgweir; list the names"};
    } else {
      out.push_back({Name::Kind::literal, t.text});
    }
  }
  return std::nullopt;
}

// Anything built only of host-name characters and not an address is taken for a host name, so the error can
// say what is unsupported instead of calling it a malformed address.
bool looks_like_host_name(std::string_view s) {
  if (s.empty()) return false;
  bool has_alpha = false;
  for (char c : s) {
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    has_alpha = has_alpha || alpha;
    if (!alpha && !(c >= '0' && c <= '9') && c != '-' && c != '.' && c != '_') return false;
  }
  return has_alpha;
}

IpAddress prefix_mask(bool is_v6, int bits) {
  IpAddress mask;
  mask.is_v6 = is_v6;
  for (int i = 0; i < 16 && bits > 0; ++i, bits -= 8) {
    mask.bytes[i] = static_cast<std::uint8_t>(bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff);
  }
  return mask;
}

// Consumes the address field, and the mask field after it when the address has no /bits.
std::optional<LineError> parse_address(const std::vector<Field>& fields, std::size_t& next, AddressMatch& out) {
  const Field& field = fields[next++];
  if (auto e = single(field, "address")) return e;
  const Token& t = field[0];
  if (is_keyword(t, "all")) {
    out.any = true;
    return std::nullopt;
  }
  if (is_keyword(t, "samehost") || is_keyword(t, "samenet")) {
    return LineError{t.column, "address keyword " + quote(t.text) +
                                   " is not supported by pgweir; write the network as an address with a CIDR mask"};
  }
  const std::string_view text = t.text;
  const std::size_t slash = text.find('/');
  const std::string_view host = text.substr(0, slash);
  const auto address = IpAddress::parse(host);
  if (!address) {
    if (looks_like_host_name(host)) {
      if (slash != std::string_view::npos) {
        return LineError{t.column, "a host name cannot have a CIDR mask: " + quote(text)};
      }
      return LineError{t.column, "host name " + quote(text) + " is not supported by pgweir (no DNS lookups); " +
                                     "use an IP address with a CIDR mask"};
    }
    return LineError{t.column, "invalid IP address " + quote(host)};
  }
  out.address = *address;

  if (slash != std::string_view::npos) {
    const std::string_view bits_text = text.substr(slash + 1);
    const int max_bits = address->is_v6 ? 128 : 32;
    int bits = -1;
    const auto [end, ec] = std::from_chars(bits_text.data(), bits_text.data() + bits_text.size(), bits);
    const int column = t.column + static_cast<int>(slash) + 1;
    if (bits_text.empty() || ec != std::errc{} || end != bits_text.data() + bits_text.size() || bits < 0 ||
        bits > max_bits) {
      return LineError{column, "invalid CIDR mask " + quote(bits_text) + " (expected 0 to " +
                                   std::to_string(max_bits) + ")"};
    }
    out.mask = prefix_mask(address->is_v6, bits);
    return std::nullopt;
  }

  if (next >= fields.size()) {
    return LineError{t.column, "address " + quote(text) + " needs a CIDR mask (/bits) or a netmask column"};
  }
  const Field& mask_field = fields[next++];
  if (auto e = single(mask_field, "netmask")) return e;
  const Token& m = mask_field[0];
  const auto mask = IpAddress::parse(m.text);
  if (!mask) return LineError{m.column, "invalid IP mask " + quote(m.text)};
  if (mask->is_v6 != address->is_v6) {
    return LineError{m.column, "IP address " + quote(text) + " and mask " + quote(m.text) + " are not the same family"};
  }
  // Like PostgreSQL, a non-contiguous mask is accepted: matching is a bitwise AND either way.
  out.mask = *mask;
  return std::nullopt;
}

std::optional<LineError> parse_method(const Field& field, Method& method) {
  if (auto e = single(field, "authentication method")) return e;
  const Token& t = field[0];
  struct Entry {
    std::string_view name;
    Method method;
  };
  static constexpr Entry k_methods[] = {
      {"trust", Method::trust}, {"reject", Method::reject}, {"md5", Method::md5},
      {"scram-sha-256", Method::scram_sha_256}, {"cert", Method::cert},
  };
  for (const auto& e : k_methods) {
    if (t.text == e.name) {
      method = e.method;
      return std::nullopt;
    }
  }
  if (t.text == "password") {
    return LineError{t.column, "authentication method \"password\" is not supported by pgweir: it does not accept "
                               "cleartext passwords from clients; use scram-sha-256 or md5"};
  }
  static constexpr std::string_view k_external[] = {"gss", "sspi", "ident", "peer", "ldap", "radius", "pam", "bsd"};
  if (std::find(std::begin(k_external), std::end(k_external), t.text) != std::end(k_external)) {
    return LineError{t.column, "authentication method " + quote(t.text) +
                                   " is not supported by pgweir (supported: trust, reject, md5, scram-sha-256, cert)"};
  }
  return LineError{t.column, "unknown authentication method " + quote(t.text)};
}

std::optional<LineError> parse_option(const Token& t, Rule& rule) {
  const std::size_t eq = t.text.find('=');
  if (eq == std::string::npos || eq == 0) {
    return LineError{t.column, "authentication option " + quote(t.text) + " is not in name=value format"};
  }
  const std::string_view name = std::string_view(t.text).substr(0, eq);
  const std::string_view value = std::string_view(t.text).substr(eq + 1);
  const int value_column = t.column + static_cast<int>(eq) + 1;
  if (name == "clientcert" || name == "clientname") {
    if (rule.type != ConnType::hostssl) {
      return LineError{t.column, std::string(name) + " can only be set on hostssl rules"};
    }
  }
  if (name == "clientcert") {
    if (value == "verify-full") {
      rule.client_cert = ClientCert::verify_full;
    } else if (value == "verify-ca") {
      if (rule.method == Method::cert) {
        return LineError{value_column, "clientcert=verify-ca cannot be combined with the cert method, "
                                       "which always verifies the full certificate"};
      }
      rule.client_cert = ClientCert::verify_ca;
    } else {
      return LineError{value_column,
                       "invalid clientcert value " + quote(value) + " (expected verify-ca or verify-full)"};
    }
    return std::nullopt;
  }
  if (name == "clientname") {
    if (value == "CN") {
      rule.client_name = ClientName::cn;
    } else if (value == "DN") {
      rule.client_name = ClientName::dn;
    } else {
      return LineError{value_column, "invalid clientname value " + quote(value) + " (expected CN or DN)"};
    }
    return std::nullopt;
  }
  if (name == "map") {
    return LineError{t.column, "option map= (pg_ident.conf user name maps) is not supported by pgweir"};
  }
  return LineError{t.column, "unknown authentication option " + quote(name) + " for method " +
                                 quote(to_string(rule.method))};
}

std::optional<LineError> parse_line(std::string_view line, int line_number, std::optional<Rule>& out) {
  std::vector<Field> fields;
  int missing_column = 1;
  if (auto e = tokenize(line, fields, missing_column)) return e;
  if (fields.empty()) return std::nullopt;

  // Records cannot continue across lines in PostgreSQL 15; a trailing backslash would otherwise be read as part
  // of the last field and fail with a confusing message, or not at all.
  const Token& last = fields.back().back();
  if (!last.quoted && last.text.ends_with('\\')) {
    return LineError{last.column + static_cast<int>(last.text.size()) - 1,
                     "line continuation with a trailing backslash is not supported; write the rule on one line"};
  }

  Rule rule;
  rule.line = line_number;
  std::size_t next = 0;
  if (auto e = parse_type(fields[next++], rule.type)) return e;
  if (next >= fields.size()) return LineError{missing_column, "missing database name"};
  if (auto e = parse_databases(fields[next++], rule.databases)) return e;
  if (next >= fields.size()) return LineError{missing_column, "missing user name"};
  if (auto e = parse_users(fields[next++], rule.users)) return e;
  if (rule.type != ConnType::local) {
    if (next >= fields.size()) return LineError{missing_column, "missing IP address"};
    if (auto e = parse_address(fields, next, rule.address)) return e;
  }
  if (next >= fields.size()) return LineError{missing_column, "missing authentication method"};
  if (auto e = parse_method(fields[next++], rule.method)) return e;
  if (rule.method == Method::cert) {
    if (rule.type != ConnType::hostssl) {
      return LineError{fields[next - 1][0].column, "cert authentication is only supported on hostssl rules"};
    }
    rule.client_cert = ClientCert::verify_full;
  }
  for (; next < fields.size(); ++next) {
    for (const Token& t : fields[next]) {
      if (auto e = parse_option(t, rule)) return e;
    }
  }
  out = std::move(rule);
  return std::nullopt;
}

bool names_match(const std::vector<Name>& names, std::string_view value) {
  return std::any_of(names.begin(), names.end(), [&](const Name& n) {
    switch (n.kind) {
      case Name::Kind::all:
        return true;
      case Name::Kind::replication:
        return false;  // pgweir does not proxy replication connections
      case Name::Kind::literal:
        return n.text == value;
    }
    return false;
  });
}

bool type_matches(ConnType type, const ClientInfo& client) {
  switch (type) {
    case ConnType::local:
      return client.is_unix;
    case ConnType::host:
    case ConnType::hostnogssenc:
      return !client.is_unix;
    case ConnType::hostssl:
      return !client.is_unix && client.is_tls;
    case ConnType::hostnossl:
      return !client.is_unix && !client.is_tls;
    case ConnType::hostgssenc:
      return false;
  }
  return false;
}

IpAddress unmap_v4(const IpAddress& a) {
  static constexpr std::uint8_t k_v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (!a.is_v6 || std::memcmp(a.bytes.data(), k_v4_mapped_prefix, 12) != 0) return a;
  return IpAddress::v4({a.bytes[12], a.bytes[13], a.bytes[14], a.bytes[15]});
}

bool address_matches(const AddressMatch& rule, const std::optional<IpAddress>& client) {
  if (rule.any) return true;
  if (!client) return false;
  const IpAddress addr = unmap_v4(*client);
  if (addr.is_v6 != rule.address.is_v6) return false;
  const std::size_t n = addr.is_v6 ? 16 : 4;
  for (std::size_t i = 0; i < n; ++i) {
    if ((addr.bytes[i] & rule.mask.bytes[i]) != (rule.address.bytes[i] & rule.mask.bytes[i])) return false;
  }
  return true;
}

}  // namespace

IpAddress IpAddress::v4(const std::array<std::uint8_t, 4>& b) {
  IpAddress a;
  std::copy(b.begin(), b.end(), a.bytes.begin());
  return a;
}

IpAddress IpAddress::v6(const std::array<std::uint8_t, 16>& b) {
  IpAddress a;
  a.is_v6 = true;
  a.bytes = b;
  return a;
}

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  // inet_pton needs a terminated string; anything longer than the longest IPv6 text is not an address.
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  char buf[INET6_ADDRSTRLEN] = {};
  std::memcpy(buf, text.data(), text.size());
  if (std::memchr(buf, '\0', text.size()) != nullptr) return std::nullopt;
  IpAddress a;
  if (::inet_pton(AF_INET, buf, a.bytes.data()) == 1) return a;
  a.is_v6 = true;
  if (::inet_pton(AF_INET6, buf, a.bytes.data()) == 1) return a;
  return std::nullopt;
}

HbaFile parse(std::string_view text) {
  HbaFile file;
  int line_number = 0;
  for (std::size_t start = 0;;) {
    ++line_number;
    const std::size_t nl = text.find('\n', start);
    const std::string_view line = text.substr(start, nl == std::string_view::npos ? nl : nl - start);
    std::optional<Rule> rule;
    if (auto e = parse_line(line, line_number, rule)) {
      file.errors.push_back({line_number, e->column, std::move(e->message)});
    } else if (rule) {
      file.rules.push_back(std::move(*rule));
    }
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  return file;
}

const Rule* match(const HbaFile& file, const ClientInfo& client) {
  for (const Rule& rule : file.rules) {
    if (!type_matches(rule.type, client)) continue;
    if (rule.type != ConnType::local && !address_matches(rule.address, client.address)) continue;
    if (!names_match(rule.databases, client.database)) continue;
    if (!names_match(rule.users, client.user)) continue;
    return &rule;
  }
  return nullptr;
}

std::string_view to_string(Method method) {
  switch (method) {
    case Method::trust:
      return "trust";
    case Method::reject:
      return "reject";
    case Method::md5:
      return "md5";
    case Method::scram_sha_256:
      return "scram-sha-256";
    case Method::cert:
      return "cert";
  }
  return "unknown";
}

std::string_view to_string(ConnType type) {
  switch (type) {
    case ConnType::local:
      return "local";
    case ConnType::host:
      return "host";
    case ConnType::hostssl:
      return "hostssl";
    case ConnType::hostnossl:
      return "hostnossl";
    case ConnType::hostgssenc:
      return "hostgssenc";
    case ConnType::hostnogssenc:
      return "hostnogssenc";
  }
  return "unknown";
}

}  // namespace pgweir::hba
