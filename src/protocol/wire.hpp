// Byte-level helpers shared by the protocol codec: big-endian writers with length back-patching, and a
// bounds-checked reader. Internal to src/protocol; not part of the public header.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "pgweir/protocol/messages.hpp"

namespace pgweir::protocol::wire {

inline void put_u32(std::string& out, std::uint32_t v) {
  const char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
                     static_cast<char>(v)};
  out.append(b, 4);
}

inline void put_u16(std::string& out, std::uint16_t v) {
  const char b[2] = {static_cast<char>(v >> 8), static_cast<char>(v)};
  out.append(b, 2);
}

// A NUL inside `s` would end the field early on the peer's side and shift every later field, so the string is
// cut at its first NUL: the output always parses as exactly the fields the builder meant to write.
inline void put_cstring(std::string& out, std::string_view s) {
  out.append(s.substr(0, s.find('\0')));
  out.push_back('\0');
}

// Reserves a 4-byte length that counts itself; end_length fills it in once the body is written.
inline std::size_t begin_length(std::string& out) {
  const std::size_t at = out.size();
  out.append(4, '\0');
  return at;
}

inline void end_length(std::string& out, std::size_t at) {
  const auto n = static_cast<std::uint32_t>(out.size() - at);
  out[at] = static_cast<char>(n >> 24);
  out[at + 1] = static_cast<char>(n >> 16);
  out[at + 2] = static_cast<char>(n >> 8);
  out[at + 3] = static_cast<char>(n);
}

inline std::size_t begin_message(std::string& out, char tag) {
  out.push_back(tag);
  return begin_length(out);
}

// A message with an empty body (Sync, Terminate, NoData …).
inline void put_empty_message(std::string& out, char tag) {
  out.push_back(tag);
  put_u32(out, 4);
}

// Reads fields front to back. Every accessor checks the remaining size first and returns nullopt when the
// field does not fit, so a parser built on it cannot read past the view whatever the bytes say.
class Reader {
 public:
  explicit Reader(std::string_view in) noexcept : rest_(in) {}

  std::optional<std::uint32_t> u32() noexcept {
    if (rest_.size() < 4) return std::nullopt;
    const std::uint32_t v = read_u32(rest_.data());
    rest_.remove_prefix(4);
    return v;
  }

  std::optional<std::int32_t> i32() noexcept {
    auto v = u32();
    if (!v) return std::nullopt;
    return static_cast<std::int32_t>(*v);
  }

  std::optional<std::uint16_t> u16() noexcept {
    if (rest_.size() < 2) return std::nullopt;
    const std::uint16_t v = read_u16(rest_.data());
    rest_.remove_prefix(2);
    return v;
  }

  std::optional<char> byte() noexcept {
    if (rest_.empty()) return std::nullopt;
    const char c = rest_.front();
    rest_.remove_prefix(1);
    return c;
  }

  // A NUL-terminated string; the NUL is consumed but not returned. nullopt when no NUL is left.
  std::optional<std::string_view> cstring() noexcept {
    const auto nul = rest_.find('\0');
    if (nul == std::string_view::npos) return std::nullopt;
    const std::string_view s = rest_.substr(0, nul);
    rest_.remove_prefix(nul + 1);
    return s;
  }

  std::optional<std::string_view> bytes(std::size_t n) noexcept {
    if (rest_.size() < n) return std::nullopt;
    const std::string_view s = rest_.substr(0, n);
    rest_.remove_prefix(n);
    return s;
  }

  std::string_view take_rest() noexcept {
    const std::string_view s = rest_;
    rest_ = {};
    return s;
  }

  std::size_t remaining() const noexcept { return rest_.size(); }
  bool at_end() const noexcept { return rest_.empty(); }

 private:
  std::string_view rest_;
};

}  // namespace pgweir::protocol::wire
