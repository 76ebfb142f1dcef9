// fuzz_startup: parse_startup_packet, the first thing a stranger sends, with the properties every accepted packet must
// have and a round trip through the builders.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <variant>

#include "fuzz_support.hpp"
#include "pgweir/core/limits.hpp"
#include "pgweir/protocol/messages.hpp"

namespace {

using namespace pgweir;
using namespace pgweir::protocol;

std::string rebuild(const StartupPacket& packet) {
  std::string out;
  if (const auto* m = std::get_if<StartupMessage>(&packet)) {
    append_startup_message(out, m->parameters);
  } else if (std::holds_alternative<SSLRequest>(packet)) {
    append_ssl_request(out);
  } else if (std::holds_alternative<GSSENCRequest>(packet)) {
    append_gssenc_request(out);
  } else {
    const auto& cancel = std::get<CancelRequest>(packet);
    append_cancel_request(out, cancel.process_id, cancel.secret_key);
  }
  return out;
}

void check_accepted(std::string_view in, const StartupPacket& packet) {
  // Framing and parsing agree on what a whole packet is.
  const StartupFrameResult frame = peek_startup_packet(in);
  FUZZ_CHECK(frame.status == FrameStatus::ok);
  FUZZ_CHECK(frame.length == in.size());

  if (const auto* m = std::get_if<StartupMessage>(&packet)) {
    FUZZ_CHECK(protocol_major(m->protocol_version) == 3);
    FUZZ_CHECK(m->parameters.size() <= limits::k_max_startup_parameters);
    const std::string* user = m->find("user");
    FUZZ_CHECK(user != nullptr && !user->empty());
    std::set<std::string_view> names;
    for (const auto& [name, value] : m->parameters) {
      FUZZ_CHECK(!name.empty());
      FUZZ_CHECK(name.find('\0') == std::string::npos && value.find('\0') == std::string::npos);
      FUZZ_CHECK(names.insert(name).second);
      FUZZ_CHECK(m->find(name) == &value);
    }
  }

  // The builders write protocol 3.0; any other accepted 3.x differs only in that field.
  const std::string rebuilt = rebuild(packet);
  const auto* m = std::get_if<StartupMessage>(&packet);
  if (m == nullptr || m->protocol_version == limits::k_protocol_v3) {
    FUZZ_CHECK(rebuilt == in);
  } else {
    FUZZ_CHECK(rebuilt.size() == in.size());
    FUZZ_CHECK(rebuilt.substr(8) == in.substr(8));
  }
  auto again = parse_startup_packet(rebuilt);
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(again->index() == packet.index());
  if (m != nullptr) FUZZ_CHECK(std::get<StartupMessage>(*again).parameters == m->parameters);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in = fuzz::as_view(data, size);
  auto packet = parse_startup_packet(in);
  if (packet) {
    check_accepted(in, *packet);
  } else {
    FUZZ_CHECK(!packet.error().message.empty());
  }
  return 0;
}
