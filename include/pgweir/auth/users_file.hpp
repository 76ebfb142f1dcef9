// users_file: the PgBouncer userlist.txt format, one `"user" "secret"` per line.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pgweir/auth/scram.hpp"

namespace pgweir::auth {

enum class SecretKind { plain, md5, scram };

struct UserSecret {
  SecretKind kind = SecretKind::plain;
  std::string text;                    // as written in the file (plain password, "md5…" or "SCRAM-SHA-256$…")
  std::optional<ScramSecret> scram;    // parsed verifier, or derived once from a plain password
  std::optional<std::string> md5;      // "md5…" for md5 secrets, or derived once from a plain password
  bool is_plain() const { return kind == SecretKind::plain; }
};

struct UsersFileError {
  int line = 0;
  int column = 0;
  std::string message;
};

struct UsersFile {
  std::map<std::string, UserSecret, std::less<>> users;
  std::vector<UsersFileError> errors;  // empty when the whole file parsed
  const UserSecret* find(std::string_view user) const;
};

// Parses the text of a users file. Lines: `"name" "secret"` with `""` as an escaped quote inside a field;
// blank lines and lines starting with ';' or '#' are ignored; anything after the second field is ignored.
// A line that does not parse is reported (line, column, message) and skipped. Verifiers for plain passwords are
// derived here, once, with limits::k_scram_iterations.
UsersFile parse_users_file(std::string_view text);

}  // namespace pgweir::auth
