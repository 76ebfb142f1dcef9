// Typed access to TOML values that reports every problem as a Diagnostic at the value's line:col.
#pragma once

#include <toml++/toml.h>

#include <functional>
#include <initializer_list>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "pgweir/config/config.hpp"
#include "schema.hpp"

namespace pgweir::config::detail {

struct Position {
  int line = 0;  // 0 = unknown
  int column = 0;
};
Position position_of(const toml::source_region& region);

// A key's dotted name for messages: "pool.size", and for keys that are not bare TOML keys `databases."*".dsn`.
std::string key_path(std::string_view prefix, std::string_view key);

// Reads one key's value; `path` is the key's dotted name.
using FieldReader = std::function<void(const toml::node& value, const std::string& path)>;
struct Field {
  std::string_view name;
  FieldReader read;
};

// Checks one string (a listen address, …): an error message, or nullopt when it is fine.
using StringCheck = std::function<std::optional<std::string>(std::string_view)>;

class Reader {
 public:
  Reader(std::string file, const EnvLookup& env) : file_(std::move(file)), env_(env) {}

  void error(Position at, std::string message);
  std::vector<Diagnostic>& errors() { return errors_; }

  // Each returns nullopt after reporting a wrong type or value. Strings get ${VAR} substitution.
  std::optional<std::string> string(const toml::node& value, const std::string& path);
  std::optional<std::vector<std::string>> strings(const toml::node& value, const std::string& path,
                                                  const StringCheck& check = {});
  std::optional<int> integer(const toml::node& value, const std::string& path, int min, int max);
  std::optional<Duration> duration(const toml::node& value, const std::string& path);
  const toml::table* table(const toml::node& value, const std::string& path);

  template <class E>
  std::optional<E> choice(const toml::node& value, const std::string& path, std::span<const EnumName<E>> names) {
    auto text = string(value, path);
    if (!text) return std::nullopt;
    std::vector<std::string_view> allowed;
    for (const auto& entry : names) {
      if (entry.name == *text) return entry.value;
      allowed.push_back(entry.name);
    }
    report_bad_choice(value, path, *text, allowed);
    return std::nullopt;
  }

  // Hands each key of `table` to the field of that name and reports the keys no field knows.
  void read_fields(const toml::table& table, std::string_view prefix, std::span<const Field> fields);

  // Where the first of `paths` that was read sits (a key's value, or a table's header); {0,0} when none was.
  Position where(std::initializer_list<std::string_view> paths) const;
  void remember(const std::string& path, Position at) { positions_.insert_or_assign(path, at); }
  // True when reading the key at `path` reported an error: checks that depend on it stay quiet.
  bool failed(std::string_view path) const { return failed_.find(path) != failed_.end(); }

 private:
  void report_type(const toml::node& value, const std::string& path, std::string_view expected);
  void report_bad_choice(const toml::node& value, const std::string& path, std::string_view got,
                         std::span<const std::string_view> allowed);

  std::string file_;
  const EnvLookup& env_;
  std::vector<Diagnostic> errors_;
  std::map<std::string, Position, std::less<>> positions_;
  std::set<std::string, std::less<>> failed_;
};

}  // namespace pgweir::config::detail
