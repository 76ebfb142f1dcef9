// Session messages: ParameterStatus, BackendKeyData, ReadyForQuery, NegotiateProtocolVersion, Query,
// CommandComplete and the empty-bodied ones.
#include <string>
#include <vector>

#include "support.hpp"

using namespace std::literals;

namespace pgweir::protocol {

TEST_CASE("ParameterStatus round trip and bytes") {
  std::string wire;
  append_parameter_status(wire, "TimeZone", "Europe/Berlin");
  CHECK(wire == "S\0\0\0\x1bTimeZone\0Europe/Berlin\0"sv);
  const test::Message m = test::split_message(wire);
  CHECK(m.tag == 'S');
  const test::ExactBytes body(m.body);
  const auto p = parse_parameter_status(body.view());
  REQUIRE(p);
  CHECK(p->name == "TimeZone");
  CHECK(p->value == "Europe/Berlin");

  wire.clear();
  append_parameter_status(wire, "application_name", "");
  const test::ExactBytes empty_body(test::split_message(wire).body);
  const auto empty_value = parse_parameter_status(empty_body.view());
  REQUIRE(empty_value);
  CHECK(empty_value->value.empty());
}

TEST_CASE("malformed ParameterStatus is refused") {
  CHECK_FALSE(parse_parameter_status(""sv));
  CHECK_FALSE(parse_parameter_status("TimeZone"sv));
  CHECK_FALSE(parse_parameter_status("TimeZone\0"sv));
  CHECK_FALSE(parse_parameter_status("TimeZone\0UTC"sv));
  CHECK_FALSE(parse_parameter_status("TimeZone\0UTC\0x"sv));
  CHECK_FALSE(parse_parameter_status("\0UTC\0"sv));
}

TEST_CASE("BackendKeyData round trip and bytes") {
  std::string wire;
  append_backend_key_data(wire, 0x00abcdef, 0x80000001);
  CHECK(wire == "K\0\0\0\x0c\x00\xab\xcd\xef\x80\x00\x00\x01"sv);
  const test::ExactBytes body(test::split_message(wire).body);
  const auto k = parse_backend_key_data(body.view());
  REQUIRE(k);
  CHECK(k->process_id == 0x00abcdefu);
  CHECK(k->secret_key == 0x80000001u);

  CHECK_FALSE(parse_backend_key_data(""sv));
  CHECK_FALSE(parse_backend_key_data("1234567"sv));
  CHECK_FALSE(parse_backend_key_data("123456789"sv));
}

TEST_CASE("ReadyForQuery round trip for each transaction status") {
  for (char status : {'I', 'T', 'E'}) {
    std::string wire;
    append_ready_for_query(wire, status);
    CHECK(wire == "Z\0\0\0\x05"s + status);
    const test::ExactBytes body(test::split_message(wire).body);
    const auto r = parse_ready_for_query(body.view());
    REQUIRE(r);
    CHECK(*r == status);
  }
  CHECK_FALSE(parse_ready_for_query(""sv));
  CHECK_FALSE(parse_ready_for_query("X"sv));
  CHECK_FALSE(parse_ready_for_query("\0"sv));
  CHECK_FALSE(parse_ready_for_query("II"sv));
}

TEST_CASE("NegotiateProtocolVersion round trip and bytes") {
  std::string wire;
  append_negotiate_protocol_version(wire, 0, {"_pq_.compression", "_pq_.other"});
  CHECK(wire == "v\0\0\0\x28\0\0\0\0\0\0\0\x02_pq_.compression\0_pq_.other\0"sv);
  const test::ExactBytes body(test::split_message(wire).body);
  const auto n = parse_negotiate_protocol_version(body.view());
  REQUIRE(n);
  CHECK(n->newest_minor == 0);
  CHECK(n->unrecognized_options == std::vector<std::string_view>{"_pq_.compression", "_pq_.other"});

  wire.clear();
  append_negotiate_protocol_version(wire, 2, {});
  const test::ExactBytes none_body(test::split_message(wire).body);
  const auto none = parse_negotiate_protocol_version(none_body.view());
  REQUIRE(none);
  CHECK(none->newest_minor == 2);
  CHECK(none->unrecognized_options.empty());
}

TEST_CASE("malformed NegotiateProtocolVersion is refused") {
  CHECK_FALSE(parse_negotiate_protocol_version(""sv));
  CHECK_FALSE(parse_negotiate_protocol_version("\0\0\0\0\0\0\0"sv));
  CHECK_FALSE(parse_negotiate_protocol_version("\0\0\0\0\0\0\0\x01"sv));
  CHECK_FALSE(parse_negotiate_protocol_version("\0\0\0\0\0\0\0\x01_pq_.x"sv));
  CHECK_FALSE(parse_negotiate_protocol_version("\0\0\0\0\0\0\0\x01_pq_.x\0y"sv));
  // A count far above the message size must be refused before anything is reserved for it.
  CHECK_FALSE(parse_negotiate_protocol_version("\0\0\0\0\xff\xff\xff\xff_pq_.x\0"sv));
}

TEST_CASE("Query and CommandComplete round trips") {
  std::string wire;
  append_query(wire, "SHOW POOLS;");
  CHECK(wire == "Q\0\0\0\x10SHOW POOLS;\0"sv);
  const test::ExactBytes q(test::split_message(wire).body);
  CHECK(parse_query(q.view()).value() == "SHOW POOLS;");

  wire.clear();
  append_command_complete(wire, "SELECT 3");
  const test::Message m = test::split_message(wire);
  CHECK(m.tag == 'C');
  const test::ExactBytes c(m.body);
  CHECK(parse_command_complete(c.view()).value() == "SELECT 3");

  CHECK_FALSE(parse_query(""sv));
  CHECK_FALSE(parse_query("SELECT 1"sv));
  CHECK_FALSE(parse_query("SELECT 1\0;\0"sv));
  CHECK_FALSE(parse_command_complete("SELECT 1"sv));
  CHECK_FALSE(parse_command_complete("SELECT 1\0\0"sv));
}

TEST_CASE("messages without a body") {
  std::string wire;
  append_sync(wire);
  append_terminate(wire);
  append_empty_query_response(wire);
  CHECK(wire == "S\0\0\0\x04X\0\0\0\x04I\0\0\0\x04"sv);
}

}  // namespace pgweir::protocol
