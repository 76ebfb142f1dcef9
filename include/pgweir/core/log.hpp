// Structured logging: one line per event, text or JSON, to stderr.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace pgweir::log {

enum class Level { error = 0, warn = 1, info = 2, debug = 3 };
enum class Format { text, json };

void configure(Level level, Format format);
Level level();
inline bool enabled(Level l) { return static_cast<int>(l) <= static_cast<int>(level()); }

// A field of a log line. Values are copied into the line; never pass secrets.
struct Field {
  std::string_view key;
  std::string value;
  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const char* v) : key(k), value(v ? v : "") {}
  Field(std::string_view k, const std::string& v) : key(k), value(v) {}
  template <class N>
    requires std::is_arithmetic_v<N>
  Field(std::string_view k, N n) : key(k), value(std::to_string(n)) {}
};

void write(Level l, std::string_view event, std::initializer_list<Field> fields = {});

inline void error(std::string_view event, std::initializer_list<Field> f = {}) { write(Level::error, event, f); }
inline void warn(std::string_view event, std::initializer_list<Field> f = {}) {
  if (enabled(Level::warn)) write(Level::warn, event, f);
}
inline void info(std::string_view event, std::initializer_list<Field> f = {}) {
  if (enabled(Level::info)) write(Level::info, event, f);
}
inline void debug(std::string_view event, std::initializer_list<Field> f = {}) {
  if (enabled(Level::debug)) write(Level::debug, event, f);
}

}  // namespace pgweir::log
