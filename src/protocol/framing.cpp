// Framing: where one message or startup packet ends. Looks at headers only and never consumes anything, so the
// caller can stream bodies through or wait for more bytes without copying.
#include "pgweir/core/limits.hpp"
#include "pgweir/protocol/messages.hpp"

namespace pgweir::protocol {

FrameResult peek_message(std::string_view in, std::uint32_t max_length) noexcept {
  FrameResult r = peek_frame(in, max_length);
  if (r.status == FrameStatus::ok && in.size() < r.frame.size()) r.status = FrameStatus::need_more;
  return r;
}

StartupFrameResult peek_startup_frame(std::string_view in) noexcept {
  StartupFrameResult r;
  if (in.size() < 4) return r;
  const std::uint32_t length = read_u32(in.data());
  if (length < limits::k_min_startup_packet) {
    r.status = FrameStatus::invalid;
    r.error = "startup packet is too short";
    return r;
  }
  if (length > limits::k_max_startup_packet) {
    r.status = FrameStatus::invalid;
    r.error = "startup packet is too long";
    return r;
  }
  r.status = FrameStatus::ok;
  r.length = length;
  return r;
}

StartupFrameResult peek_startup_packet(std::string_view in) noexcept {
  StartupFrameResult r = peek_startup_frame(in);
  if (r.status == FrameStatus::ok && in.size() < r.length) r.status = FrameStatus::need_more;
  return r;
}

}  // namespace pgweir::protocol
