// detect_session_state: tokenises SQL text (skipping strings, quoted identifiers, dollar quotes and comments)
// and checks the leading keywords of each statement, and every identifier for session advisory-lock functions.
#include "session_state.hpp"

#include <array>
#include <cctype>
#include <string>
#include <vector>

namespace pgweir::client {
namespace {

// Parameters whose values PostgreSQL reports and pgweir re-applies on another server connection.
constexpr std::array<std::string_view, 6> k_restorable = {"client_encoding", "datestyle", "timezone",
                                                          "intervalstyle", "standard_conforming_strings",
                                                          "application_name"};

bool ident_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '$'; }

std::string lower(std::string_view v) {
  std::string s(v);
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

struct Statement {
  std::vector<std::string> words;  // leading keywords and identifiers (lowercased), up to a few
  bool advisory = false;
  bool with_hold = false;
};

std::optional<std::string_view> judge(const Statement& st) {
  if (st.advisory) return "advisory_lock";
  const auto& w = st.words;
  auto at = [&](std::size_t i) -> std::string_view { return i < w.size() ? std::string_view(w[i]) : ""; };
  auto k0 = at(0);
  if (k0 == "listen") return "listen";
  if (k0 == "prepare") return at(1) == "transaction" ? std::nullopt : std::optional<std::string_view>("prepare");
  if (k0 == "declare") return st.with_hold ? std::optional<std::string_view>("hold_cursor") : std::nullopt;
  if (k0 == "create") {
    // CREATE [GLOBAL | LOCAL] {TEMP | TEMPORARY} …; a table merely named "temp" comes after TABLE.
    auto is_temp = [](std::string_view word) { return word == "temp" || word == "temporary"; };
    if (is_temp(at(1)) || ((at(1) == "global" || at(1) == "local") && is_temp(at(2)))) return "temp_table";
    return std::nullopt;
  }
  if (k0 == "set") {
    std::size_t i = 1;
    if (at(1) == "local" || at(1) == "transaction" || at(1) == "constraints") return std::nullopt;
    if (at(1) == "session") {
      if (at(2) == "authorization") return "role";
      if (at(2) == "characteristics") return "set";
      i = 2;
    }
    auto name = at(i);
    if (name == "role") return "role";
    if (name == "time" && at(i + 1) == "zone") return std::nullopt;
    if (name == "names") return std::nullopt;  // client_encoding
    for (auto r : k_restorable)
      if (name == r) return std::nullopt;
    return "set";
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string_view> detect_session_state(std::string_view sql) {
  Statement st;
  std::size_t i = 0;
  std::string prev_word;
  while (i < sql.size()) {
    char c = sql[i];
    if (c == ';') {
      if (auto r = judge(st)) return r;
      st = Statement{};
      prev_word.clear();
      ++i;
    } else if (c == '-' && i + 1 < sql.size() && sql[i + 1] == '-') {
      while (i < sql.size() && sql[i] != '\n') ++i;
    } else if (c == '/' && i + 1 < sql.size() && sql[i + 1] == '*') {
      int depth = 1;
      i += 2;
      while (i < sql.size() && depth > 0) {
        if (sql[i] == '/' && i + 1 < sql.size() && sql[i + 1] == '*') {
          ++depth;
          i += 2;
        } else if (sql[i] == '*' && i + 1 < sql.size() && sql[i + 1] == '/') {
          --depth;
          i += 2;
        } else {
          ++i;
        }
      }
    } else if (c == '\'') {
      // E'...' strings may escape quotes with backslashes; '' is an escaped quote in both kinds.
      bool backslash = i > 0 && (sql[i - 1] == 'e' || sql[i - 1] == 'E') && (i < 2 || !ident_char(sql[i - 2]));
      ++i;
      while (i < sql.size()) {
        if (backslash && sql[i] == '\\') {
          i += 2;
        } else if (sql[i] == '\'') {
          if (i + 1 < sql.size() && sql[i + 1] == '\'') {
            i += 2;
          } else {
            ++i;
            break;
          }
        } else {
          ++i;
        }
      }
    } else if (c == '"') {
      auto end = sql.find('"', i + 1);
      std::string_view ident = sql.substr(i + 1, end == std::string_view::npos ? std::string_view::npos : end - i - 1);
      if (st.words.size() < 4) st.words.emplace_back(ident);
      i = end == std::string_view::npos ? sql.size() : end + 1;
    } else if (c == '$' && (i == 0 || !ident_char(sql[i - 1]))) {
      // $tag$ ... $tag$ (or a positional parameter $1, which has no closing $).
      auto close = sql.find('$', i + 1);
      bool is_tag = close != std::string_view::npos;
      for (std::size_t k = i + 1; is_tag && k < close; ++k) is_tag = ident_char(sql[k]) && sql[k] != '$';
      if (is_tag && close > i + 1 && std::isdigit(static_cast<unsigned char>(sql[i + 1])) != 0) is_tag = false;
      if (is_tag) {
        auto tag = sql.substr(i, close - i + 1);
        auto end = sql.find(tag, close + 1);
        i = end == std::string_view::npos ? sql.size() : end + tag.size();
      } else {
        ++i;
        while (i < sql.size() && std::isdigit(static_cast<unsigned char>(sql[i])) != 0) ++i;
      }
    } else if (ident_char(c)) {
      std::size_t start = i;
      while (i < sql.size() && ident_char(sql[i])) ++i;
      auto word = lower(sql.substr(start, i - start));
      if (word == "pg_advisory_lock" || word == "pg_advisory_lock_shared" || word == "pg_try_advisory_lock" ||
          word == "pg_try_advisory_lock_shared")
        st.advisory = true;
      if (word == "hold" && prev_word == "with") st.with_hold = true;
      if (st.words.size() < 4) st.words.push_back(word);
      prev_word = std::move(word);
    } else {
      ++i;
    }
  }
  return judge(st);
}

}  // namespace pgweir::client
