// ErrorResponse / NoticeResponse: exact bytes of pgweir's own errors and round trips of server errors.
#include <string>

#include "support.hpp"

using namespace std::literals;

namespace pgweir::protocol {
namespace {

Expected<ErrorFields> parse(std::string_view body) {
  const test::ExactBytes exact(body);
  return parse_error_fields(exact.view());
}

}  // namespace

TEST_CASE("append_error writes S, V, C, M as PostgreSQL does") {
  std::string wire;
  append_error(wire, "FATAL", "53300", "too many clients");
  const std::string body = "SFATAL\0VFATAL\0C53300\0Mtoo many clients\0\0"s;
  CHECK(wire == "E" + test::u32_bytes(static_cast<std::uint32_t>(body.size() + 4)) + body);

  const auto f = parse(test::split_message(wire).body);
  REQUIRE(f);
  CHECK(f->severity == "FATAL");
  CHECK(f->code == "53300");
  CHECK(f->message == "too many clients");
  CHECK(f->detail.empty());
  CHECK(f->hint.empty());
  CHECK(f->other.empty());  // V equal to S is not repeated in `other`
}

TEST_CASE("ErrorResponse round trip with detail, hint and other fields") {
  ErrorFields fields;
  fields.severity = "ERROR";
  fields.code = "42P01";
  fields.message = "relation \"nope\" does not exist";
  fields.detail = "some detail";
  fields.hint = "some hint";
  fields.other = {{'P', "15"}, {'F', "parse_relation.c"}, {'L', "1392"}, {'R', "parserOpenTable"}};
  std::string wire;
  append_error_response(wire, fields);
  const test::Message m = test::split_message(wire);
  CHECK(m.tag == 'E');
  CHECK(m.body.starts_with("SERROR\0VERROR\0C42P01\0M"sv));
  CHECK(m.body.find("\0Dsome detail\0Hsome hint\0P15\0"sv) != std::string::npos);

  const auto f = parse(m.body);
  REQUIRE(f);
  CHECK(f->severity == fields.severity);
  CHECK(f->code == fields.code);
  CHECK(f->message == fields.message);
  CHECK(f->detail == fields.detail);
  CHECK(f->hint == fields.hint);
  CHECK(f->other == fields.other);
}

TEST_CASE("NoticeResponse uses the same body with tag 'N'") {
  ErrorFields fields;
  fields.severity = "WARNING";
  fields.code = "01000";
  fields.message = "pool is paused";
  std::string notice;
  append_notice_response(notice, fields);
  std::string error;
  append_error_response(error, fields);
  CHECK(notice[0] == 'N');
  CHECK(notice.substr(1) == error.substr(1));
}

TEST_CASE("a localized server's non-localized severity survives build -> parse -> build") {
  // What a server with lc_messages=de_DE sends: S is translated, V is not.
  const std::string body = "SFEHLER\0VERROR\0C42601\0MSyntaxfehler\0\0"s;
  const auto f = parse(body);
  REQUIRE(f);
  CHECK(f->severity == "FEHLER");
  REQUIRE(f->other.size() == 1);
  CHECK(f->other[0] == std::pair<char, std::string>{'V', "ERROR"});

  std::string wire;
  append_error_response(wire, *f);
  CHECK(test::split_message(wire).body == body);
}

TEST_CASE("builders never emit a field twice or a zero type byte") {
  ErrorFields fields;
  fields.severity = "ERROR";
  fields.code = "XX000";
  fields.message = "m";
  fields.other = {{'S', "dup"}, {'M', "dup"}, {'\0', "would end the list"}, {'W', "context"}};
  std::string wire;
  append_error_response(wire, fields);
  CHECK(test::split_message(wire).body == "SERROR\0VERROR\0CXX000\0Mm\0Wcontext\0\0"s);
}

TEST_CASE("a server error missing fields still parses; unknown field types are kept") {
  const auto f = parse("Mno severity\0qweird\0\0"sv);
  REQUIRE(f);
  CHECK(f->severity.empty());
  CHECK(f->message == "no severity");
  REQUIRE(f->other.size() == 1);
  CHECK(f->other[0].first == 'q');
  CHECK(parse("\0"sv));
}

TEST_CASE("malformed error fields are refused") {
  CHECK_FALSE(parse(""sv));             // no terminator
  CHECK_FALSE(parse("S"sv));            // type without value
  CHECK_FALSE(parse("SERROR"sv));       // value not terminated
  CHECK_FALSE(parse("SERROR\0"sv));     // list not terminated
  CHECK_FALSE(parse("SERROR\0\0x"sv));  // trailing bytes
  CHECK_FALSE(parse("SERROR\0\0\0"sv));
}

}  // namespace pgweir::protocol
