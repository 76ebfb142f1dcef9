// ErrorResponse and NoticeResponse: the typed-field body both share, and pgweir's own errors in the field order
// PostgreSQL uses (S, V, C, M, D, H, …), so drivers that read fields positionally see what they expect.
#include <string>

#include "pgweir/protocol/messages.hpp"
#include "wire.hpp"

namespace pgweir::protocol {
namespace {

void put_field(std::string& out, char type, std::string_view value) {
  out.push_back(type);
  wire::put_cstring(out, value);
}

void append_fields(std::string& out, char tag, const ErrorFields& fields) {
  const std::size_t at = wire::begin_message(out, tag);
  std::string_view nonlocalized = fields.severity;
  for (const auto& [type, value] : fields.other) {
    if (type == 'V') nonlocalized = value;
  }
  put_field(out, 'S', fields.severity);
  put_field(out, 'V', nonlocalized);
  put_field(out, 'C', fields.code);
  put_field(out, 'M', fields.message);
  if (!fields.detail.empty()) put_field(out, 'D', fields.detail);
  if (!fields.hint.empty()) put_field(out, 'H', fields.hint);
  for (const auto& [type, value] : fields.other) {
    // A zero type byte is the terminator; the fields written above must not appear twice.
    if (type == '\0' || type == 'S' || type == 'V' || type == 'C' || type == 'M' || type == 'D' || type == 'H') {
      continue;
    }
    put_field(out, type, value);
  }
  out.push_back('\0');
  wire::end_length(out, at);
}

}  // namespace

Expected<ErrorFields> parse_error_fields(std::string_view body) {
  wire::Reader in(body);
  ErrorFields fields;
  for (;;) {
    const auto type = in.byte();
    if (!type) return make_error("error fields are not terminated");
    if (*type == '\0') break;
    const auto value = in.cstring();
    if (!value) return make_error("error field value is not terminated");
    switch (*type) {
      case 'S': fields.severity = *value; break;
      case 'C': fields.code = *value; break;
      case 'M': fields.message = *value; break;
      case 'D': fields.detail = *value; break;
      case 'H': fields.hint = *value; break;
      default: fields.other.emplace_back(*type, *value); break;
    }
  }
  if (!in.at_end()) return make_error("error fields have trailing bytes");
  std::erase_if(fields.other, [&](const auto& field) { return field.first == 'V' && field.second == fields.severity; });
  return fields;
}

void append_error_response(std::string& out, const ErrorFields& fields) {
  append_fields(out, backend::ErrorResponse, fields);
}

void append_notice_response(std::string& out, const ErrorFields& fields) {
  append_fields(out, backend::NoticeResponse, fields);
}

void append_error(std::string& out, std::string_view severity, std::string_view sqlstate, std::string_view message) {
  ErrorFields fields;
  fields.severity = severity;
  fields.code = sqlstate;
  fields.message = message;
  append_error_response(out, fields);
}

}  // namespace pgweir::protocol
