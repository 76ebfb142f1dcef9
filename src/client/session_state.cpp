// detect_session_state: tokenises SQL text (skipping strings, quoted identifiers, dollar quotes and comments)
// and checks the leading keywords of each statement, and every identifier for session advisory-lock functions.
#include "session_state.hpp"

#include <array>
#include <cctype>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace pgweir::client {
namespace {

// Parameters whose values PostgreSQL reports and pgweir re-applies on another server connection.
constexpr std::array<std::string_view, 6> k_restorable = {"client_encoding", "datestyle", "timezone",
                                                          "intervalstyle", "standard_conforming_strings",
                                                          "application_name"};

constexpr auto k_ident = [] {
  std::array<bool, 256> t{};
  for (int c = 0; c < 256; ++c)
    t[c] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '$';
  return t;
}();

bool ident_char(char c) { return k_ident[static_cast<unsigned char>(c)]; }

char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// A word of the statement as written: unquoted words match keywords in any case, quoted ones exactly.
struct Word {
  std::string_view text;
  bool quoted = false;
  bool is(std::string_view keyword) const {  // keyword: lower case
    if (text.size() != keyword.size()) return false;
    if (quoted) return text == keyword;
    for (std::size_t i = 0; i < text.size(); ++i)
      if (ascii_lower(text[i]) != keyword[i]) return false;
    return true;
  }
};

// The lexer runs on every Query and Parse in transaction mode: it keeps views into the SQL, never copies.
struct Statement {
  std::array<Word, 4> words;  // the leading keywords and identifiers
  std::size_t count = 0;
  bool advisory = false;
  bool with_hold = false;
  void add(Word w) {
    if (count < words.size()) words[count++] = w;
  }
};

std::optional<std::string_view> judge(const Statement& st) {
  if (st.advisory) return "advisory_lock";
  static const Word none;
  auto at = [&](std::size_t i) -> const Word& { return i < st.count ? st.words[i] : none; };
  const Word& k0 = at(0);
  if (k0.is("listen")) return "listen";
  if (k0.is("prepare")) return at(1).is("transaction") ? std::nullopt : std::optional<std::string_view>("prepare");
  if (k0.is("declare")) return st.with_hold ? std::optional<std::string_view>("hold_cursor") : std::nullopt;
  if (k0.is("create")) {
    // CREATE [GLOBAL | LOCAL] {TEMP | TEMPORARY} …; a table merely named "temp" comes after TABLE.
    auto is_temp = [](const Word& word) { return word.is("temp") || word.is("temporary"); };
    if (is_temp(at(1)) || ((at(1).is("global") || at(1).is("local")) && is_temp(at(2)))) return "temp_table";
    return std::nullopt;
  }
  if (k0.is("set")) {
    std::size_t i = 1;
    if (at(1).is("local") || at(1).is("transaction") || at(1).is("constraints")) return std::nullopt;
    if (at(1).is("session")) {
      if (at(2).is("authorization")) return "role";
      if (at(2).is("characteristics")) return "set";
      i = 2;
    }
    const Word& name = at(i);
    if (name.is("role")) return "role";
    if (name.is("time") && at(i + 1).is("zone")) return std::nullopt;
    if (name.is("names")) return std::nullopt;  // client_encoding
    for (auto r : k_restorable)
      if (name.is(r)) return std::nullopt;
    return "set";
  }
  return std::nullopt;
}

bool blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; }

// The quick pass's one look at every byte: finds the first ';' and each 'v' in either case (the rare letter of
// "advisory"), 16 bytes per step where SSE2 is there. OR-ing 0x20 folds 'V' onto 'v' and leaves ';' as it is (it
// also maps ESC onto ';', which mark() tells apart). False when the word "advisory" is there.
bool scan_marks(std::string_view sql, std::size_t& semicolon) {
  semicolon = std::string_view::npos;
  constexpr std::string_view advisory = "advisory";
  auto mark = [&](std::size_t at) {
    if (sql[at] == ';') {
      if (semicolon == std::string_view::npos) semicolon = at;
      return true;
    }
    return !(at >= 2 && Word{sql.substr(at - 2, advisory.size())}.is(advisory));
  };
#if defined(__SSE2__)
  const __m128i fold = _mm_set1_epi8(0x20);
  const __m128i v = _mm_set1_epi8('v');
  const __m128i semi = _mm_set1_epi8(';');
  auto step = [&](const char* bytes, std::size_t at) {
    __m128i x = _mm_or_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes)), fold);
    auto bits = static_cast<unsigned>(_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(x, v), _mm_cmpeq_epi8(x, semi))));
    for (; bits != 0; bits &= bits - 1)
      if (!mark(at + static_cast<std::size_t>(__builtin_ctz(bits)))) return false;
    return true;
  };
  std::size_t i = 0;
  for (; i + 16 <= sql.size(); i += 16)
    if (!step(sql.data() + i, i)) return false;
  if (i == sql.size()) return true;
  // The last bytes, padded with NULs (which fold to ' '): the SQL may end at the end of a mapping.
  alignas(16) char tail[16] = {};
  std::memcpy(tail, sql.data() + i, sql.size() - i);
  return step(tail, i);
#else
  for (std::size_t i = 0; i < sql.size(); ++i) {
    char c = static_cast<char>(sql[i] | 0x20);
    if ((c == 'v' || c == ';') && !mark(i)) return false;
  }
  return true;
#endif
}

// Most SQL is one statement that starts with none of the keywords judge() looks at (LISTEN, PREPARE, DECLARE,
// CREATE, SET) and names no advisory lock: that is settled in one quick pass, without the lexer. Anything else
// (several statements, a leading comment, the word "advisory" anywhere) goes to the lexer.
bool plainly_stateless(std::string_view sql) {
  std::size_t semicolon;
  if (!scan_marks(sql, semicolon)) return false;
  if (semicolon != std::string_view::npos) {
    for (auto i = semicolon; i < sql.size(); ++i)
      if (sql[i] != ';' && !blank(sql[i])) return false;  // a second statement
  }
  std::size_t first = 0;
  while (first < sql.size() && blank(sql[first])) ++first;
  if (first == sql.size()) return true;
  if (sql[first] == '-' || sql[first] == '/') return false;  // a comment before the first word
  // The keywords are at most 7 letters: a longer first word is none of them, however long it is.
  auto end = first;
  while (end < sql.size() && end - first < 8 && ident_char(sql[end])) ++end;
  Word word{sql.substr(first, end - first)};
  return !(word.is("listen") || word.is("prepare") || word.is("declare") || word.is("create") || word.is("set"));
}

}  // namespace

std::optional<std::string_view> detect_session_state(std::string_view sql) {
  if (plainly_stateless(sql)) return std::nullopt;
  Statement st;
  std::size_t i = 0;
  Word prev_word;
  while (i < sql.size()) {
    char c = sql[i];
    if (c == ';') {
      if (auto r = judge(st)) return r;
      st = Statement{};
      prev_word = Word{};
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
      st.add(Word{ident, true});
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
      Word word{sql.substr(start, i - start)};
      if (word.is("pg_advisory_lock") || word.is("pg_advisory_lock_shared") || word.is("pg_try_advisory_lock") ||
          word.is("pg_try_advisory_lock_shared"))
        st.advisory = true;
      if (word.is("hold") && prev_word.is("with")) st.with_hold = true;
      st.add(word);
      prev_word = word;
    } else {
      ++i;
    }
  }
  return judge(st);
}

}  // namespace pgweir::client
