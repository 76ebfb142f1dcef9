// PostgreSQL v3 wire messages: tags, framing, and build/parse of the messages pgweir itself reads or writes.
// Pure code: no I/O, no Asio. Byte views are std::string_view; builders append to a std::string.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "pgweir/core/result.hpp"

namespace pgweir::protocol {

// Message tags sent by clients (frontend). 'C' is Close here and CommandComplete on the backend side.
namespace frontend {
enum Tag : char {
  Bind = 'B',
  Close = 'C',
  CopyData = 'd',
  CopyDone = 'c',
  CopyFail = 'f',
  Describe = 'D',
  Execute = 'E',
  Flush = 'H',
  FunctionCall = 'F',
  Parse = 'P',
  PasswordMessage = 'p',  // also SASLInitialResponse, SASLResponse, GSSResponse
  Query = 'Q',
  Sync = 'S',
  Terminate = 'X',
};
}  // namespace frontend

// Message tags sent by servers (backend).
namespace backend {
enum Tag : char {
  Authentication = 'R',
  BackendKeyData = 'K',
  BindComplete = '2',
  CloseComplete = '3',
  CommandComplete = 'C',
  CopyBothResponse = 'W',
  CopyData = 'd',
  CopyDone = 'c',
  CopyInResponse = 'G',
  CopyOutResponse = 'H',
  DataRow = 'D',
  EmptyQueryResponse = 'I',
  ErrorResponse = 'E',
  FunctionCallResponse = 'V',
  NegotiateProtocolVersion = 'v',
  NoData = 'n',
  NoticeResponse = 'N',
  NotificationResponse = 'A',
  ParameterDescription = 't',
  ParameterStatus = 'S',
  ParseComplete = '1',
  PortalSuspended = 's',
  ReadyForQuery = 'Z',
  RowDescription = 'T',
};
}  // namespace backend

// ---------------------------------------------------------------------------------------------
// Framing

enum class FrameStatus { ok, need_more, invalid };

// A regular message: 1 tag byte, then a 4-byte big-endian length that counts itself and the body.
struct Frame {
  char tag = 0;
  std::uint32_t length = 0;                    // as declared (>= 4)
  std::size_t size() const { return 1 + static_cast<std::size_t>(length); }  // whole message on the wire
  std::size_t body_size() const { return static_cast<std::size_t>(length) - 4; }
};

struct FrameResult {
  FrameStatus status = FrameStatus::need_more;
  Frame frame;
  const char* error = nullptr;  // static text when status == invalid
};

inline constexpr std::size_t k_header_size = 5;

// Looks at the first 5 bytes of `in` only; consumes nothing. need_more when fewer than 5 bytes are there.
// invalid when the declared length is < 4 or > max_length. Defined inline below: the relay calls it per message.
inline FrameResult peek_frame(std::string_view in, std::uint32_t max_length) noexcept;

// A startup-phase packet: a 4-byte length that counts itself, then the body (no tag).
struct StartupFrameResult {
  FrameStatus status = FrameStatus::need_more;
  std::uint32_t length = 0;
  const char* error = nullptr;
};
// need_more when fewer than 4 bytes; invalid when length < 8 or > limits::k_max_startup_packet.
StartupFrameResult peek_startup_frame(std::string_view in) noexcept;

// ---------------------------------------------------------------------------------------------
// Startup-phase packets (client -> pgweir, and pgweir -> server)

struct SSLRequest {};
struct GSSENCRequest {};
struct CancelRequest {
  std::uint32_t process_id = 0;
  std::uint32_t secret_key = 0;
};
struct StartupMessage {
  std::uint32_t protocol_version = 0;
  std::vector<std::pair<std::string, std::string>> parameters;  // in packet order, names unique
  const std::string* find(std::string_view name) const;
};
using StartupPacket = std::variant<StartupMessage, SSLRequest, GSSENCRequest, CancelRequest>;

// `packet` is one whole startup-phase packet including its 4-byte length prefix.
// Errors: unknown protocol code, major version != 3, missing terminator, empty or duplicate parameter names,
// more than limits::k_max_startup_parameters parameters, no "user" parameter (message names it).
Expected<StartupPacket> parse_startup_packet(std::string_view packet);

void append_startup_message(std::string& out, const std::vector<std::pair<std::string, std::string>>& parameters);
void append_ssl_request(std::string& out);
void append_gssenc_request(std::string& out);
void append_cancel_request(std::string& out, std::uint32_t process_id, std::uint32_t secret_key);

// ---------------------------------------------------------------------------------------------
// Authentication (backend 'R')

enum class AuthCode : std::uint32_t {
  ok = 0,
  kerberos_v5 = 2,
  cleartext_password = 3,
  md5_password = 5,
  gss = 7,
  gss_continue = 8,
  sspi = 9,
  sasl = 10,
  sasl_continue = 11,
  sasl_final = 12,
};

struct Authentication {
  AuthCode code = AuthCode::ok;
  std::array<std::uint8_t, 4> md5_salt{};     // md5_password
  std::vector<std::string> mechanisms;        // sasl
  std::string data;                           // sasl_continue, sasl_final
};

// `body` is the message body (after the 5-byte header).
Expected<Authentication> parse_authentication(std::string_view body);

void append_authentication_ok(std::string& out);
void append_authentication_cleartext(std::string& out);
void append_authentication_md5(std::string& out, const std::array<std::uint8_t, 4>& salt);
void append_authentication_sasl(std::string& out, const std::vector<std::string_view>& mechanisms);
void append_authentication_sasl_continue(std::string& out, std::string_view data);
void append_authentication_sasl_final(std::string& out, std::string_view data);

// PasswordMessage ('p'): a NUL-terminated string (cleartext or md5 response).
Expected<std::string_view> parse_password_message(std::string_view body);
void append_password_message(std::string& out, std::string_view password);

struct SASLInitialResponse {
  std::string_view mechanism;
  std::optional<std::string_view> data;  // absent when the declared length is -1
};
Expected<SASLInitialResponse> parse_sasl_initial_response(std::string_view body);
void append_sasl_initial_response(std::string& out, std::string_view mechanism, std::string_view data);
// SASLResponse's body is the raw data.
void append_sasl_response(std::string& out, std::string_view data);

// ---------------------------------------------------------------------------------------------
// Session messages

struct ParameterStatus {
  std::string_view name;
  std::string_view value;
};
Expected<ParameterStatus> parse_parameter_status(std::string_view body);
void append_parameter_status(std::string& out, std::string_view name, std::string_view value);

struct BackendKeyData {
  std::uint32_t process_id = 0;
  std::uint32_t secret_key = 0;
  bool operator==(const BackendKeyData&) const = default;
};
Expected<BackendKeyData> parse_backend_key_data(std::string_view body);
void append_backend_key_data(std::string& out, std::uint32_t process_id, std::uint32_t secret_key);

// Transaction status: 'I' idle, 'T' in a transaction block, 'E' in a failed transaction block.
Expected<char> parse_ready_for_query(std::string_view body);
void append_ready_for_query(std::string& out, char status);

// ErrorResponse ('E') and NoticeResponse ('N') share their body format.
struct ErrorFields {
  std::string severity;   // 'S' (localized) — "ERROR", "FATAL", "NOTICE" …
  std::string code;       // 'C' SQLSTATE
  std::string message;    // 'M'
  std::string detail;     // 'D'
  std::string hint;       // 'H'
  std::vector<std::pair<char, std::string>> other;  // every other field, in order
};
// A 'V' field (non-localized severity) is kept in `other` only when it differs from 'S', so that
// build -> parse -> build is stable; the builders then write that V instead of repeating the severity.
Expected<ErrorFields> parse_error_fields(std::string_view body);
// Writes 'S' and 'V' (both = severity), 'C', 'M', then 'D'/'H' when non-empty, then `other`.
void append_error_response(std::string& out, const ErrorFields& fields);
void append_notice_response(std::string& out, const ErrorFields& fields);
// Shorthand for pgweir's own errors.
void append_error(std::string& out, std::string_view severity, std::string_view sqlstate, std::string_view message);

void append_terminate(std::string& out);
void append_query(std::string& out, std::string_view sql);
void append_sync(std::string& out);

// Reads a big-endian integer; the caller has checked the size.
inline std::uint32_t read_u32(const char* p) noexcept {
  auto b = reinterpret_cast<const unsigned char*>(p);
  return (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) | (std::uint32_t{b[2]} << 8) | std::uint32_t{b[3]};
}
inline std::uint16_t read_u16(const char* p) noexcept {
  auto b = reinterpret_cast<const unsigned char*>(p);
  return static_cast<std::uint16_t>((b[0] << 8) | b[1]);
}

inline FrameResult peek_frame(std::string_view in, std::uint32_t max_length) noexcept {
  FrameResult r;
  if (in.size() < k_header_size) return r;
  const std::uint32_t length = read_u32(in.data() + 1);
  if (length < 4) {
    r.status = FrameStatus::invalid;
    r.error = "message length is shorter than its own length field";
  } else if (length > max_length) {
    r.status = FrameStatus::invalid;
    r.error = "message length exceeds the limit";
  } else {
    r.status = FrameStatus::ok;
    r.frame.tag = in[0];
    r.frame.length = length;
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// Additions by the protocol module (helpers built on the declarations above)

// Like peek_frame, but need_more until the whole message (header and body) is in `in`: for the phases where
// pgweir holds a message whole (login, ParameterStatus, the admin console) instead of streaming it.
FrameResult peek_message(std::string_view in, std::uint32_t max_length) noexcept;
// Like peek_startup_frame, but need_more until the whole packet is in `in`.
StartupFrameResult peek_startup_packet(std::string_view in) noexcept;

constexpr std::uint16_t protocol_major(std::uint32_t version) noexcept {
  return static_cast<std::uint16_t>(version >> 16);
}
constexpr std::uint16_t protocol_minor(std::uint32_t version) noexcept {
  return static_cast<std::uint16_t>(version & 0xffff);
}

// NegotiateProtocolVersion ('v'): the newest minor version supported for the requested major, and the
// protocol options ("_pq_.*" startup parameters) that were not recognised.
struct NegotiateProtocolVersion {
  std::uint32_t newest_minor = 0;
  std::vector<std::string_view> unrecognized_options;
};
Expected<NegotiateProtocolVersion> parse_negotiate_protocol_version(std::string_view body);
void append_negotiate_protocol_version(std::string& out, std::uint32_t newest_minor,
                                       const std::vector<std::string_view>& unrecognized_options);

// Query ('Q'): one NUL-terminated SQL string.
Expected<std::string_view> parse_query(std::string_view body);

// CommandComplete ('C'): the command tag, e.g. "SELECT 3", "SHOW".
Expected<std::string_view> parse_command_complete(std::string_view body);
void append_command_complete(std::string& out, std::string_view command_tag);
void append_empty_query_response(std::string& out);

// RowDescription ('T'): one entry per result column. Defaults describe a text column not taken from a table.
struct FieldDescription {
  std::string_view name;
  std::uint32_t table_oid = 0;
  std::int16_t column_number = 0;
  std::uint32_t type_oid = 25;  // text
  std::int16_t type_size = -1;  // variable length
  std::int32_t type_modifier = -1;
  std::int16_t format = 0;  // 0 text, 1 binary
};
Expected<std::vector<FieldDescription>> parse_row_description(std::string_view body);
void append_row_description(std::string& out, const std::vector<FieldDescription>& fields);

// DataRow ('D'): one value per column; nullopt is SQL NULL.
using DataRowValues = std::vector<std::optional<std::string_view>>;
Expected<DataRowValues> parse_data_row(std::string_view body);
void append_data_row(std::string& out, const DataRowValues& values);

}  // namespace pgweir::protocol
