// Reading PgBouncer's ini dialect and the libpq-style `key=value` strings inside its [databases] and [users] entries.
#include <cctype>

#include "pgweir/migrate/pgbouncer.hpp"

namespace pgweir::migrate {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// PgBouncer quotes database names as SQL identifiers: "my db", with "" for a literal quote.
std::string unquote_identifier(std::string_view key) {
  if (key.size() < 2 || key.front() != '"' || key.back() != '"') return std::string(key);
  std::string out;
  for (std::size_t i = 1; i + 1 < key.size(); ++i) {
    out += key[i];
    if (key[i] == '"' && i + 2 < key.size() && key[i + 1] == '"') ++i;
  }
  return out;
}

}  // namespace

IniFile parse_ini(std::string_view text) {
  IniFile file;
  std::string section;
  int line_number = 0;
  while (!text.empty()) {
    auto end = text.find('\n');
    std::string_view raw = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
    ++line_number;
    std::string_view line = trim(raw);
    if (line.empty() || line.front() == ';' || line.front() == '#') continue;
    if (line.starts_with("%include")) {
      file.entries.push_back({section, "%include", std::string(trim(line.substr(8))), line_number});
      continue;
    }
    if (line.front() == '[') {
      auto close = line.find(']');
      if (close == std::string_view::npos) {
        file.problems.push_back(std::to_string(line_number) + ": section header without ']'");
        continue;
      }
      section = lower(trim(line.substr(1, close - 1)));
      continue;
    }
    auto eq = line.find('=');
    if (eq == std::string_view::npos) {
      file.problems.push_back(std::to_string(line_number) + ": neither a section, a setting nor a comment");
      continue;
    }
    file.entries.push_back(
        {section, unquote_identifier(trim(line.substr(0, eq))), std::string(trim(line.substr(eq + 1))), line_number});
  }
  return file;
}

bool parse_conn_pairs(std::string_view text, std::vector<ConnPair>& out) {
  std::size_t i = 0;
  const auto skip_space = [&] {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  };
  for (;;) {
    skip_space();
    if (i >= text.size()) return true;
    std::size_t key_start = i;
    while (i < text.size() && text[i] != '=' && !std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    std::string key = lower(text.substr(key_start, i - key_start));
    skip_space();
    if (i >= text.size() || text[i] != '=' || key.empty()) return false;
    ++i;
    skip_space();
    std::string value;
    if (i < text.size() && text[i] == '\'') {
      ++i;
      bool closed = false;
      while (i < text.size()) {
        char c = text[i++];
        if (c == '\\' && i < text.size()) {
          value += text[i++];
        } else if (c == '\'') {
          // PgBouncer writes a quote inside a quoted value as ''; libpq as \'. Both are read.
          if (i < text.size() && text[i] == '\'') {
            value += '\'';
            ++i;
          } else {
            closed = true;
            break;
          }
        } else {
          value += c;
        }
      }
      if (!closed) return false;
    } else {
      while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i]))) {
        if (text[i] == '\\' && i + 1 < text.size()) ++i;
        value += text[i++];
      }
    }
    out.push_back({std::move(key), std::move(value)});
  }
}

}  // namespace pgweir::migrate
