// Converting a PgBouncer configuration (pgbouncer.ini) into an equivalent pgweir.toml (`pgweir --from-pgbouncer`).
// Pure text in, text out: nothing here reads files or the environment.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pgweir::migrate {

// One `key = value` line of a pgbouncer.ini, or a `%include` directive (key "%include").
struct IniEntry {
  std::string section;  // lower-cased: "databases", "users", "pgbouncer", or whatever the file says
  std::string key;      // as written; PgBouncer compares setting names case-insensitively, database names exactly
  std::string value;    // trimmed
  int line = 0;
};

struct IniFile {
  std::vector<IniEntry> entries;
  std::vector<std::string> problems;  // "LINE: text" for lines that are neither a section, a setting nor a comment
};

// PgBouncer's ini dialect: `[section]`, `key = value`, and lines starting with ';' or '#' are comments (those
// characters are not special later in a line, so `server_reset_query = DISCARD ALL; -- x` keeps its ';').
IniFile parse_ini(std::string_view text);

// A libpq-style `key=value key='quoted value'` string, as PgBouncer's [databases] and [users] entries use.
// Keys are lower-cased. Returns false on an unterminated quote or a word without '='.
struct ConnPair {
  std::string key, value;
};
bool parse_conn_pairs(std::string_view text, std::vector<ConnPair>& out);

// A pgweir.toml equivalent to `ini_text`. Every setting either becomes a pgweir key or a comment of the form
// `# pgbouncer: key = value (no equivalent: why)`; where PgBouncer's default differs from pgweir's, the PgBouncer
// default is written out so the converted daemon behaves as before. `source_name` is named in the header comment.
std::string from_pgbouncer(std::string_view ini_text, std::string_view source_name);

}  // namespace pgweir::migrate
