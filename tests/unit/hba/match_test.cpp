// Rule matching: a matrix of single rules against clients, then whole files for first-match-wins and no match.
#include <doctest/doctest.h>

#include <optional>
#include <string>

#include "pgweir/hba/hba.hpp"

namespace hba = pgweir::hba;

namespace {

hba::IpAddress ip(std::string_view text) {
  auto a = hba::IpAddress::parse(text);
  REQUIRE(a.has_value());
  return *a;
}

hba::ClientInfo tcp(std::string_view address, bool tls = false, std::string_view db = "app",
                    std::string_view user = "alice") {
  hba::ClientInfo c;
  c.is_tls = tls;
  c.address = ip(address);
  c.database = db;
  c.user = user;
  return c;
}

hba::ClientInfo unix_socket(std::string_view db = "app", std::string_view user = "alice") {
  hba::ClientInfo c;
  c.is_unix = true;
  c.database = db;
  c.user = user;
  return c;
}

// The method the file picks for the client, or nullopt when no rule matches.
std::optional<hba::Method> pick(std::string_view text, const hba::ClientInfo& client) {
  const hba::HbaFile file = hba::parse(text);
  REQUIRE_MESSAGE(file.errors.empty(), text, ": ", file.errors.front().message);
  const hba::Rule* rule = hba::match(file, client);
  if (rule == nullptr) return std::nullopt;
  return rule->method;
}

struct Case {
  const char* rule;
  hba::ClientInfo client;
  bool matches;
};

}  // namespace

TEST_CASE("rule matrix: one rule against one client") {
  const Case cases[] = {
      // Connection type: local is the unix socket only; host is any TCP; ssl/nossl split on TLS.
      {"local all all trust", unix_socket(), true},
      {"local all all trust", tcp("127.0.0.1"), false},
      {"host all all all trust", unix_socket(), false},
      {"host all all all trust", tcp("127.0.0.1"), true},
      {"host all all all trust", tcp("127.0.0.1", true), true},
      {"hostssl all all all trust", tcp("127.0.0.1", true), true},
      {"hostssl all all all trust", tcp("127.0.0.1", false), false},
      {"hostssl all all all trust", unix_socket(), false},
      {"hostnossl all all all trust", tcp("127.0.0.1", false), true},
      {"hostnossl all all all trust", tcp("127.0.0.1", true), false},
      {"hostnossl all all all trust", unix_socket(), false},
      {"hostnogssenc all all all trust", tcp("10.0.0.1", true), true},
      {"hostgssenc all all all trust", tcp("10.0.0.1", true), false},  // pgweir never does GSS encryption

      // Database and user lists, keywords and quoting.
      {"local app alice trust", unix_socket("app", "alice"), true},
      {"local app alice trust", unix_socket("App", "alice"), false},  // names are case-sensitive
      {"local app alice trust", unix_socket("app", "bob"), false},
      {"local other,app,third all trust", unix_socket("app"), true},
      {"local other, app all trust", unix_socket("app"), true},
      {"local other,third all trust", unix_socket("app"), false},
      {"local all bob,alice trust", unix_socket("x", "alice"), true},
      {"local all bob,carol trust", unix_socket("x", "alice"), false},
      {"local \"all\" all trust", unix_socket("app"), false},  // quoted: the database literally named all
      {"local \"all\" all trust", unix_socket("all"), true},
      {"local all \"all\" trust", unix_socket("app", "alice"), false},
      {"local all \"all\" trust", unix_socket("app", "all"), true},
      {"local \"my db\" \"Mixed User\" trust", unix_socket("my db", "Mixed User"), true},
      {"local \"a,b\" all trust", unix_socket("a,b"), true},  // a quoted comma is part of the name
      {"local \"a,b\" all trust", unix_socket("a"), false},
      {"local replication all trust", unix_socket("replication"), false},  // keyword: replication only
      {"local \"replication\" all trust", unix_socket("replication"), true},
      {"local all \"+admins\" trust", unix_socket("app", "+admins"), true},  // quoted: a plain name

      // IPv4 CIDR boundaries.
      {"host all all 0.0.0.0/0 trust", tcp("203.0.113.9"), true},
      {"host all all 0.0.0.0/0 trust", tcp("::1"), false},  // an IPv4 rule never matches an IPv6 client
      {"host all all 10.1.2.3/32 trust", tcp("10.1.2.3"), true},
      {"host all all 10.1.2.3/32 trust", tcp("10.1.2.4"), false},
      {"host all all 10.1.2.3/32 trust", tcp("10.1.2.2"), false},
      {"host all all 192.168.1.0/24 trust", tcp("192.168.1.0"), true},
      {"host all all 192.168.1.0/24 trust", tcp("192.168.1.255"), true},
      {"host all all 192.168.1.0/24 trust", tcp("192.168.0.255"), false},
      {"host all all 192.168.1.0/24 trust", tcp("192.168.2.0"), false},
      {"host all all 10.0.0.0/8 trust", tcp("10.255.255.255"), true},
      {"host all all 10.0.0.0/8 trust", tcp("11.0.0.0"), false},
      {"host all all 172.16.0.0/12 trust", tcp("172.31.255.255"), true},
      {"host all all 172.16.0.0/12 trust", tcp("172.32.0.0"), false},
      {"host all all 10.1.2.99/24 trust", tcp("10.1.2.7"), true},  // host bits in the rule are masked off

      // IPv6.
      {"host all all ::1/128 trust", tcp("::1"), true},
      {"host all all ::1/128 trust", tcp("::2"), false},
      {"host all all ::1/128 trust", tcp("127.0.0.1"), false},
      {"host all all 2001:db8:1:2::/64 trust", tcp("2001:db8:1:2:ffff:ffff:ffff:ffff"), true},
      {"host all all 2001:db8:1:2::/64 trust", tcp("2001:db8:1:3::"), false},
      {"host all all ::/0 trust", tcp("2001:db8::1"), true},
      {"host all all ::/0 trust", tcp("10.0.0.1"), false},  // an IPv6 rule never matches an IPv4 client
      {"host all all fe80::/10 trust", tcp("febf::1"), true},
      {"host all all fe80::/10 trust", tcp("fec0::1"), false},
      // A dual-stack listener reports IPv4 peers as v4-mapped; they are IPv4 clients.
      {"host all all 10.0.0.0/8 trust", tcp("::ffff:10.9.8.7"), true},
      {"host all all ::ffff:0:0/96 trust", tcp("::ffff:10.9.8.7"), false},

      // Address and a separate mask column.
      {"host all all 192.168.0.0 255.255.0.0 trust", tcp("192.168.200.1"), true},
      {"host all all 192.168.0.0 255.255.0.0 trust", tcp("192.169.0.1"), false},
      {"host all all 10.0.0.1 255.255.255.255 trust", tcp("10.0.0.1"), true},
      {"host all all 10.0.0.1 255.255.255.255 trust", tcp("10.0.0.2"), false},
      {"host all all 2001:db8:: ffff:ffff:: trust", tcp("2001:db8:abcd::1"), true},
      {"host all all 2001:db8:: ffff:ffff:: trust", tcp("2001:db9::1"), false},
  };
  for (const Case& c : cases) {
    CAPTURE(c.rule);
    CAPTURE(c.client.database);
    CAPTURE(c.client.user);
    CHECK(pick(c.rule, c.client).has_value() == c.matches);
  }
}

TEST_CASE("a TCP client without a known address matches only 'all' address rules") {
  hba::ClientInfo c = tcp("10.0.0.1");
  c.address.reset();
  CHECK(pick("host all all all md5", c) == hba::Method::md5);
  CHECK(pick("host all all 0.0.0.0/0 md5", c) == std::nullopt);
}

TEST_CASE("methods come through as written") {
  const auto client = tcp("10.0.0.1", true);
  CHECK(pick("host all all all trust", client) == hba::Method::trust);
  CHECK(pick("host all all all reject", client) == hba::Method::reject);
  CHECK(pick("host all all all md5", client) == hba::Method::md5);
  CHECK(pick("host all all all scram-sha-256", client) == hba::Method::scram_sha_256);
  CHECK(pick("hostssl all all all cert", client) == hba::Method::cert);
}

TEST_CASE("first matching rule wins; no match gives nullptr") {
  const std::string text =
      "# TYPE  DATABASE  USER   ADDRESS        METHOD\n"
      "local   all       all                   trust\n"
      "host    all       evil   0.0.0.0/0      reject\n"
      "hostssl app       all    10.0.0.0/8     cert\n"
      "host    app       all    10.0.0.0/8     scram-sha-256\n"
      "host    all       all    10.1.0.0/16    md5\n"
      "host    all       all    ::1/128        trust\n";
  const hba::HbaFile file = hba::parse(text);
  REQUIRE(file.errors.empty());
  REQUIRE(file.rules.size() == 6);

  const auto line_of = [&](const hba::ClientInfo& c) {
    const hba::Rule* r = hba::match(file, c);
    return r == nullptr ? 0 : r->line;
  };
  CHECK(line_of(unix_socket("app", "evil")) == 2);           // local is checked before the reject
  CHECK(line_of(tcp("10.1.2.3", true, "app", "evil")) == 3);  // reject beats the later allowing rules
  CHECK(line_of(tcp("10.1.2.3", true, "app", "alice")) == 4);
  CHECK(line_of(tcp("10.1.2.3", false, "app", "alice")) == 5);  // no TLS: falls past hostssl
  CHECK(line_of(tcp("10.1.2.3", false, "other", "alice")) == 6);  // the /16 md5 rule, not the app rules
  CHECK(line_of(tcp("::1", false, "other", "alice")) == 7);
  CHECK(line_of(tcp("192.168.1.1", false, "app", "alice")) == 0);
  CHECK(line_of(tcp("::2", true, "app", "alice")) == 0);

  // Swapping two overlapping rules changes the answer: order is the policy.
  const std::string swapped =
      "host all all 10.0.0.0/8 md5\n"
      "host all all 10.1.0.0/16 reject\n";
  CHECK(pick(swapped, tcp("10.1.0.1")) == hba::Method::md5);
  CHECK(pick("host all all 10.1.0.0/16 reject\nhost all all 10.0.0.0/8 md5\n", tcp("10.1.0.1")) ==
        hba::Method::reject);
  CHECK(pick("", tcp("10.1.0.1")) == std::nullopt);
}

TEST_CASE("clientcert and clientname options are kept for the caller to enforce") {
  const hba::HbaFile file = hba::parse(
      "hostssl all all all md5 clientcert=verify-ca\n"
      "hostssl all all all scram-sha-256 clientcert=verify-full clientname=DN\n"
      "hostssl all all all cert\n"
      "hostssl all all all md5\n"
      "hostssl all all all cert clientcert=verify-full,clientname=CN\n");
  REQUIRE(file.errors.empty());
  REQUIRE(file.rules.size() == 5);
  CHECK(file.rules[0].client_cert == hba::ClientCert::verify_ca);
  CHECK(file.rules[1].client_cert == hba::ClientCert::verify_full);
  CHECK(file.rules[1].client_name == hba::ClientName::dn);
  CHECK(file.rules[2].client_cert == hba::ClientCert::verify_full);  // implied by cert
  CHECK(file.rules[2].client_name == hba::ClientName::cn);
  CHECK(file.rules[3].client_cert == hba::ClientCert::none);
  CHECK(file.rules[4].client_cert == hba::ClientCert::verify_full);
}

TEST_CASE("IpAddress parsing") {
  CHECK(hba::IpAddress::parse("127.0.0.1") == hba::IpAddress::v4({127, 0, 0, 1}));
  CHECK(hba::IpAddress::parse("::1") ==
        hba::IpAddress::v6({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}));
  CHECK_FALSE(hba::IpAddress::parse("").has_value());
  CHECK_FALSE(hba::IpAddress::parse("256.0.0.1").has_value());
  CHECK_FALSE(hba::IpAddress::parse("localhost").has_value());
  CHECK_FALSE(hba::IpAddress::parse(std::string_view("1.2.3.4\0", 8)).has_value());
  CHECK_FALSE(hba::IpAddress::parse(std::string(100, '1')).has_value());
}
