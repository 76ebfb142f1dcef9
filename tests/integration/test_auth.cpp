// Integration tests, SPEC §2 [auth]/[databases] and §3 authentication: how clients log in to pgweir
// (trust, md5, scram-sha-256 with a users_file) and how pgweir logs in to PostgreSQL (scram, md5, password).
#include "common.hpp"

namespace pgweir::test {
namespace {

// One pgweir in session mode in front of the shared cluster; `auth` is the [auth] table's body.
std::string client_auth_config(const std::string& auth) {
  return with_cluster(R"(
[server]
listen = ["127.0.0.1:@PORT@"]
workers = 2
worker_fill = 0  # clients alternate between the two workers
shutdown_timeout = "5s"

[tls]
mode = "disable"

[auth]
)" + auth + R"(

[pool]
mode = "session"
size = 5
max_overflow = 0

[metrics]
listen = ""

[databases.appdb]
dsn = "postgresql://127.0.0.1:@PGPORT@/postgres?sslmode=disable"
)");
}

// Roles the client-side tests log in as; PostgreSQL trusts them, so only pgweir checks passwords.
struct ClientUsers {
  std::string md5_hash;       // "md5" + md5hex(password + user) for a_md5
  std::string scram_verifier; // pg_authid's SCRAM verifier for a_scram
};

const ClientUsers& client_users() {
  static const ClientUsers users = [] {
    auto& pg = shared_cluster();
    pg.create_role("a_plain", "plain-secret");
    pg.create_role("a_md5", "md5-secret", "md5");
    pg.create_role("a_scram", "scram-secret", "scram-sha-256");
    ClientUsers u;
    u.md5_hash = pg.exec("SELECT 'md5' || md5('md5-secret' || 'a_md5')");
    u.scram_verifier = pg.role_secret("a_scram");
    REQUIRE_MESSAGE(u.scram_verifier.rfind("SCRAM-SHA-256$4096:", 0) == 0,
                    "expected a SCRAM verifier from pg_authid, got " << u.scram_verifier);
    REQUIRE_MESSAGE(u.md5_hash == pg.role_secret("a_md5"),
                    "md5 hash computed in SQL " << u.md5_hash << " differs from pg_authid's " << pg.role_secret("a_md5"));
    return u;
  }();
  return users;
}

std::string users_file_text() {
  const auto& u = client_users();
  return "\"a_plain\" \"plain-secret\"\n"
         "\"a_md5\" \"" + u.md5_hash + "\"\n"
         "\"a_scram\" \"" + u.scram_verifier + "\"\n";
}

std::string normalise_user(std::string message, const std::string& user) {
  return substitute(std::move(message), {{user, "<user>"}});
}

// The right password logs in as the user; wrong password, unknown user and unknown database are refused
// the way SPEC §3 says (28P01, no enumeration, 3D000 only after authentication).
void check_password_login(Pgweir& p, const std::string& user, const std::string& password) {
  CAPTURE(user);
  auto good = connect_and_query(p.conninfo("appdb", user, password), "SELECT current_user");
  CHECK_MESSAGE(good.ok, "right password for " << user << " was refused: " << good.error.sqlstate << " "
                                               << good.error.message);
  CHECK_MESSAGE(good.value() == user, "SELECT current_user: expected " << user << ", got " << good.value());

  auto wrong = connect_and_query(p.conninfo("appdb", user, password + "-wrong"), "SELECT 1");
  CHECK_MESSAGE(!wrong.ok, "a wrong password for " << user << " was accepted");
  CHECK_MESSAGE(wrong.error.sqlstate == "28P01", "wrong password: expected SQLSTATE 28P01, got "
                                                     << wrong.error.sqlstate << " " << wrong.error.message);

  auto unknown = connect_and_query(p.conninfo("appdb", "no_such_user", password), "SELECT 1");
  CHECK_MESSAGE(!unknown.ok, "unknown user was accepted");
  CHECK_MESSAGE(unknown.error.sqlstate == wrong.error.sqlstate,
                "unknown user: expected the wrong-password SQLSTATE " << wrong.error.sqlstate << ", got "
                                                                      << unknown.error.sqlstate);
  CHECK_MESSAGE(normalise_user(unknown.error.message, "no_such_user") == normalise_user(wrong.error.message, user),
                "unknown user must get the same text as a wrong password:\n  wrong password: "
                    << wrong.error.message << "\n  unknown user:   " << unknown.error.message);

  auto no_db = connect_and_query(p.conninfo("no_such_db", user, password), "SELECT 1");
  CHECK_MESSAGE(!no_db.ok, "unknown database was accepted");
  CHECK_MESSAGE(no_db.error.sqlstate == "3D000", "unknown database with the right password: expected SQLSTATE 3D000, got "
                                                     << no_db.error.sqlstate << " " << no_db.error.message);

  auto no_db_wrong = connect_and_query(p.conninfo("no_such_db", user, password + "-wrong"), "SELECT 1");
  CHECK_MESSAGE(no_db_wrong.error.sqlstate == "28P01",
                "unknown database with a wrong password must be an authentication failure (28P01), got "
                    << no_db_wrong.error.sqlstate << " " << no_db_wrong.error.message);
  CHECK_MESSAGE(normalise_user(no_db_wrong.error.message, user) == normalise_user(wrong.error.message, user),
                "unknown database + wrong password must read like a wrong password:\n  wrong password: "
                    << wrong.error.message << "\n  unknown db:     " << no_db_wrong.error.message);
}

TEST_CASE("auth.method = trust lets any listed user in without a password check") {
  client_users();
  TempDir files;
  auto users = files.write("userlist.txt", users_file_text());
  Pgweir p(client_auth_config("method = \"trust\"\nusers_file = \"" + users + "\""));
  PGWEIR_LOG_ON_FAILURE(p);

  for (const std::string user : {"a_plain", "a_md5"}) {
    auto r = connect_and_query(p.conninfo("appdb", user, "anything"), "SELECT current_user");
    CHECK_MESSAGE(r.ok, "trust login as " << user << " failed: " << r.error.sqlstate << " " << r.error.message);
    CHECK_MESSAGE(r.value() == user, "SELECT current_user: expected " << user << ", got " << r.value());
  }
  auto no_db = connect_and_query(p.conninfo("no_such_db", "a_plain", "anything"), "SELECT 1");
  CHECK_MESSAGE(no_db.error.sqlstate == "3D000",
                "unknown database: expected SQLSTATE 3D000, got " << no_db.error.sqlstate << " " << no_db.error.message);
}

TEST_CASE("auth.method = md5 with plain and md5-hashed users_file secrets") {
  TempDir files;
  auto users = files.write("userlist.txt", users_file_text());
  Pgweir p(client_auth_config("method = \"md5\"\nusers_file = \"" + users + "\""));
  PGWEIR_LOG_ON_FAILURE(p);

  SUBCASE("plain secret") { check_password_login(p, "a_plain", "plain-secret"); }
  SUBCASE("md5 hash secret") { check_password_login(p, "a_md5", "md5-secret"); }
}

TEST_CASE("auth.method = scram-sha-256 with plain and SCRAM verifier users_file secrets") {
  TempDir files;
  auto users = files.write("userlist.txt", users_file_text());
  Pgweir p(client_auth_config("method = \"scram-sha-256\"\nusers_file = \"" + users + "\""));
  PGWEIR_LOG_ON_FAILURE(p);

  SUBCASE("plain secret") { check_password_login(p, "a_plain", "plain-secret"); }
  SUBCASE("SCRAM verifier secret") { check_password_login(p, "a_scram", "scram-secret"); }
}

// ---- server side: pgweir logging in to PostgreSQL ----

struct ServerRole {
  std::string name, password, storage, hba_method;
};

const std::vector<ServerRole>& server_roles() {
  static const std::vector<ServerRole> roles = [] {
    std::vector<ServerRole> r{{"s_scram", "scram-pw", "scram-sha-256", "scram-sha-256"},
                              {"s_md5", "md5-pw", "md5", "md5"},
                              {"s_clear", "clear-pw", "scram-sha-256", "password"}};
    auto& pg = shared_cluster();
    for (const auto& role : r) {
      pg.create_role(role.name, role.password, role.storage);
      pg.hba(role.name, role.hba_method);
    }
    return r;
  }();
  return roles;
}

TEST_CASE("pgweir logs in to PostgreSQL with scram-sha-256, md5 and cleartext password") {
  auto& pg = shared_cluster();
  const auto& roles = server_roles();
  for (const auto& role : roles) {
    auto direct = connect_and_query(pg.conninfo("postgres", role.name, "wrong"), "SELECT 1");
    REQUIRE_MESSAGE(direct.error.sqlstate == "28P01", "PostgreSQL should demand " << role.hba_method << " from "
                                                          << role.name << ", but a wrong password gave: "
                                                          << direct.error.sqlstate << " " << direct.error.message);
  }

  TempDir files;
  std::string users = "\"app_client\" \"app-pw\"\n";
  std::string databases;
  for (const auto& role : roles) {
    users += "\"" + role.name + "\" \"" + role.password + "\"\n";
    auto pw_file = files.write(role.name + ".pw", role.password + "\n");
    auto server = "127.0.0.1:@PGPORT@/postgres?sslmode=disable";
    databases += "[databases." + role.name + "_pw]\ndsn = \"postgresql://" + role.name + "@" + server +
                 "\"\npassword = \"" + role.password + "\"\n\n";
    databases += "[databases." + role.name + "_file]\ndsn = \"postgresql://" + role.name + "@" + server +
                 "\"\npassword_file = \"" + pw_file + "\"\n\n";
    databases += "[databases." + role.name + "_client]\ndsn = \"postgresql://" + std::string(server) + "\"\n\n";
    databases += "[databases." + role.name + "_badpw]\ndsn = \"postgresql://" + role.name + "@" + server +
                 "\"\npassword = \"not-" + role.password + "\"\nconnect_timeout = \"2s\"\ntimeout = \"2s\"\n\n";
  }
  auto users_file = files.write("userlist.txt", users);
  Pgweir p(with_cluster(R"(
[server]
listen = ["127.0.0.1:@PORT@"]
shutdown_timeout = "5s"

[tls]
mode = "disable"

[auth]
method = "scram-sha-256"
users_file = ")" + users_file + R"("

[pool]
mode = "session"
size = 2
max_overflow = 0

[metrics]
listen = ""

)" + databases));
  PGWEIR_LOG_ON_FAILURE(p);

  for (const auto& role : roles) {
    CAPTURE(role.name);
    CAPTURE(role.hba_method);
    for (const std::string variant : {"_pw", "_file"}) {
      auto r = connect_and_query(p.conninfo(role.name + variant, "app_client", "app-pw"), "SELECT current_user");
      CHECK_MESSAGE(r.ok, "database " << role.name << variant << " (server auth " << role.hba_method
                                      << "): " << r.error.sqlstate << " " << r.error.message);
      CHECK_MESSAGE(r.value() == role.name, "dsn names user " << role.name << ", so current_user should be it, got "
                                                              << r.value());
    }
    auto own = connect_and_query(p.conninfo(role.name + "_client", role.name, role.password), "SELECT current_user");
    CHECK_MESSAGE(own.ok, "database " << role.name << "_client with the client's own password (server auth "
                                      << role.hba_method << "): " << own.error.sqlstate << " " << own.error.message);
    CHECK_MESSAGE(own.value() == role.name, "current_user: expected " << role.name << ", got " << own.value());

    auto bad = connect_and_query(p.conninfo(role.name + "_badpw", "app_client", "app-pw"), "SELECT 1");
    CHECK_MESSAGE(!bad.ok, "database " << role.name << "_badpw has a wrong server password, yet a query succeeded");
  }
}

TEST_CASE("pgweir logs in to PostgreSQL with the client's SCRAM keys when users_file holds a verifier") {
  auto& pg = shared_cluster();
  const auto& roles = server_roles();
  const auto& scram = roles.front();
  REQUIRE(scram.hba_method == "scram-sha-256");
  TempDir files;
  auto users_file = files.write("userlist.txt", "\"" + scram.name + "\" \"" + pg.role_secret(scram.name) + "\"\n");
  Pgweir p(with_cluster(R"(
[server]
listen = ["127.0.0.1:@PORT@"]
shutdown_timeout = "5s"

[tls]
mode = "disable"

[auth]
method = "scram-sha-256"
users_file = ")" + users_file + R"("

[pool]
mode = "session"

[metrics]
listen = ""

[databases.appdb]
dsn = "postgresql://127.0.0.1:@PGPORT@/postgres?sslmode=disable"
)"));
  PGWEIR_LOG_ON_FAILURE(p);
  auto r = connect_and_query(p.conninfo("appdb", scram.name, scram.password), "SELECT current_user");
  CHECK_MESSAGE(r.ok, "SCRAM pass-through login failed: " << r.error.sqlstate << " " << r.error.message);
  CHECK_MESSAGE(r.value() == scram.name, "current_user: expected " << scram.name << ", got " << r.value());
}

}  // namespace
}  // namespace pgweir::test
