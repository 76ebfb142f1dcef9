// Startup-phase packets: StartupMessage, SSLRequest, GSSENCRequest and CancelRequest, which carry a protocol
// code instead of a tag. This is the first thing a stranger sends us, so the parser checks everything.
#include <string>

#include "pgweir/core/limits.hpp"
#include "pgweir/protocol/messages.hpp"
#include "wire.hpp"

namespace pgweir::protocol {
namespace {

Expected<StartupPacket> parse_startup_body(std::uint32_t version, wire::Reader body) {
  // Major 1234 is where PostgreSQL keeps its special request codes; a code there we don't know is not a version.
  if (protocol_major(version) == 1234) return make_error("unknown startup request code " + std::to_string(version));
  if (protocol_major(version) != 3) {
    return make_error("unsupported frontend protocol " + std::to_string(protocol_major(version)) + "." +
                      std::to_string(protocol_minor(version)) + ": server supports 3.0 to 3.x");
  }
  StartupMessage msg;
  msg.protocol_version = version;
  for (;;) {
    auto name = body.cstring();
    if (!name) return make_error("invalid startup packet layout: expected terminator as last byte");
    if (name->empty()) {
      // An empty name is the list terminator, and it must be the packet's last byte.
      if (!body.at_end()) return make_error("invalid startup packet: empty parameter name");
      break;
    }
    auto value = body.cstring();
    if (!value) return make_error("invalid startup packet: parameter \"" + std::string(*name) + "\" has no value");
    if (msg.find(*name) != nullptr) {
      return make_error("invalid startup packet: duplicate parameter \"" + std::string(*name) + "\"");
    }
    if (msg.parameters.size() == limits::k_max_startup_parameters) {
      return make_error("invalid startup packet: more than " + std::to_string(limits::k_max_startup_parameters) +
                        " parameters");
    }
    msg.parameters.emplace_back(*name, *value);
  }
  const std::string* user = msg.find("user");
  if (user == nullptr || user->empty()) return make_error("no PostgreSQL user name specified in startup packet");
  return StartupPacket{std::move(msg)};
}

}  // namespace

const std::string* StartupMessage::find(std::string_view name) const {
  for (const auto& [key, value] : parameters) {
    if (key == name) return &value;
  }
  return nullptr;
}

// GCC 12 with -O1 or more and ASan reports moving this variant into Expected as a read of uninitialized
// members (a known false positive: every member has an initializer); without the pragma -Werror breaks such builds.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
Expected<StartupPacket> parse_startup_packet(std::string_view packet) {
  if (packet.size() < limits::k_min_startup_packet) return make_error("startup packet is too short");
  if (packet.size() > limits::k_max_startup_packet) return make_error("startup packet is too long");
  wire::Reader in(packet);
  const std::uint32_t length = *in.u32();
  const std::uint32_t code = *in.u32();
  if (length != packet.size()) return make_error("startup packet length does not match its size");

  switch (code) {
    case limits::k_ssl_request_code:
      if (length != 8) return make_error("invalid length of SSLRequest");
      return StartupPacket{SSLRequest{}};
    case limits::k_gssenc_request_code:
      if (length != 8) return make_error("invalid length of GSSENCRequest");
      return StartupPacket{GSSENCRequest{}};
    case limits::k_cancel_request_code: {
      // Protocol 3.2 allows longer cancel keys, but pgweir only ever hands out 4-byte ones.
      if (length != 16) return make_error("invalid length of CancelRequest");
      CancelRequest cancel;
      cancel.process_id = *in.u32();
      cancel.secret_key = *in.u32();
      return StartupPacket{cancel};
    }
    default:
      return parse_startup_body(code, in);
  }
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

void append_startup_message(std::string& out, const std::vector<std::pair<std::string, std::string>>& parameters) {
  const std::size_t at = wire::begin_length(out);
  wire::put_u32(out, limits::k_protocol_v3);
  for (const auto& [name, value] : parameters) {
    if (name.empty() || name.front() == '\0') continue;  // an empty name would end the list early
    wire::put_cstring(out, name);
    wire::put_cstring(out, value);
  }
  out.push_back('\0');
  wire::end_length(out, at);
}

void append_ssl_request(std::string& out) {
  wire::put_u32(out, 8);
  wire::put_u32(out, limits::k_ssl_request_code);
}

void append_gssenc_request(std::string& out) {
  wire::put_u32(out, 8);
  wire::put_u32(out, limits::k_gssenc_request_code);
}

void append_cancel_request(std::string& out, std::uint32_t process_id, std::uint32_t secret_key) {
  wire::put_u32(out, 16);
  wire::put_u32(out, limits::k_cancel_request_code);
  wire::put_u32(out, process_id);
  wire::put_u32(out, secret_key);
}

}  // namespace pgweir::protocol
