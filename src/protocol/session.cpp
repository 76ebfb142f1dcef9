// Small session messages pgweir reads or writes itself: ParameterStatus, BackendKeyData, ReadyForQuery,
// NegotiateProtocolVersion, Query, CommandComplete and the empty-bodied ones.
#include <string>

#include "pgweir/protocol/messages.hpp"
#include "wire.hpp"

namespace pgweir::protocol {
namespace {

// A body that is exactly one NUL-terminated string.
std::optional<std::string_view> single_cstring(std::string_view body) {
  wire::Reader in(body);
  auto s = in.cstring();
  if (!s || !in.at_end()) return std::nullopt;
  return s;
}

void append_cstring_message(std::string& out, char tag, std::string_view s) {
  const std::size_t at = wire::begin_message(out, tag);
  wire::put_cstring(out, s);
  wire::end_length(out, at);
}

}  // namespace

Expected<ParameterStatus> parse_parameter_status(std::string_view body) {
  wire::Reader in(body);
  const auto name = in.cstring();
  const auto value = name ? in.cstring() : std::nullopt;
  if (!value || !in.at_end()) return make_error("malformed ParameterStatus");
  if (name->empty()) return make_error("ParameterStatus with an empty name");
  return ParameterStatus{*name, *value};
}

void append_parameter_status(std::string& out, std::string_view name, std::string_view value) {
  const std::size_t at = wire::begin_message(out, backend::ParameterStatus);
  wire::put_cstring(out, name);
  wire::put_cstring(out, value);
  wire::end_length(out, at);
}

Expected<BackendKeyData> parse_backend_key_data(std::string_view body) {
  // Servers speaking protocol 3.2 may send longer keys, but only to clients that asked for 3.2; pgweir asks for 3.0.
  if (body.size() != 8) return make_error("BackendKeyData must be 8 bytes");
  return BackendKeyData{read_u32(body.data()), read_u32(body.data() + 4)};
}

void append_backend_key_data(std::string& out, std::uint32_t process_id, std::uint32_t secret_key) {
  out.push_back(backend::BackendKeyData);
  wire::put_u32(out, 12);
  wire::put_u32(out, process_id);
  wire::put_u32(out, secret_key);
}

Expected<char> parse_ready_for_query(std::string_view body) {
  if (body.size() != 1) return make_error("ReadyForQuery must be 1 byte");
  const char status = body[0];
  if (status != 'I' && status != 'T' && status != 'E') return make_error("ReadyForQuery with an unknown status");
  return status;
}

void append_ready_for_query(std::string& out, char status) {
  out.push_back(backend::ReadyForQuery);
  wire::put_u32(out, 5);
  out.push_back(status);
}

Expected<NegotiateProtocolVersion> parse_negotiate_protocol_version(std::string_view body) {
  wire::Reader in(body);
  const auto newest_minor = in.u32();
  const auto count = newest_minor ? in.u32() : std::nullopt;
  if (!count) return make_error("NegotiateProtocolVersion is too short");
  // Each option takes at least its NUL, so a count above the remaining size is a lie; checked before reserving.
  if (*count > in.remaining()) return make_error("NegotiateProtocolVersion declares more options than it holds");
  NegotiateProtocolVersion result;
  result.newest_minor = *newest_minor;
  result.unrecognized_options.reserve(*count);
  for (std::uint32_t i = 0; i < *count; ++i) {
    const auto option = in.cstring();
    if (!option) return make_error("NegotiateProtocolVersion: option name is not terminated");
    result.unrecognized_options.push_back(*option);
  }
  if (!in.at_end()) return make_error("NegotiateProtocolVersion has trailing bytes");
  return result;
}

void append_negotiate_protocol_version(std::string& out, std::uint32_t newest_minor,
                                       const std::vector<std::string_view>& unrecognized_options) {
  const std::size_t at = wire::begin_message(out, backend::NegotiateProtocolVersion);
  wire::put_u32(out, newest_minor);
  wire::put_u32(out, static_cast<std::uint32_t>(unrecognized_options.size()));
  for (const auto option : unrecognized_options) wire::put_cstring(out, option);
  wire::end_length(out, at);
}

Expected<std::string_view> parse_query(std::string_view body) {
  auto sql = single_cstring(body);
  if (!sql) return make_error("malformed Query message");
  return *sql;
}

void append_query(std::string& out, std::string_view sql) { append_cstring_message(out, frontend::Query, sql); }

Expected<std::string_view> parse_command_complete(std::string_view body) {
  auto tag = single_cstring(body);
  if (!tag) return make_error("malformed CommandComplete message");
  return *tag;
}

void append_command_complete(std::string& out, std::string_view command_tag) {
  append_cstring_message(out, backend::CommandComplete, command_tag);
}

void append_empty_query_response(std::string& out) { wire::put_empty_message(out, backend::EmptyQueryResponse); }
void append_terminate(std::string& out) { wire::put_empty_message(out, frontend::Terminate); }
void append_sync(std::string& out) { wire::put_empty_message(out, frontend::Sync); }

}  // namespace pgweir::protocol
