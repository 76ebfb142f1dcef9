// The users file: the userlist.txt format, secret kinds, derived secrets, and errors with line and column.
#include <doctest/doctest.h>

#include "pgweir/auth/users_file.hpp"
#include "pgweir/core/limits.hpp"

namespace auth = pgweir::auth;

namespace {

const std::string k_verifier =
    "SCRAM-SHA-256$4096:8TOcRsMZe6EXbfuJFBLhHw==$uLKhxjdtPHm8zq/AuHgaMYH5k+LGCjH6PU54EfNB8xI=:"
    "El8F590elHqDfKkjYcDma9e71ND/QYwsM09CjY2pkrs=";

// The single error of a one-error file, as "line:col".
std::string only_error(std::string_view text) {
  auto file = auth::parse_users_file(text);
  if (file.errors.size() != 1) return "errors: " + std::to_string(file.errors.size());
  return std::to_string(file.errors[0].line) + ":" + std::to_string(file.errors[0].column);
}

}  // namespace

TEST_CASE("a good file, with every kind of secret") {
  std::string text =
      "; PgBouncer-style comment\n"
      "# shell-style comment\n"
      "\n"
      "\"alice\" \"" + k_verifier + "\"\n"
      "\"bob\" \"md5a2cc14bcc08bcb211f578153967abd6d\"\n"
      "   \"carol\"\t\"plain pass\"   trailing words are ignored\r\n"
      "\"dave\" \"md5A2CC14BCC08BCB211F578153967ABD6D\"\n"
      "\"erin\" \"md5a2cc14bcc08bcb211f578153967abd6\"\n"
      "  ; indented comment\n"
      "\"frank\" \"last line without newline\"";
  auto file = auth::parse_users_file(text);
  CHECK(file.errors.empty());
  CHECK(file.users.size() == 6);

  const auto* alice = file.find("alice");
  REQUIRE(alice);
  CHECK(alice->kind == auth::SecretKind::scram);
  CHECK(alice->text == k_verifier);
  REQUIRE(alice->scram);
  CHECK(auth::format_scram_secret(*alice->scram) == k_verifier);
  CHECK_FALSE(alice->md5);

  const auto* bob = file.find("bob");
  REQUIRE(bob);
  CHECK(bob->kind == auth::SecretKind::md5);
  CHECK(bob->md5 == "md5a2cc14bcc08bcb211f578153967abd6d");
  CHECK_FALSE(bob->scram);
  CHECK_FALSE(bob->is_plain());

  const auto* carol = file.find("carol");
  REQUIRE(carol);
  CHECK(carol->is_plain());
  CHECK(carol->text == "plain pass");
  CHECK(carol->md5 == auth::md5_secret("carol", "plain pass"));
  REQUIRE(carol->scram);
  CHECK(carol->scram->iterations == pgweir::limits::k_scram_iterations);
  auto rederived = auth::make_scram_secret("plain pass", carol->scram->salt, carol->scram->iterations);
  CHECK(rederived.stored_key == carol->scram->stored_key);
  CHECK(rederived.server_key == carol->scram->server_key);

  // PostgreSQL only takes lowercase hex, and exactly 32 digits, as md5; anything else is a password.
  CHECK(file.find("dave")->is_plain());
  CHECK(file.find("erin")->is_plain());
  CHECK(file.find("frank")->text == "last line without newline");

  CHECK(file.find("nobody") == nullptr);
  CHECK(file.find("") == nullptr);
}

TEST_CASE("escaped quotes") {
  auto file = auth::parse_users_file("\"o\"\"brien\" \"pa\"\"ss\"\"\"\n\"\"\"\" \"x\"\n");
  CHECK(file.errors.empty());
  REQUIRE(file.find("o\"brien"));
  CHECK(file.find("o\"brien")->text == "pa\"ss\"");
  REQUIRE(file.find("\""));
  CHECK(file.find("\"")->text == "x");
}

TEST_CASE("empty and comment-only files") {
  CHECK(auth::parse_users_file("").users.empty());
  CHECK(auth::parse_users_file("").errors.empty());
  auto file = auth::parse_users_file("\n\n; x\n# y\n   \n\t\n");
  CHECK(file.users.empty());
  CHECK(file.errors.empty());
}

TEST_CASE("malformed lines are reported with line and column") {
  CHECK(only_error("alice \"pw\"") == "1:1");                           // no opening quote
  CHECK(only_error("\n  alice \"pw\"") == "2:3");
  CHECK(only_error("\"alice \"pw\"") == "1:9");  // the user name is `alice `, then pw" is unquoted
  CHECK(only_error("\"alice") == "1:1");                                // unterminated user name
  CHECK(only_error("\"alice\"") == "1:8");                              // no secret
  CHECK(only_error("\"alice\"   ") == "1:11");
  CHECK(only_error("\"alice\" pw") == "1:9");                           // secret unquoted
  CHECK(only_error("\"alice\" \"pw") == "1:9");                         // unterminated secret
  CHECK(only_error("\"\" \"pw\"") == "1:2");                            // empty user name
  CHECK(only_error("\"alice\" \"\"") == "1:10");                        // empty secret
  CHECK(only_error("\"a\" \"x\"\n\"a\" \"y\"") == "2:2");               // duplicate
  CHECK(only_error("\"a\"\"b\"\"") == "1:1");                           // one unterminated field "a"b"...
}

TEST_CASE("malformed SCRAM verifiers point into the verifier") {
  // Column of the iteration count: 1 ("), 2-8 (alice + ") … the secret opens at 9, so the value starts at 10.
  CHECK(only_error("\"alice\" \"SCRAM-SHA-256$x:c2FsdA==$a:b\"") == "1:24");
  auto file = auth::parse_users_file("\"alice\" \"SCRAM-SHA-256$4096:c2FsdA==$short:short\"\n");
  REQUIRE(file.errors.size() == 1);
  CHECK(file.errors[0].line == 1);
  CHECK(file.errors[0].column == 38);  // StoredKey starts after "SCRAM-SHA-256$4096:c2FsdA==$"
  CHECK(file.errors[0].message.find("StoredKey") != std::string::npos);
  CHECK(file.users.empty());
}

TEST_CASE("bad lines are skipped; good lines around them still load") {
  std::string text = "\"a\" \"1\"\nbroken\n\"b\" \"2\"\n\"c\" \"SCRAM-SHA-256$\"\n\"d\" \"3\"\n";
  auto file = auth::parse_users_file(text);
  CHECK(file.users.size() == 3);
  REQUIRE(file.errors.size() == 2);
  CHECK(file.errors[0].line == 2);
  CHECK(file.errors[0].column == 1);
  CHECK(file.errors[1].line == 4);
  CHECK(file.errors[1].column == 20);
  CHECK(file.find("d"));
}

TEST_CASE("a user whose first line was malformed may be defined again") {
  auto file = auth::parse_users_file("\"a\" \"SCRAM-SHA-256$bad\"\n\"a\" \"pw\"\n\"a\" \"again\"\n");
  REQUIRE(file.errors.size() == 2);
  CHECK(file.errors[0].line == 1);
  CHECK(file.errors[1].line == 3);
  CHECK(file.errors[1].message.find("line 2") != std::string::npos);
  REQUIRE(file.find("a"));
  CHECK(file.find("a")->text == "pw");
}
