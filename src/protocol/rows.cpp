// Result sets pgweir produces itself (the admin console): RowDescription and DataRow, and their parsers.
#include <string>

#include "pgweir/protocol/messages.hpp"
#include "wire.hpp"

namespace pgweir::protocol {

Expected<std::vector<FieldDescription>> parse_row_description(std::string_view body) {
  wire::Reader in(body);
  const auto count = in.u16();
  if (!count) return make_error("RowDescription is too short");
  if (static_cast<std::int16_t>(*count) < 0) return make_error("RowDescription with a negative field count");
  std::vector<FieldDescription> fields;
  for (std::uint16_t i = 0; i < *count; ++i) {
    FieldDescription field;
    const auto name = in.cstring();
    const auto table_oid = name ? in.u32() : std::nullopt;
    const auto column_number = table_oid ? in.u16() : std::nullopt;
    const auto type_oid = column_number ? in.u32() : std::nullopt;
    const auto type_size = type_oid ? in.u16() : std::nullopt;
    const auto type_modifier = type_size ? in.i32() : std::nullopt;
    const auto format = type_modifier ? in.u16() : std::nullopt;
    if (!format) return make_error("RowDescription field is truncated");
    field.name = *name;
    field.table_oid = *table_oid;
    field.column_number = static_cast<std::int16_t>(*column_number);
    field.type_oid = *type_oid;
    field.type_size = static_cast<std::int16_t>(*type_size);
    field.type_modifier = *type_modifier;
    field.format = static_cast<std::int16_t>(*format);
    fields.push_back(field);
  }
  if (!in.at_end()) return make_error("RowDescription has trailing bytes");
  return fields;
}

void append_row_description(std::string& out, const std::vector<FieldDescription>& fields) {
  const std::size_t at = wire::begin_message(out, backend::RowDescription);
  wire::put_u16(out, static_cast<std::uint16_t>(fields.size()));
  for (const auto& field : fields) {
    wire::put_cstring(out, field.name);
    wire::put_u32(out, field.table_oid);
    wire::put_u16(out, static_cast<std::uint16_t>(field.column_number));
    wire::put_u32(out, field.type_oid);
    wire::put_u16(out, static_cast<std::uint16_t>(field.type_size));
    wire::put_u32(out, static_cast<std::uint32_t>(field.type_modifier));
    wire::put_u16(out, static_cast<std::uint16_t>(field.format));
  }
  wire::end_length(out, at);
}

Expected<DataRowValues> parse_data_row(std::string_view body) {
  wire::Reader in(body);
  const auto count = in.u16();
  if (!count) return make_error("DataRow is too short");
  if (static_cast<std::int16_t>(*count) < 0) return make_error("DataRow with a negative column count");
  DataRowValues values;
  for (std::uint16_t i = 0; i < *count; ++i) {
    const auto length = in.i32();
    if (!length) return make_error("DataRow column is truncated");
    if (*length == -1) {
      values.emplace_back(std::nullopt);
      continue;
    }
    if (*length < 0) return make_error("DataRow column with a negative length");
    const auto value = in.bytes(static_cast<std::size_t>(*length));
    if (!value) return make_error("DataRow column is longer than the message");
    values.emplace_back(*value);
  }
  if (!in.at_end()) return make_error("DataRow has trailing bytes");
  return values;
}

void append_data_row(std::string& out, const DataRowValues& values) {
  const std::size_t at = wire::begin_message(out, backend::DataRow);
  wire::put_u16(out, static_cast<std::uint16_t>(values.size()));
  for (const auto& value : values) {
    if (!value) {
      wire::put_u32(out, 0xffffffffu);  // -1: NULL
      continue;
    }
    wire::put_u32(out, static_cast<std::uint32_t>(value->size()));
    out.append(*value);
  }
  wire::end_length(out, at);
}

}  // namespace pgweir::protocol
