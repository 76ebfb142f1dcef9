// libFuzzer target for the protocol codec: framing plus every parser, on the raw input and on each framed body.
// Not part of the CMake build (it needs clang). From the repository root:
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude src/protocol/*.cpp \
//     tests/fuzz/protocol/fuzz_protocol.cpp -o fuzz_protocol && ./fuzz_protocol -max_len=4096
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "pgweir/core/limits.hpp"
#include "pgweir/protocol/messages.hpp"

namespace {

using namespace pgweir;
using namespace pgweir::protocol;

void parse_body_everyway(std::string_view body) {
  (void)parse_authentication(body);
  (void)parse_password_message(body);
  (void)parse_sasl_initial_response(body);
  (void)parse_parameter_status(body);
  (void)parse_backend_key_data(body);
  (void)parse_ready_for_query(body);
  (void)parse_error_fields(body);
  (void)parse_negotiate_protocol_version(body);
  (void)parse_query(body);
  (void)parse_command_complete(body);
  (void)parse_row_description(body);
  (void)parse_data_row(body);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);

  if (peek_startup_packet(in).status == FrameStatus::ok) (void)parse_startup_packet(in.substr(0, read_u32(in.data())));
  (void)parse_startup_packet(in);
  parse_body_everyway(in);

  // Walk the input as a message stream, the way a connection would, and parse each whole body.
  std::string_view rest = in;
  for (;;) {
    const FrameResult r = peek_message(rest, limits::k_max_inspected_message);
    if (r.status != FrameStatus::ok) break;
    parse_body_everyway(rest.substr(k_header_size, r.frame.body_size()));
    rest.remove_prefix(r.frame.size());
  }
  return 0;
}
