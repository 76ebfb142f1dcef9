// Parsing pg_hba.conf text: fields, comments, quoting, and errors with line and column for each kind of mistake;
// random lines never crash the parser.
#include <doctest/doctest.h>

#include <random>
#include <string>

#include "pgweir/hba/hba.hpp"

namespace hba = pgweir::hba;

namespace {

// Parses one bad line (as line 2 after a good one) and returns its single error.
hba::LoadError error_of(std::string_view bad_line) {
  const std::string text = "local all all trust\n" + std::string(bad_line) + "\n";
  const hba::HbaFile file = hba::parse(text);
  INFO(bad_line);
  REQUIRE(file.errors.size() == 1);
  CHECK(file.rules.size() == 1);  // the good line is kept, the bad one left out
  CHECK(file.errors[0].line == 2);
  return file.errors[0];
}

void check_error(std::string_view bad_line, int column, std::string_view fragment) {
  const hba::LoadError e = error_of(bad_line);
  INFO(bad_line, " -> ", e.column, ": ", e.message);
  CHECK(e.column == column);
  CHECK(e.message.find(fragment) != std::string::npos);
}

}  // namespace

TEST_CASE("fields, comments, blank lines and whitespace") {
  const hba::HbaFile file = hba::parse(
      "# a comment\n"
      "\n"
      "   \t  \n"
      "local   all   all   trust   # trailing comment\n"
      "\thost\tapp,\"Other DB\"\tbob,\"carol\"\t10.0.0.0/8\tmd5\r\n"
      "host all all 192.168.0.0 255.255.0.0 scram-sha-256\n"
      "host all all#comment right after a field\n"
      "hostssl all all ::1/128 cert");  // no final newline
  INFO((file.errors.empty() ? std::string() : file.errors[0].message));
  // Line 7 loses its address to the comment.
  REQUIRE(file.errors.size() == 1);
  CHECK(file.errors[0].line == 7);
  CHECK(file.errors[0].message.find("missing IP address") != std::string::npos);

  REQUIRE(file.rules.size() == 4);
  const hba::Rule& local = file.rules[0];
  CHECK(local.line == 4);
  CHECK(local.type == hba::ConnType::local);
  REQUIRE(local.databases.size() == 1);
  CHECK(local.databases[0].kind == hba::Name::Kind::all);
  CHECK(local.method == hba::Method::trust);

  const hba::Rule& host = file.rules[1];
  CHECK(host.line == 5);
  CHECK(host.type == hba::ConnType::host);
  REQUIRE(host.databases.size() == 2);
  CHECK(host.databases[0].text == "app");
  CHECK(host.databases[1].kind == hba::Name::Kind::literal);
  CHECK(host.databases[1].text == "Other DB");
  REQUIRE(host.users.size() == 2);
  CHECK(host.users[1].text == "carol");
  CHECK_FALSE(host.address.any);
  CHECK(host.address.address == hba::IpAddress::v4({10, 0, 0, 0}));
  CHECK(host.address.mask == hba::IpAddress::v4({255, 0, 0, 0}));
  CHECK(host.method == hba::Method::md5);

  CHECK(file.rules[2].address.mask == hba::IpAddress::v4({255, 255, 0, 0}));
  CHECK(file.rules[2].method == hba::Method::scram_sha_256);
  CHECK(file.rules[3].line == 8);
  CHECK(file.rules[3].address.address.is_v6);
  CHECK(file.rules[3].method == hba::Method::cert);
}

TEST_CASE("empty text and comment-only text give no rules and no errors") {
  for (const char* text : {"", "\n", "# only\n#comments\n", "\n\n\n"}) {
    const hba::HbaFile file = hba::parse(text);
    CHECK(file.rules.empty());
    CHECK(file.errors.empty());
  }
}

TEST_CASE("line numbers count every line, including blank and comment lines") {
  const hba::HbaFile file = hba::parse("\n# c\n\nlocal all all trust\n\nbogus all all trust\n");
  REQUIRE(file.rules.size() == 1);
  CHECK(file.rules[0].line == 4);
  REQUIRE(file.errors.size() == 1);
  CHECK(file.errors[0].line == 6);
  CHECK(file.errors[0].column == 1);
}

TEST_CASE("errors: connection type") {
  check_error("hots all all all trust", 1, "unknown connection type \"hots\"");
  check_error("  HOST all all all trust", 3, "unknown connection type");  // keywords are case-sensitive
  check_error("local,host all all trust", 7, "only one is allowed");
}

TEST_CASE("errors: missing fields") {
  check_error("local", 7, "missing database name");
  check_error("local all", 11, "missing user name");
  check_error("local all all", 15, "missing authentication method");
  check_error("local all all   # comment", 15, "missing authentication method");
  check_error("host all all", 14, "missing IP address");
  check_error("host all all all", 18, "missing authentication method");
  check_error("host all all 10.0.0.0 255.0.0.0", 33, "missing authentication method");
  check_error("host all all 10.0.0.0 trust", 23, "invalid IP mask \"trust\"");
  check_error("host all all 10.0.0.0", 14, "needs a CIDR mask");
}

TEST_CASE("errors: addresses and CIDR masks") {
  check_error("host all all 10.0.0.0/33 trust", 23, "invalid CIDR mask \"33\"");
  check_error("host all all 10.0.0.0/-1 trust", 23, "invalid CIDR mask");
  check_error("host all all 10.0.0.0/ trust", 23, "invalid CIDR mask");
  check_error("host all all 10.0.0.0/8x trust", 23, "invalid CIDR mask");
  check_error("host all all ::1/129 trust", 18, "expected 0 to 128");
  check_error("host all all 10.0.0.256/8 trust", 14, "invalid IP address \"10.0.0.256\"");
  check_error("host all all 10.0.0/8 trust", 14, "invalid IP address");
  check_error("host all all :::1/128 trust", 14, "invalid IP address");
  check_error("host all all 10.0.0.0/8,::1/128 trust", 25, "only one is allowed");
}

TEST_CASE("errors: netmask column") {
  check_error("host all all 192.168.0.0 255.255.0 trust", 26, "invalid IP mask \"255.255.0\"");
  check_error("host all all 192.168.0.0 ffff:: trust", 26, "not the same family");
  check_error("host all all ::1 255.255.255.255 trust", 18, "not the same family");
}

TEST_CASE("errors: unsupported features say so") {
  check_error("host all all db.example.com md5", 14, "host name \"db.example.com\" is not supported");
  check_error("host all all .example.com md5", 14, "host name");
  check_error("host all all localhost md5", 14, "no DNS lookups");
  check_error("host all all \"all\" md5", 14, "host name");  // quoted all is a host called all
  check_error("host all all example.com/24 md5", 14, "host name cannot have a CIDR mask");
  check_error("host all all samehost md5", 14, "\"samehost\" is not supported");
  check_error("host all all samenet md5", 14, "\"samenet\" is not supported");
  check_error("local sameuser all md5", 7, "\"sameuser\" is not supported");
  check_error("local app,samerole all md5", 11, "\"samerole\" is not supported");
  check_error("local samegroup all md5", 7, "not supported");
  check_error("local all +admins md5", 11, "group membership \"+admins\" is not supported");
  check_error("local all alice,+admins md5", 17, "group membership");
  check_error("local @dbs.txt all md5", 7, "file inclusion");
  check_error("local all @users.txt md5", 11, "file inclusion");
  check_error("local all all password", 15, "cleartext");
  check_error("local all all peer", 15, "\"peer\" is not supported by pgweir");
  check_error("host all all all ldap ldapserver=x", 18, "\"ldap\" is not supported");
  check_error("host all all all md5 map=m", 22, "map= (pg_ident.conf");
  check_error("local all all md5 \\", 19, "line continuation");
  check_error("local all all \\", 15, "line continuation");
}

TEST_CASE("errors: methods and options") {
  check_error("local all all md6", 15, "unknown authentication method \"md6\"");
  check_error("local all all SCRAM-SHA-256", 15, "unknown authentication method");
  check_error("local all all md5,trust", 19, "only one is allowed");
  check_error("host all all all cert", 18, "only supported on hostssl");
  check_error("local all all cert", 15, "only supported on hostssl");
  check_error("hostssl all all all cert clientcert=verify-ca", 37, "cannot be combined");
  check_error("hostssl all all all md5 clientcert=1", 36, "invalid clientcert value \"1\"");
  check_error("host all all all md5 clientcert=verify-full", 22, "only be set on hostssl");
  check_error("hostssl all all all md5 clientname=UID", 36, "invalid clientname value");
  check_error("hostssl all all all md5 frobnicate=1", 25, "unknown authentication option \"frobnicate\"");
  check_error("hostssl all all all md5 verify-full", 25, "not in name=value format");
  check_error("hostssl all all all md5 =x", 25, "not in name=value format");
}

TEST_CASE("errors: quoting and lists") {
  check_error("local \"app all trust", 7, "unterminated quoted string");
  check_error("local all \"a\"\"b trust", 14, "unterminated quoted string");
  check_error("local app,,b all trust", 11, "empty name");
  check_error("local \"a#b\" all", 17, "missing authentication method");  // a quoted # is not a comment
  // A blank after a comma does not end the list: "all" joins the databases, "trust" becomes the user.
  check_error("local app, all trust", 22, "missing authentication method");
  check_error("local all all,", 15, "list ends with ','");
}

TEST_CASE("quoted names keep spaces, commas, # and keyword spellings") {
  const hba::HbaFile file = hba::parse("local \"a b\",\"c,d\",\"e#f\",\"all\",\"\" \"sameuser\" trust\n");
  REQUIRE(file.errors.empty());
  REQUIRE(file.rules.size() == 1);
  const auto& dbs = file.rules[0].databases;
  REQUIRE(dbs.size() == 5);
  CHECK(dbs[0].text == "a b");
  CHECK(dbs[1].text == "c,d");
  CHECK(dbs[2].text == "e#f");
  CHECK(dbs[3].kind == hba::Name::Kind::literal);
  CHECK(dbs[3].text == "all");
  CHECK(dbs[4].text.empty());
  CHECK(file.rules[0].users[0].text == "sameuser");
}

TEST_CASE("every bad line is reported, not only the first") {
  const hba::HbaFile file = hba::parse("bogus\nlocal all all md6\nlocal all all trust\nhost all all x/1 md5\n");
  REQUIRE(file.errors.size() == 3);
  CHECK(file.errors[0].line == 1);
  CHECK(file.errors[1].line == 2);
  CHECK(file.errors[2].line == 4);
  CHECK(file.rules.size() == 1);
}

TEST_CASE("10k random lines never crash the parser or the matcher") {
  std::mt19937 rng(0x5eed);
  static constexpr std::string_view k_words[] = {
      "local", "host", "hostssl", "hostnossl", "hostgssenc", "all", "replication", "sameuser", "+g", "@f",
      "app", "\"q\"", "\"", ",", ",,", "10.0.0.0/8", "::1/128", "10.0.0.0", "255.0.0.0", "/", "/33", "0.0.0.0/0",
      "trust", "reject", "md5", "scram-sha-256", "cert", "password", "clientcert=verify-ca", "clientname=DN",
      "map=x", "=", "#", "\\", "\t", " ", "  ", "fe80::/10", "example.com", "ffff::", "\r"};
  static constexpr std::string_view k_alphabet = "ab \t,\"#/.:0123456789\\=+@\r\xff";
  std::uniform_int_distribution<int> choice(0, 2);
  std::uniform_int_distribution<std::size_t> word(0, std::size(k_words) - 1);
  std::uniform_int_distribution<std::size_t> letter(0, k_alphabet.size() - 1);
  std::uniform_int_distribution<int> length(0, 12);
  std::uniform_int_distribution<int> byte(0, 255);

  // Half the lines are rule-shaped with random choices per column, so that some parse and reach the matcher.
  static constexpr std::string_view k_types[] = {"local", "host", "hostssl", "hostnossl", "hostnogssenc", "hots"};
  static constexpr std::string_view k_names[] = {"all", "app", "alice", "\"all\"", "app,all", "+g", "a,,b"};
  static constexpr std::string_view k_addresses[] = {"all", "10.0.0.0/8", "::1/128", "0.0.0.0/0", "10.0.0.0 255.0.0.0",
                                                     "10.0.0.0/40", "x.example"};
  static constexpr std::string_view k_methods[] = {"trust", "reject", "md5", "scram-sha-256", "cert", "md6"};
  const auto any_of = [&](const auto& list) {
    return list[std::uniform_int_distribution<std::size_t>(0, std::size(list) - 1)(rng)];
  };

  std::string text;
  for (int i = 0; i < 10000; ++i) {
    if (i % 2 == 0) {
      const std::string_view type = any_of(k_types);
      text += std::string(type) + " " + std::string(any_of(k_names)) + " " + std::string(any_of(k_names)) + " ";
      if (type != "local") text += std::string(any_of(k_addresses)) + " ";
      text += std::string(any_of(k_methods)) + "\n";
      continue;
    }
    const int n = length(rng);
    for (int j = 0; j < n; ++j) {
      switch (choice(rng)) {
        case 0:
          text += k_words[word(rng)];
          text += ' ';
          break;
        case 1:
          text += k_alphabet[letter(rng)];
          break;
        default:
          text += static_cast<char>(byte(rng));  // includes NUL and '\n'
          break;
      }
    }
    text += '\n';
  }
  const hba::HbaFile file = hba::parse(text);
  for (const hba::LoadError& e : file.errors) {
    CHECK(e.line >= 1);
    CHECK(e.column >= 1);
    CHECK_FALSE(e.message.empty());
  }
  // Something must have parsed and something must have failed, or the generator is not exercising both paths.
  CHECK(!file.rules.empty());
  CHECK(!file.errors.empty());
  hba::ClientInfo client;
  client.address = hba::IpAddress::v4({10, 1, 2, 3});
  client.database = "app";
  client.user = "alice";
  const hba::Rule* rule = hba::match(file, client);
  if (rule != nullptr) CHECK(rule->line >= 1);
}
