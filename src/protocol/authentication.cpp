// Authentication: the backend's 'R' requests and the frontend's 'p' answers (PasswordMessage, SASL*). Both
// directions are used: pgweir is the server to its clients and a client to PostgreSQL.
#include <string>

#include "pgweir/protocol/messages.hpp"
#include "wire.hpp"

namespace pgweir::protocol {
namespace {

void append_auth_request(std::string& out, AuthCode code, std::string_view data) {
  const std::size_t at = wire::begin_message(out, backend::Authentication);
  wire::put_u32(out, static_cast<std::uint32_t>(code));
  out.append(data);
  wire::end_length(out, at);
}

}  // namespace

Expected<Authentication> parse_authentication(std::string_view body) {
  wire::Reader in(body);
  const auto raw_code = in.u32();
  if (!raw_code) return make_error("authentication request is too short");
  Authentication auth;
  auth.code = static_cast<AuthCode>(*raw_code);
  switch (auth.code) {
    case AuthCode::ok:
    case AuthCode::kerberos_v5:
    case AuthCode::cleartext_password:
    case AuthCode::gss:
    case AuthCode::sspi:
      if (!in.at_end()) return make_error("authentication request has trailing bytes");
      return auth;
    case AuthCode::md5_password: {
      const auto salt = in.bytes(4);
      if (!salt || !in.at_end()) return make_error("MD5 authentication request must carry exactly 4 salt bytes");
      for (std::size_t i = 0; i < 4; ++i) auth.md5_salt[i] = static_cast<std::uint8_t>((*salt)[i]);
      return auth;
    }
    case AuthCode::sasl:
      for (;;) {
        const auto mechanism = in.cstring();
        if (!mechanism) return make_error("SASL mechanism list is not terminated");
        if (mechanism->empty()) break;
        auth.mechanisms.emplace_back(*mechanism);
      }
      if (!in.at_end()) return make_error("SASL mechanism list has trailing bytes");
      if (auth.mechanisms.empty()) return make_error("SASL mechanism list is empty");
      return auth;
    case AuthCode::gss_continue:
    case AuthCode::sasl_continue:
    case AuthCode::sasl_final:
      auth.data = std::string(in.take_rest());
      return auth;
  }
  return make_error("unsupported authentication request code " + std::to_string(*raw_code));
}

void append_authentication_ok(std::string& out) { append_auth_request(out, AuthCode::ok, {}); }

void append_authentication_cleartext(std::string& out) {
  append_auth_request(out, AuthCode::cleartext_password, {});
}

void append_authentication_md5(std::string& out, const std::array<std::uint8_t, 4>& salt) {
  const char bytes[4] = {static_cast<char>(salt[0]), static_cast<char>(salt[1]), static_cast<char>(salt[2]),
                         static_cast<char>(salt[3])};
  append_auth_request(out, AuthCode::md5_password, std::string_view(bytes, 4));
}

void append_authentication_sasl(std::string& out, const std::vector<std::string_view>& mechanisms) {
  const std::size_t at = wire::begin_message(out, backend::Authentication);
  wire::put_u32(out, static_cast<std::uint32_t>(AuthCode::sasl));
  for (const auto mechanism : mechanisms) {
    if (mechanism.empty() || mechanism.front() == '\0') continue;  // an empty name would end the list early
    wire::put_cstring(out, mechanism);
  }
  out.push_back('\0');
  wire::end_length(out, at);
}

void append_authentication_sasl_continue(std::string& out, std::string_view data) {
  append_auth_request(out, AuthCode::sasl_continue, data);
}

void append_authentication_sasl_final(std::string& out, std::string_view data) {
  append_auth_request(out, AuthCode::sasl_final, data);
}

Expected<std::string_view> parse_password_message(std::string_view body) {
  // Exactly one string filling the whole body: an embedded NUL would make the peer and us see different passwords.
  wire::Reader in(body);
  const auto password = in.cstring();
  if (!password || !in.at_end()) return make_error("invalid password packet size");
  return *password;
}

void append_password_message(std::string& out, std::string_view password) {
  const std::size_t at = wire::begin_message(out, frontend::PasswordMessage);
  wire::put_cstring(out, password);
  wire::end_length(out, at);
}

Expected<SASLInitialResponse> parse_sasl_initial_response(std::string_view body) {
  wire::Reader in(body);
  SASLInitialResponse response;
  const auto mechanism = in.cstring();
  if (!mechanism) return make_error("SASLInitialResponse: mechanism name is not terminated");
  if (mechanism->empty()) return make_error("SASLInitialResponse: empty mechanism name");
  response.mechanism = *mechanism;
  const auto length = in.i32();
  if (!length) return make_error("SASLInitialResponse: missing data length");
  if (*length == -1) {
    if (!in.at_end()) return make_error("SASLInitialResponse: trailing bytes after absent data");
    return response;
  }
  if (*length < 0 || static_cast<std::size_t>(*length) != in.remaining()) {
    return make_error("SASLInitialResponse: data length does not match the message");
  }
  response.data = in.take_rest();
  return response;
}

void append_sasl_initial_response(std::string& out, std::string_view mechanism, std::string_view data) {
  const std::size_t at = wire::begin_message(out, frontend::PasswordMessage);
  wire::put_cstring(out, mechanism);
  wire::put_u32(out, static_cast<std::uint32_t>(data.size()));
  out.append(data);
  wire::end_length(out, at);
}

void append_sasl_response(std::string& out, std::string_view data) {
  const std::size_t at = wire::begin_message(out, frontend::PasswordMessage);
  out.append(data);
  wire::end_length(out, at);
}

}  // namespace pgweir::protocol
