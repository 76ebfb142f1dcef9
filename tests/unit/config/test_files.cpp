// Files a config points at: password_file contents, and readability of TLS, users and hba files.
#include <doctest/doctest.h>
#include <unistd.h>

#include "support.hpp"

using namespace pgweir::config;
using namespace pgweir::config::test;

namespace {

LoadResult load_password_file(const std::string& file) {
  return load("[databases.a]\ndsn = \"host=a\"\npassword_file = \"" + file + "\"\n");
}

}  // namespace

TEST_CASE("password_file: one trailing newline is cut") {
  TempDir dir;
  struct Case {
    const char* contents;
    const char* password;
  };
  const Case cases[] = {
      {"secret", "secret"},
      {"secret\n", "secret"},
      {"secret\r\n", "secret"},
      {"secret\n\n", "secret\n"},
      {" spaced secret \n", " spaced secret "},
  };
  for (const auto& c : cases) {
    CAPTURE(c.contents);
    const auto file = dir.write("pw", c.contents);
    const auto result = load_password_file(file);
    const Config& config = ok(result);
    CHECK(config.databases.at("a").password == c.password);
  }
}

TEST_CASE("password_file: relative to the config file's directory") {
  TempDir dir;
  dir.write("pw", "secret\n");
  const auto path =
      dir.write("pgweir.toml", "[tls]\nmode = \"disable\"\n[databases.a]\ndsn = \"host=a\"\npassword_file = \"pw\"\n");
  const auto result = load_file(path, k_no_env);
  CHECK(ok(result).databases.at("a").password == "secret");
}

TEST_CASE("password_file: unreadable files name the file and the OS reason") {
  TempDir dir;
  SUBCASE("missing") {
    const auto file = (dir.path() / "missing").string();
    const auto e = only_error(load_password_file(file));
    CHECK(e.line == 3);
    CHECK(e.column == 17);
    CHECK(e.message == "`databases.a.password_file`: cannot read `" + file + "`: No such file or directory");
  }
  SUBCASE("a directory") {
    const auto e = only_error(load_password_file(dir.path().string()));
    CHECK(contains(e.message, "not a regular file"));
  }
  SUBCASE("no permission") {
    if (::geteuid() == 0) return;  // root reads it anyway
    const auto file = dir.write("pw", "secret");
    std::filesystem::permissions(file, std::filesystem::perms::none);
    CHECK(contains(only_error(load_password_file(file)).message, "Permission denied"));
  }
  SUBCASE("empty") {
    const auto file = dir.write("pw", "\n");
    CHECK(contains(only_error(load_password_file(file)).message, "is empty"));
  }
}

TEST_CASE("password: from the environment") {
  const auto result = load("[databases.a]\ndsn = \"host=a\"\npassword = \"${PW}\"\n", env_of({{"PW", "from-env"}}));
  CHECK(ok(result).databases.at("a").password == "from-env");
  const auto empty = only_error(load("[databases.a]\ndsn = \"host=a\"\npassword = \"${PW:-}\"\n"));
  CHECK(empty.line == 3);
  CHECK(empty.message == "`databases.a.password` is empty; leave it out instead");
  const auto none = load("[databases.a]\ndsn = \"host=a\"\n");
  CHECK_FALSE(ok(none).databases.at("a").password.has_value());
}

TEST_CASE("tls files: must be readable unless tls is disabled") {
  TempDir dir;
  const auto cert = dir.write("server.crt", "cert");
  const auto key = dir.write("server.key", "key");
  const auto missing = (dir.path() / "nope.pem").string();
  const auto tls = [&](const std::string& mode, const std::string& cert_file, const std::string& key_file,
                       const std::string& ca_file = "") {
    return load("[tls]\nmode = \"" + mode + "\"\ncert_file = \"" + cert_file + "\"\nkey_file = \"" + key_file +
                "\"\nca_file = \"" + ca_file + "\"\n");
  };
  SUBCASE("readable") {
    CHECK(ok(tls("require", cert, key)).tls.mode == TlsMode::require);
    CHECK(ok(tls("verify-full", cert, key, cert)).tls.ca_file == cert);
  }
  SUBCASE("missing key file") {
    const auto e = only_error(tls("prefer", cert, missing));
    CHECK(e.line == 4);
    CHECK(e.column == 12);
    CHECK(e.message == "`tls.key_file`: cannot read `" + missing + "`: No such file or directory");
  }
  SUBCASE("missing ca file") {
    const auto e = only_error(tls("verify-ca", cert, key, missing));
    CHECK(e.line == 5);
    CHECK(contains(e.message, "`tls.ca_file`: cannot read"));
  }
  SUBCASE("disabled: not looked at") {
    CHECK(ok(tls("disable", missing, missing, missing)).tls.mode == TlsMode::disable);
  }
}

TEST_CASE("auth files: must be readable when set") {
  TempDir dir;
  const auto users = dir.write("userlist.txt", "\"u\" \"p\"\n");
  const auto missing = (dir.path() / "nope").string();
  CHECK(ok(load("[auth]\nusers_file = \"" + users + "\"\n")).auth.users_file == users);
  const auto e = only_error(load("[auth]\nusers_file = \"" + missing + "\"\n"));
  CHECK(e.line == 2);
  CHECK(e.message == "`auth.users_file`: cannot read `" + missing + "`: No such file or directory");
  const auto hba = only_error(load("[auth]\nmethod = \"hba\"\nhba_file = \"" + missing + "\"\n"));
  CHECK(hba.line == 3);
  CHECK(contains(hba.message, "`auth.hba_file`: cannot read"));
}
