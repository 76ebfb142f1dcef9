// Shared by the fuzz targets: a check that stays on in every build type and names the broken property, and a
// reader that splits the fuzzer's bytes into control values and payload.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

// assert() vanishes under NDEBUG; a property violated by fuzz input must always abort so libFuzzer saves the input.
#define FUZZ_CHECK(cond)                                                                          \
  do {                                                                                            \
    if (!(cond)) {                                                                                \
      std::fprintf(stderr, "FUZZ_CHECK failed at %s:%d: %s\n", __FILE__, __LINE__, #cond);       \
      std::abort();                                                                               \
    }                                                                                             \
  } while (0)

namespace pgweir::fuzz {

inline std::string_view as_view(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Takes control bytes off the front; missing bytes read as zero so every input is usable.
class Controls {
 public:
  explicit Controls(std::string_view in) : rest_(in) {}
  std::uint8_t u8() {
    if (rest_.empty()) return 0;
    auto v = static_cast<std::uint8_t>(rest_.front());
    rest_.remove_prefix(1);
    return v;
  }
  std::uint16_t u16() { return static_cast<std::uint16_t>((u8() << 8) | u8()); }
  std::string_view rest() const { return rest_; }

 private:
  std::string_view rest_;
};

// Splits at the first `sep`: {before, after}; after is empty (and found false) when there is none.
struct Split {
  std::string_view head, tail;
  bool found = false;
};
inline Split split_at(std::string_view in, char sep) {
  auto at = in.find(sep);
  if (at == std::string_view::npos) return {in, {}, false};
  return {in.substr(0, at), in.substr(at + 1), true};
}

}  // namespace pgweir::fuzz
