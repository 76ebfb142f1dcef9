// Authentication requests ('R') and the frontend's answers ('p').
#include <string>
#include <vector>

#include "support.hpp"

using namespace std::literals;

namespace pgweir::protocol {
namespace {

Expected<Authentication> parse_auth(std::string_view body) {
  const test::ExactBytes exact(body);
  return parse_authentication(exact.view());
}

Authentication auth_round_trip(const std::string& wire) {
  const test::Message m = test::split_message(wire);
  CHECK(m.tag == 'R');
  auto r = parse_auth(m.body);
  REQUIRE(r);
  return *r;
}

// Only for input that must be refused: a success would hold views into the copy that dies here.
bool initial_response_refused(std::string_view body) {
  const test::ExactBytes exact(body);
  return !parse_sasl_initial_response(exact.view());
}

}  // namespace

TEST_CASE("AuthenticationOk and AuthenticationCleartextPassword") {
  std::string wire;
  append_authentication_ok(wire);
  CHECK(wire == "R\0\0\0\x08\0\0\0\0"sv);
  CHECK(auth_round_trip(wire).code == AuthCode::ok);

  wire.clear();
  append_authentication_cleartext(wire);
  CHECK(wire == "R\0\0\0\x08\0\0\0\x03"sv);
  CHECK(auth_round_trip(wire).code == AuthCode::cleartext_password);
}

TEST_CASE("AuthenticationMD5Password carries its salt") {
  const std::array<std::uint8_t, 4> salt{0x00, 0x7f, 0x80, 0xff};
  std::string wire;
  append_authentication_md5(wire, salt);
  CHECK(wire == "R\0\0\0\x0c\0\0\0\x05\x00\x7f\x80\xff"sv);
  const Authentication a = auth_round_trip(wire);
  CHECK(a.code == AuthCode::md5_password);
  CHECK(a.md5_salt == salt);
}

TEST_CASE("AuthenticationSASL lists its mechanisms") {
  std::string wire;
  append_authentication_sasl(wire, {"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"});
  CHECK(wire == "R\0\0\0\x2a\0\0\0\x0aSCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0"sv);
  const Authentication a = auth_round_trip(wire);
  CHECK(a.code == AuthCode::sasl);
  CHECK(a.mechanisms == std::vector<std::string>{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"});
}

TEST_CASE("AuthenticationSASLContinue and SASLFinal carry raw data") {
  const std::string data = "r=abc,s=\0\xff,i=4096"s;  // raw bytes, NULs included
  std::string wire;
  append_authentication_sasl_continue(wire, data);
  Authentication a = auth_round_trip(wire);
  CHECK(a.code == AuthCode::sasl_continue);
  CHECK(a.data == data);

  wire.clear();
  append_authentication_sasl_final(wire, "v=signature");
  a = auth_round_trip(wire);
  CHECK(a.code == AuthCode::sasl_final);
  CHECK(a.data == "v=signature");

  wire.clear();
  append_authentication_sasl_final(wire, "");
  a = auth_round_trip(wire);
  CHECK(a.code == AuthCode::sasl_final);
  CHECK(a.data.empty());
}

TEST_CASE("other authentication codes PostgreSQL may request are recognised") {
  CHECK(parse_auth("\0\0\0\x07"sv)->code == AuthCode::gss);
  CHECK(parse_auth("\0\0\0\x09"sv)->code == AuthCode::sspi);
  const auto gss = parse_auth("\0\0\0\x08token"sv);
  REQUIRE(gss);
  CHECK(gss->code == AuthCode::gss_continue);
  CHECK(gss->data == "token");
}

TEST_CASE("malformed authentication requests are refused") {
  CHECK_FALSE(parse_auth(""sv));
  CHECK_FALSE(parse_auth("\0\0\0"sv));
  CHECK_FALSE(parse_auth("\0\0\0\0x"sv));                       // AuthenticationOk with trailing bytes
  CHECK_FALSE(parse_auth("\0\0\0\x03\0"sv));                    // cleartext with trailing bytes
  CHECK_FALSE(parse_auth("\0\0\0\x05\x01\x02\x03"sv));          // short salt
  CHECK_FALSE(parse_auth("\0\0\0\x05\x01\x02\x03\x04\x05"sv));  // long salt
  CHECK_FALSE(parse_auth("\0\0\0\x0a"sv));                      // SASL without a list
  CHECK_FALSE(parse_auth("\0\0\0\x0aSCRAM-SHA-256"sv));         // name not terminated
  CHECK_FALSE(parse_auth("\0\0\0\x0aSCRAM-SHA-256\0"sv));       // list not terminated
  CHECK_FALSE(parse_auth("\0\0\0\x0a\0"sv));                    // empty list
  CHECK_FALSE(parse_auth("\0\0\0\x0aSCRAM-SHA-256\0\0x"sv));    // trailing bytes
  CHECK_FALSE(parse_auth("\0\0\0\x06"sv));                      // SCM credentials: gone since PostgreSQL 9.1
  CHECK_FALSE(parse_auth("\0\0\0\x63"sv));
  CHECK_FALSE(parse_auth("\xff\xff\xff\xff"sv));
}

TEST_CASE("PasswordMessage round trip and bytes") {
  std::string wire;
  append_password_message(wire, "md5d2a1b54e8d0f4a0ff8c3a1b5e3c8a6f1");
  const test::Message m = test::split_message(wire);
  CHECK(m.tag == 'p');
  const test::ExactBytes body(m.body);
  const auto pw = parse_password_message(body.view());
  REQUIRE(pw);
  CHECK(*pw == "md5d2a1b54e8d0f4a0ff8c3a1b5e3c8a6f1");

  wire.clear();
  append_password_message(wire, "");
  CHECK(wire == "p\0\0\0\x05\0"sv);
  CHECK(parse_password_message(test::split_message(wire).body).value().empty());
}

TEST_CASE("a PasswordMessage whose string does not fill the body is refused") {
  CHECK_FALSE(parse_password_message(""sv));
  CHECK_FALSE(parse_password_message("secret"sv));
  CHECK_FALSE(parse_password_message("sec\0ret\0"sv));
  CHECK_FALSE(parse_password_message("secret\0\0"sv));
}

TEST_CASE("append_password_message cuts at an embedded NUL so the message stays well formed") {
  std::string wire;
  append_password_message(wire, "abc\0def"sv);
  const test::ExactBytes body(test::split_message(wire).body);
  const auto pw = parse_password_message(body.view());
  REQUIRE(pw);
  CHECK(*pw == "abc");
}

TEST_CASE("SASLInitialResponse round trip") {
  const std::string data = "n,,n=,r=rOprNGfwEbeRWgbNEkqO\0\x01"s;
  std::string wire;
  append_sasl_initial_response(wire, "SCRAM-SHA-256", data);
  const test::Message m = test::split_message(wire);
  CHECK(m.tag == 'p');
  CHECK(m.body == "SCRAM-SHA-256\0"s + test::u32_bytes(static_cast<std::uint32_t>(data.size())) + data);
  const test::ExactBytes body(m.body);
  const auto r = parse_sasl_initial_response(body.view());
  REQUIRE(r);
  CHECK(r->mechanism == "SCRAM-SHA-256");
  REQUIRE(r->data.has_value());
  CHECK(*r->data == data);

  wire.clear();
  append_sasl_initial_response(wire, "SCRAM-SHA-256", "");
  const test::ExactBytes empty_body(test::split_message(wire).body);
  const auto empty = parse_sasl_initial_response(empty_body.view());
  REQUIRE(empty);
  REQUIRE(empty->data.has_value());
  CHECK(empty->data->empty());
}

TEST_CASE("SASLInitialResponse with length -1 has no data") {
  const test::ExactBytes body("SCRAM-SHA-256\0\xff\xff\xff\xff"sv);
  const auto r = parse_sasl_initial_response(body.view());
  REQUIRE(r);
  CHECK(r->mechanism == "SCRAM-SHA-256");
  CHECK_FALSE(r->data.has_value());
}

TEST_CASE("malformed SASLInitialResponse is refused") {
  CHECK(initial_response_refused(""sv));
  CHECK(initial_response_refused("SCRAM-SHA-256"sv));                     // mechanism not terminated
  CHECK(initial_response_refused("\0\0\0\0\0"sv));                        // empty mechanism
  CHECK(initial_response_refused("SCRAM-SHA-256\0"sv));                   // no length
  CHECK(initial_response_refused("SCRAM-SHA-256\0\0\0\0"sv));             // 3-byte length
  CHECK(initial_response_refused("SCRAM-SHA-256\0\0\0\0\x05" "abcd"sv));  // length past the end
  CHECK(initial_response_refused("SCRAM-SHA-256\0\0\0\0\x03" "abcd"sv));  // trailing bytes
  CHECK(initial_response_refused("SCRAM-SHA-256\0\xff\xff\xff\xfe"sv));   // -2
  CHECK(initial_response_refused("SCRAM-SHA-256\0\x7f\xff\xff\xff"sv));   // INT32_MAX
  CHECK(initial_response_refused("SCRAM-SHA-256\0\xff\xff\xff\xffx"sv));  // -1 then bytes
  CHECK(initial_response_refused("SCRAM-SHA-256\0\x80\0\0\0"sv));         // INT32_MIN
}

TEST_CASE("SASLResponse is the raw data in a 'p' message") {
  const std::string data = "c=biws,r=abc,p=\0proof"s;
  std::string wire;
  append_sasl_response(wire, data);
  const test::Message m = test::split_message(wire);
  CHECK(m.tag == 'p');
  CHECK(m.body == data);
}

}  // namespace pgweir::protocol
