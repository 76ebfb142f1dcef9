// Typed TOML value access for the config loader: type, range and enum checks, ${VAR} substitution and
// unknown-key detection, each problem reported at its own line:col.
#include "reader.hpp"

#include <cstdint>

#include "env_subst.hpp"
#include "suggest.hpp"

namespace pgweir::config::detail {
namespace {

std::string_view type_name(toml::node_type type) {
  switch (type) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a floating-point number";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

bool is_bare_key(std::string_view key) {
  if (key.empty()) return false;
  for (char c : key) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string join(std::span<const std::string_view> words) {
  std::string out;
  for (auto word : words) {
    if (!out.empty()) out += ", ";
    out += word;
  }
  return out;
}

}  // namespace

Position position_of(const toml::source_region& region) {
  return {static_cast<int>(region.begin.line), static_cast<int>(region.begin.column)};
}

std::string key_path(std::string_view prefix, std::string_view key) {
  std::string path(prefix);
  if (!path.empty()) path += '.';
  if (is_bare_key(key)) {
    path += key;
  } else {
    path += '"';
    for (char c : key) {
      if (c == '"' || c == '\\') path += '\\';
      path += c;
    }
    path += '"';
  }
  return path;
}

void Reader::error(Position at, std::string message) {
  errors_.push_back(Diagnostic{file_, at.line, at.column, std::move(message)});
}

void Reader::report_type(const toml::node& value, const std::string& path, std::string_view expected) {
  error(position_of(value.source()),
        "`" + path + "` must be " + std::string(expected) + ", not " + std::string(type_name(value.type())));
}

void Reader::report_bad_choice(const toml::node& value, const std::string& path, std::string_view got,
                               std::span<const std::string_view> allowed) {
  std::string message = "`" + path + "` must be one of " + join(allowed) + " (got \"" + std::string(got) + "\")";
  if (auto hint = closest_match(got, allowed)) message += "; did you mean `" + std::string(*hint) + "`?";
  error(position_of(value.source()), std::move(message));
}

std::optional<std::string> Reader::string(const toml::node& value, const std::string& path) {
  const auto* text = value.as_string();
  if (text == nullptr) {
    report_type(value, path, "a string");
    return std::nullopt;
  }
  auto substituted = substitute_env(text->get(), env_);
  if (!substituted) {
    error(position_of(value.source()), "`" + path + "`: " + substituted.error().message);
    return std::nullopt;
  }
  return std::move(substituted).value();
}

std::optional<std::vector<std::string>> Reader::strings(const toml::node& value, const std::string& path,
                                                        const StringCheck& check) {
  const auto* array = value.as_array();
  if (array == nullptr) {
    report_type(value, path, "an array of strings");
    return std::nullopt;
  }
  std::vector<std::string> out;
  bool ok = true;
  for (std::size_t i = 0; i < array->size(); ++i) {
    const toml::node& element = *array->get(i);
    const std::string element_path = path + "[" + std::to_string(i) + "]";
    auto text = string(element, element_path);
    if (!text) {
      ok = false;
      continue;
    }
    if (check) {
      if (auto problem = check(*text)) {
        error(position_of(element.source()), "`" + element_path + "`: " + *problem);
        ok = false;
        continue;
      }
    }
    out.push_back(std::move(*text));
  }
  if (!ok) return std::nullopt;
  return out;
}

std::optional<int> Reader::integer(const toml::node& value, const std::string& path, int min, int max) {
  const auto* number = value.as_integer();
  if (number == nullptr) {
    report_type(value, path, "an integer");
    return std::nullopt;
  }
  const std::int64_t n = number->get();
  if (n < min || n > max) {
    error(position_of(value.source()), "`" + path + "` must be between " + std::to_string(min) + " and " +
                                           std::to_string(max) + " (got " + std::to_string(n) + ")");
    return std::nullopt;
  }
  return static_cast<int>(n);
}

std::optional<Duration> Reader::duration(const toml::node& value, const std::string& path) {
  const Position at = position_of(value.source());
  if (const auto* seconds = value.as_integer()) {
    const std::int64_t n = seconds->get();
    if (n < 0) {
      error(at, "`" + path + "` must not be negative (got " + std::to_string(n) + "); 0 turns it off");
      return std::nullopt;
    }
    if (n > std::chrono::duration_cast<std::chrono::seconds>(k_max_duration).count()) {
      error(at, "`" + path + "` is too long (got " + std::to_string(n) + " seconds; at most 10 years)");
      return std::nullopt;
    }
    return Duration(std::chrono::seconds(n));
  }
  if (value.as_string() == nullptr) {
    report_type(value, path, "a duration (a string such as \"30s\", or an integer number of seconds)");
    return std::nullopt;
  }
  auto text = string(value, path);
  if (!text) return std::nullopt;
  if (auto parsed = parse_duration(*text)) return parsed;
  if (text->starts_with('-')) {
    error(at, "`" + path + "` must not be negative (got \"" + *text + "\"); \"0\" turns it off");
  } else {
    error(at, "`" + path + "`: \"" + *text +
                  "\" is not a duration: write a whole number with a unit ms, s, m or h (\"500ms\", \"30s\", "
                  "\"15m\", \"1h\", at most 10 years), an integer number of seconds, or \"0\" for off");
  }
  return std::nullopt;
}

const toml::table* Reader::table(const toml::node& value, const std::string& path) {
  const auto* t = value.as_table();
  if (t == nullptr) report_type(value, path, "a table");
  return t;
}

void Reader::read_fields(const toml::table& table, std::string_view prefix, std::span<const Field> fields) {
  std::vector<std::string_view> known;
  for (const auto& field : fields) known.push_back(field.name);
  for (const auto& [key, value] : table) {
    const std::string path = key_path(prefix, key.str());
    const Field* field = nullptr;
    for (const auto& candidate : fields) {
      if (candidate.name == key.str()) field = &candidate;
    }
    if (field == nullptr) {
      std::string message = "unknown key `" + path + "`";
      if (auto hint = closest_match(key.str(), known)) message += "; did you mean `" + std::string(*hint) + "`?";
      error(position_of(key.source()), std::move(message));
      continue;
    }
    remember(path, position_of(value.source()));
    const auto errors_before = errors_.size();
    field->read(value, path);
    if (errors_.size() != errors_before) failed_.insert(path);
  }
}

Position Reader::where(std::initializer_list<std::string_view> paths) const {
  for (auto path : paths) {
    if (auto it = positions_.find(path); it != positions_.end() && it->second.line > 0) return it->second;
  }
  return {};
}

}  // namespace pgweir::config::detail
