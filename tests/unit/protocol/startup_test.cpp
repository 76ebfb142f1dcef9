// Startup-phase packets: round trips, exact bytes, and the malformed packets a stranger can send.
#include <string>
#include <variant>
#include <vector>

#include "support.hpp"

using namespace std::literals;

namespace pgweir::protocol {
namespace {

Expected<StartupPacket> parse(std::string_view packet) {
  const test::ExactBytes exact(packet);
  return parse_startup_packet(exact.view());
}

std::string error_of(std::string_view packet) {
  const auto r = parse(packet);
  REQUIRE_FALSE(r);
  return r.error().message;
}

bool contains(std::string_view haystack, std::string_view needle) { return haystack.find(needle) != haystack.npos; }

}  // namespace

TEST_CASE("StartupMessage round trip keeps parameters in order") {
  const std::vector<std::pair<std::string, std::string>> params = {
      {"user", "app"},
      {"database", "appdb"},
      {"application_name", "psql"},
      {"options", "-c search_path=a,b -c statement_timeout=5s"},
      {"client_encoding", ""},  // empty values are allowed
  };
  std::string wire;
  append_startup_message(wire, params);
  const auto r = parse(wire);
  REQUIRE(r);
  const auto* msg = std::get_if<StartupMessage>(&*r);
  REQUIRE(msg != nullptr);
  CHECK(msg->protocol_version == limits::k_protocol_v3);
  CHECK(msg->parameters == params);
  REQUIRE(msg->find("database") != nullptr);
  CHECK(*msg->find("database") == "appdb");
  CHECK(msg->find("DATABASE") == nullptr);
  CHECK(msg->find("replication") == nullptr);
}

TEST_CASE("StartupMessage bytes are what libpq sends") {
  std::string wire;
  append_startup_message(wire, {{"user", "app"}});
  CHECK(wire == test::u32_bytes(18) + test::u32_bytes(196608) + "user\0app\0\0"s);
}

TEST_CASE("append_startup_message drops empty names, which would end the list early") {
  std::string wire;
  append_startup_message(wire, {{"", "x"}, {"user", "app"}});
  const auto r = parse(wire);
  REQUIRE(r);
  CHECK(std::get<StartupMessage>(*r).parameters.size() == 1);
}

TEST_CASE("SSLRequest, GSSENCRequest and CancelRequest round trips and bytes") {
  std::string ssl;
  append_ssl_request(ssl);
  CHECK(ssl == "\x00\x00\x00\x08\x04\xd2\x16\x2f"sv);
  auto r = parse(ssl);
  REQUIRE(r);
  CHECK(std::holds_alternative<SSLRequest>(*r));

  std::string gss;
  append_gssenc_request(gss);
  CHECK(gss == "\x00\x00\x00\x08\x04\xd2\x16\x30"sv);
  r = parse(gss);
  REQUIRE(r);
  CHECK(std::holds_alternative<GSSENCRequest>(*r));

  std::string cancel;
  append_cancel_request(cancel, 0x01020304, 0xfffefdfc);
  CHECK(cancel == "\x00\x00\x00\x10\x04\xd2\x16\x2e\x01\x02\x03\x04\xff\xfe\xfd\xfc"sv);
  r = parse(cancel);
  REQUIRE(r);
  const auto* c = std::get_if<CancelRequest>(&*r);
  REQUIRE(c != nullptr);
  CHECK(c->process_id == 0x01020304u);
  CHECK(c->secret_key == 0xfffefdfcu);
}

TEST_CASE("protocol 3.x minor versions are accepted and reported as sent") {
  for (std::uint32_t minor : {0u, 1u, 2u, 99u, 0xffffu}) {
    const auto r = parse(test::startup_packet((3u << 16) | minor, "user\0app\0\0"sv));
    REQUIRE(r);
    const auto& msg = std::get<StartupMessage>(*r);
    CHECK(protocol_major(msg.protocol_version) == 3);
    CHECK(protocol_minor(msg.protocol_version) == minor);
  }
}

TEST_CASE("protocol versions with another major are refused") {
  for (std::uint32_t major : {0u, 1u, 2u, 4u, 1233u, 0xffffu}) {
    const std::string err = error_of(test::startup_packet(major << 16, "user\0app\0\0"sv));
    CHECK(contains(err, "protocol"));
  }
}

TEST_CASE("unknown request codes are refused") {
  CHECK(contains(error_of(test::startup_packet((1234u << 16) | 5681u, ""sv)), "unknown"));
  CHECK(contains(error_of(test::startup_packet((1234u << 16) | 0u, "user\0app\0\0"sv)), "unknown"));
}

TEST_CASE("a StartupMessage without a user is refused, naming it") {
  CHECK(contains(error_of(test::startup_packet(limits::k_protocol_v3, "database\0appdb\0\0"sv)), "user"));
  CHECK(contains(error_of(test::startup_packet(limits::k_protocol_v3, "\0"sv)), "user"));
  CHECK(contains(error_of(test::startup_packet(limits::k_protocol_v3, "user\0\0\0"sv)), "user"));
  // "User" is another parameter: names are case-sensitive.
  CHECK(contains(error_of(test::startup_packet(limits::k_protocol_v3, "User\0app\0\0"sv)), "user"));
}

TEST_CASE("an empty parameter name before the end is refused") {
  const std::string err = error_of(test::startup_packet(limits::k_protocol_v3, "user\0app\0\0appdb\0\0"sv));
  CHECK(contains(err, "empty parameter name"));
  CHECK_FALSE(parse(test::startup_packet(limits::k_protocol_v3, "\0user\0app\0\0"sv)));
  // A terminator followed by stray bytes.
  CHECK_FALSE(parse(test::startup_packet(limits::k_protocol_v3, "user\0app\0\0x"sv)));
}

TEST_CASE("a StartupMessage without its terminator is refused") {
  CHECK_FALSE(parse(test::startup_packet(limits::k_protocol_v3, "user\0app\0"sv)));
  CHECK_FALSE(parse(test::startup_packet(limits::k_protocol_v3, "user\0app"sv)));
  CHECK_FALSE(parse(test::startup_packet(limits::k_protocol_v3, "user\0"sv)));
  CHECK_FALSE(parse(test::startup_packet(limits::k_protocol_v3, "user"sv)));
  CHECK_FALSE(parse(test::startup_packet(limits::k_protocol_v3, ""sv)));
}

TEST_CASE("duplicate parameter names are refused") {
  const std::string err =
      error_of(test::startup_packet(limits::k_protocol_v3, "user\0app\0database\0a\0user\0root\0\0"sv));
  CHECK(contains(err, "duplicate"));
  CHECK(contains(err, "user"));
}

TEST_CASE("more than k_max_startup_parameters parameters are refused") {
  std::vector<std::pair<std::string, std::string>> params = {{"user", "app"}};
  for (std::size_t i = 1; i < limits::k_max_startup_parameters; ++i) params.emplace_back("p" + std::to_string(i), "v");
  std::string at_limit;
  append_startup_message(at_limit, params);
  const auto ok = parse(at_limit);
  REQUIRE(ok);
  CHECK(std::get<StartupMessage>(*ok).parameters.size() == limits::k_max_startup_parameters);

  params.emplace_back("one_too_many", "v");
  std::string over;
  append_startup_message(over, params);
  CHECK(contains(error_of(over), std::to_string(limits::k_max_startup_parameters)));
}

TEST_CASE("the declared length must match the packet") {
  std::string wire;
  append_startup_message(wire, {{"user", "app"}});
  CHECK_FALSE(parse(wire + "x"));                                         // longer than declared
  CHECK_FALSE(parse(std::string_view(wire).substr(0, wire.size() - 1)));  // shorter than declared
  CHECK_FALSE(parse(std::string_view(wire).substr(0, 7)));                // not even a code
  CHECK_FALSE(parse(""));
  std::string huge = test::u32_bytes(limits::k_max_startup_packet + 1) + test::u32_bytes(limits::k_protocol_v3);
  huge.resize(limits::k_max_startup_packet + 1, 'a');
  CHECK_FALSE(parse(huge));
}

TEST_CASE("fixed-size requests with the wrong size are refused") {
  CHECK_FALSE(parse(test::startup_packet(limits::k_ssl_request_code, "abcd"sv)));
  CHECK_FALSE(parse(test::startup_packet(limits::k_gssenc_request_code, "abcd"sv)));
  CHECK_FALSE(parse(test::startup_packet(limits::k_cancel_request_code, "abcd"sv)));
  CHECK_FALSE(parse(test::startup_packet(limits::k_cancel_request_code, "abcdefghijkl"sv)));
  CHECK(parse(test::startup_packet(limits::k_cancel_request_code, "abcdefgh"sv)));
}

}  // namespace pgweir::protocol
