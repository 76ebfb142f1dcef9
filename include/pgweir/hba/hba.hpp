// hba: the pg_hba.conf format for auth.method = "hba". Parsing and rule matching only, no I/O.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pgweir::hba {

// hostgssenc rules never match (pgweir answers GSSENCRequest with 'N'); hostnogssenc matches any TCP client.
enum class ConnType { local, host, hostssl, hostnossl, hostgssenc, hostnogssenc };

// Only the methods pgweir can carry out. "password" (cleartext) and PostgreSQL's external methods (peer, ident,
// ldap, gss, …) are load errors: silently mapping them onto something else would change who gets in.
enum class Method { trust, reject, md5, scram_sha_256, cert };

// clientcert=… on a hostssl rule. The caller must enforce it: ignoring it would let clients without a
// certificate in. Method::cert always implies verify_full, as in PostgreSQL.
enum class ClientCert { none, verify_ca, verify_full };
// clientname=…: which part of the client certificate must equal the user name (cert, clientcert=verify-full).
enum class ClientName { cn, dn };

// One entry of a database or user list. `all` (and `replication` for databases) are keywords only unquoted.
struct Name {
  enum class Kind { literal, all, replication };
  Kind kind = Kind::literal;
  std::string text;  // the name, for literals
};

// An IPv4 or IPv6 address in network byte order. IPv4 uses the first four bytes.
struct IpAddress {
  bool is_v6 = false;
  std::array<std::uint8_t, 16> bytes{};

  static IpAddress v4(const std::array<std::uint8_t, 4>& b);
  static IpAddress v6(const std::array<std::uint8_t, 16>& b);
  // Numeric text only ("10.0.0.1", "::1"); no host names.
  static std::optional<IpAddress> parse(std::string_view text);
  bool operator==(const IpAddress&) const = default;
};

// The address column of a host* rule: `all`, or an address with a mask (from /bits or a mask column).
struct AddressMatch {
  bool any = false;
  IpAddress address;
  IpAddress mask;
};

struct Rule {
  int line = 0;
  ConnType type = ConnType::local;
  std::vector<Name> databases;
  std::vector<Name> users;
  AddressMatch address;  // unused for local rules
  Method method = Method::reject;
  ClientCert client_cert = ClientCert::none;
  ClientName client_name = ClientName::cn;
};

struct LoadError {
  int line = 0;
  int column = 0;  // 1-based byte column of the offending token
  std::string message;
};

struct HbaFile {
  std::vector<Rule> rules;
  // A file with any error must not be used at all (PostgreSQL refuses it too): skipping one bad `reject`
  // line would let through clients it was written to stop.
  std::vector<LoadError> errors;
};

// Parses pg_hba.conf text as PostgreSQL 15 does for the subset pgweir supports: whitespace-separated fields,
// comma-separated name lists, double quotes (a quoted keyword is a plain name), `#` comments. Lines that do not
// parse are reported and left out. Unsupported features (sameuser/samerole, +group, @file, host names,
// samehost/samenet, pg_ident maps, unsupported methods, backslash continuation) are errors that say so.
HbaFile parse(std::string_view text);

struct ClientInfo {
  bool is_unix = false;
  bool is_tls = false;
  // The peer address of a TCP client. A v4-mapped IPv6 address (dual-stack listener) counts as the IPv4 client
  // it is, as PostgreSQL would see it on its own IPv4 socket; IPv4 clients never match IPv6 rules.
  std::optional<IpAddress> address;
  std::string_view database;
  std::string_view user;
};

// The first rule that matches, or nullptr: no rule matches, and the caller rejects the client.
const Rule* match(const HbaFile& file, const ClientInfo& client);

std::string_view to_string(Method method);
std::string_view to_string(ConnType type);

}  // namespace pgweir::hba
