// RowDescription and DataRow, as the admin console writes them.
#include <string>
#include <vector>

#include "support.hpp"

using namespace std::literals;

namespace pgweir::protocol {
namespace {

bool same(const FieldDescription& a, const FieldDescription& b) {
  return a.name == b.name && a.table_oid == b.table_oid && a.column_number == b.column_number &&
         a.type_oid == b.type_oid && a.type_size == b.type_size && a.type_modifier == b.type_modifier &&
         a.format == b.format;
}

}  // namespace

TEST_CASE("RowDescription round trip") {
  std::vector<FieldDescription> fields(3);
  fields[0].name = "database";
  fields[1].name = "cl_active";
  fields[1].type_oid = 20;  // int8
  fields[1].type_size = 8;
  fields[2] = {"odd", 16384, 3, 1700, -1, 0x70004, 1};
  std::string wire;
  append_row_description(wire, fields);
  const test::Message m = test::split_message(wire);
  CHECK(m.tag == 'T');
  const test::ExactBytes body(m.body);
  const auto parsed = parse_row_description(body.view());
  REQUIRE(parsed);
  REQUIRE(parsed->size() == fields.size());
  for (std::size_t i = 0; i < fields.size(); ++i) CHECK_MESSAGE(same((*parsed)[i], fields[i]), "field " << i);
}

TEST_CASE("RowDescription bytes for one text column") {
  std::string wire;
  append_row_description(wire, {FieldDescription{"version"}});
  CHECK(wire == "T\0\0\0\x20\0\x01version\0\0\0\0\0\0\0\0\0\0\x19\xff\xff\xff\xff\xff\xff\0\0"sv);
}

TEST_CASE("DataRow round trip with NULL, empty and binary values") {
  const DataRowValues values = {"appdb"sv, std::nullopt, ""sv, "\0\xff"sv};
  std::string wire;
  append_data_row(wire, values);
  const test::Message m = test::split_message(wire);
  CHECK(m.tag == 'D');
  CHECK(m.body == "\0\x04\0\0\0\x05" "appdb\xff\xff\xff\xff\0\0\0\0\0\0\0\x02\0\xff"s);
  const test::ExactBytes body(m.body);
  const auto parsed = parse_data_row(body.view());
  REQUIRE(parsed);
  CHECK(*parsed == values);
}

TEST_CASE("malformed RowDescription and DataRow are refused") {
  CHECK_FALSE(parse_row_description(""sv));
  CHECK_FALSE(parse_row_description("\0"sv));
  CHECK_FALSE(parse_row_description("\x80\0"sv));        // negative count
  CHECK_FALSE(parse_row_description("\0\x01name\0"sv));  // truncated field
  CHECK_FALSE(parse_row_description("\0\x01name"sv));    // unterminated name
  CHECK_FALSE(parse_row_description("\0\0x"sv));         // trailing bytes
  CHECK(parse_row_description("\0\0"sv));

  CHECK_FALSE(parse_data_row(""sv));
  CHECK_FALSE(parse_data_row("\xff\xff"sv));                    // negative count
  CHECK_FALSE(parse_data_row("\0\x01"sv));                      // missing column
  CHECK_FALSE(parse_data_row("\0\x01\0\0\0"sv));                // short length
  CHECK_FALSE(parse_data_row("\0\x01\0\0\0\x04" "abc"sv));      // value past the end
  CHECK_FALSE(parse_data_row("\0\x01\x7f\xff\xff\xff"sv));      // INT32_MAX length
  CHECK_FALSE(parse_data_row("\0\x01\xff\xff\xff\xfe"sv));      // -2
  CHECK_FALSE(parse_data_row("\0\x01\xff\xff\xff\xff" "x"sv));  // trailing bytes
  CHECK(parse_data_row("\0\0"sv));
}

}  // namespace pgweir::protocol
