// Helpers for the protocol tests: exact-size copies of input so ASan sees any read past the end, and splitting a
// built message into tag and body the way a caller would after peek_frame.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include <doctest/doctest.h>

#include "pgweir/core/limits.hpp"
#include "pgweir/protocol/messages.hpp"

namespace pgweir::protocol::test {

// std::string keeps spare capacity (and SSO bytes) past size(), where an overread goes unnoticed. A heap block of
// exactly the input's size puts ASan's redzone right behind the last byte.
class ExactBytes {
 public:
  explicit ExactBytes(std::string_view s) : size_(s.size()), data_(new char[s.empty() ? 1 : s.size()]) {
    if (!s.empty()) std::memcpy(data_.get(), s.data(), s.size());
  }
  std::string_view view() const { return {data_.get(), size_}; }

 private:
  std::size_t size_;
  std::unique_ptr<char[]> data_;
};

struct Message {
  char tag = 0;
  std::string body;
};

// Checks that `wire` is exactly one well-framed message and returns its parts.
inline Message split_message(std::string_view wire) {
  const FrameResult r = peek_frame(wire, limits::k_max_message);
  REQUIRE(r.status == FrameStatus::ok);
  REQUIRE(r.frame.size() == wire.size());
  return Message{r.frame.tag, std::string(wire.substr(k_header_size))};
}

inline std::string u32_bytes(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

// Wraps `body` with a tag and a correct length.
inline std::string frame(char tag, std::string_view body) {
  std::string out(1, tag);
  out += u32_bytes(static_cast<std::uint32_t>(body.size() + 4));
  out += body;
  return out;
}

// A startup-phase packet: correct length prefix, then `code`, then `body`.
inline std::string startup_packet(std::uint32_t code, std::string_view body) {
  std::string out = u32_bytes(static_cast<std::uint32_t>(body.size() + 8));
  out += u32_bytes(code);
  out += body;
  return out;
}

}  // namespace pgweir::protocol::test
