// The users file (PgBouncer's userlist.txt format): parsing, secret kind detection, and deriving SCRAM and md5
// secrets for plain passwords once at load time rather than on every login.
#include "pgweir/auth/users_file.hpp"

#include <utility>

#include "crypto.hpp"
#include "pgweir/core/limits.hpp"

namespace pgweir::auth {

namespace {

constexpr std::string_view k_scram_prefix = "SCRAM-SHA-256$";

struct QuotedField {
  std::string value;
  std::size_t value_start = 0;  // offset of the first byte after the opening quote
  bool had_escapes = false;
};

bool is_blank(char c) { return c == ' ' || c == '\t'; }

std::size_t skip_blanks(std::string_view line, std::size_t pos) {
  while (pos < line.size() && is_blank(line[pos])) ++pos;
  return pos;
}

// line[pos] is the opening quote. Returns the field and moves pos past the closing quote; nullopt if unterminated.
std::optional<QuotedField> read_quoted(std::string_view line, std::size_t& pos) {
  QuotedField field;
  field.value_start = pos + 1;
  for (std::size_t i = pos + 1; i < line.size(); ++i) {
    if (line[i] != '"') {
      field.value += line[i];
    } else if (i + 1 < line.size() && line[i + 1] == '"') {
      field.value += '"';
      field.had_escapes = true;
      ++i;
    } else {
      pos = i + 1;
      return field;
    }
  }
  return std::nullopt;
}

int column(std::size_t offset) { return static_cast<int>(offset) + 1; }

class Parser {
 public:
  UsersFile run(std::string_view text) {
    int line_no = 0;
    for (std::size_t start = 0; start < text.size();) {
      std::size_t end = text.find('\n', start);
      if (end == std::string_view::npos) end = text.size();
      std::string_view line = text.substr(start, end - start);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      parse_line(++line_no, line);
      start = end + 1;
    }
    return std::move(result_);
  }

 private:
  void error(int line_no, std::size_t offset, std::string message) {
    result_.errors.push_back(UsersFileError{line_no, column(offset), std::move(message)});
  }

  void parse_line(int line_no, std::string_view line) {
    std::size_t pos = skip_blanks(line, 0);
    if (pos == line.size() || line[pos] == ';' || line[pos] == '#') return;
    if (line[pos] != '"') return error(line_no, pos, "expected '\"' to open the user name");

    std::size_t user_quote = pos;
    auto user = read_quoted(line, pos);
    if (!user) return error(line_no, user_quote, "unterminated quoted user name");
    if (user->value.empty()) return error(line_no, user->value_start, "empty user name");

    // A quote straight after the closing one would have been an escaped quote, so a quote here follows a blank.
    pos = skip_blanks(line, pos);
    if (pos == line.size()) return error(line_no, pos, "expected the secret after the user name");
    if (line[pos] != '"') return error(line_no, pos, "expected '\"' to open the secret");

    std::size_t secret_quote = pos;
    auto secret = read_quoted(line, pos);
    if (!secret) return error(line_no, secret_quote, "unterminated quoted secret");
    if (secret->value.empty()) return error(line_no, secret->value_start, "empty secret");

    // Checked before classify so a duplicate doesn't cost a PBKDF2 derivation.
    if (auto it = defined_on_.find(user->value); it != defined_on_.end()) {
      return error(line_no, user->value_start,
                   "user \"" + user->value + "\" is already defined on line " + std::to_string(it->second));
    }
    auto user_secret = classify(line_no, user->value, *secret);
    if (!user_secret) return;
    defined_on_.emplace(user->value, line_no);
    result_.users.emplace(std::move(user->value), std::move(*user_secret));
  }

  std::optional<UserSecret> classify(int line_no, const std::string& user, const QuotedField& secret) {
    UserSecret out;
    out.text = secret.value;
    if (detail::is_md5_secret(secret.value)) {
      out.kind = SecretKind::md5;
      out.md5 = secret.value;
    } else if (secret.value.starts_with(k_scram_prefix)) {
      std::size_t offset = 0;
      auto verifier = detail::parse_scram_secret(secret.value, offset);
      if (!verifier) {
        // Offsets inside the value only line up with the file when no "" escape shifted them.
        error(line_no, secret.value_start + (secret.had_escapes ? 0 : offset), verifier.error().message);
        return std::nullopt;
      }
      out.kind = SecretKind::scram;
      out.scram = std::move(*verifier);
    } else {
      out.kind = SecretKind::plain;
      out.scram = make_scram_secret(secret.value, limits::k_scram_iterations);
      out.md5 = md5_secret(user, secret.value);
    }
    return out;
  }

  UsersFile result_;
  std::map<std::string, int, std::less<>> defined_on_;
};

}  // namespace

const UserSecret* UsersFile::find(std::string_view user) const {
  auto it = users.find(user);
  return it == users.end() ? nullptr : &it->second;
}

UsersFile parse_users_file(std::string_view text) { return Parser{}.run(text); }

}  // namespace pgweir::auth
