// Integration tests, SPEC §2 [tls] and §3 protocol behaviour: client TLS (SSLRequest, direct TLS with ALPN,
// channel binding, client certificates), server TLS following the DSN's sslmode, the CVE-2021-23214/23222
// classes of plaintext injection around the TLS handshake, and auth.method = "hba".
#include "common.hpp"
#include "tls_support.hpp"

#include <libpq-fe.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>

namespace pgweir::test {
namespace {

const std::string k_password = "tls-secret";

// ---- configuration ----

std::string tls_section(const std::string& mode, bool with_ca = false) {
  auto& pki = shared_pki();
  if (mode == "disable") return "mode = \"disable\"\n";
  std::string s = "mode = \"" + mode + "\"\ncert_file = \"" + pki.pgweir_server.cert + "\"\nkey_file = \"" +
                  pki.pgweir_server.key + "\"\n";
  if (with_ca) s += "ca_file = \"" + pki.ca_cert + "\"\n";
  return s;
}

// A [databases.NAME] table whose dsn is a libpq key=value string.
std::string database(const std::string& name, const std::string& dsn) {
  return "\n[databases." + name + "]\ndsn = '" + dsn + "'\n";
}

// The shared cluster over TCP with the given TLS settings (`host` = localhost or 127.0.0.1).
std::string pg_dsn(const std::string& ssl, const std::string& host = "localhost") {
  return "host=" + host + " port=" + std::to_string(shared_cluster().port()) + " dbname=postgres " + ssl;
}

std::string verify_full_dsn() { return pg_dsn("sslmode=verify-full sslrootcert=" + shared_pki().ca_cert); }
std::string plain_dsn() { return pg_dsn("sslmode=disable", "127.0.0.1"); }

std::string daemon_config(const std::string& tls, const std::string& auth, const std::string& databases,
                          const std::string& server_extra = "") {
  return with_cluster(R"(
[server]
listen = ["127.0.0.1:@PORT@"]
workers = 2
worker_fill = 0  # clients alternate between the two workers
shutdown_timeout = "5s"
)" + server_extra + R"(

[tls]
)" + tls + R"(

[auth]
)" + auth + R"(

[pool]
mode = "session"
size = 5
max_overflow = 0

[metrics]
listen = ""
)" + databases);
}

// ---- roles ----

// Login roles for these tests, with `k_password`; PostgreSQL trusts them unless a test says otherwise.
void ensure_roles(std::initializer_list<std::string> names) {
  auto& pg = shared_cluster();
  for (const auto& n : names) {
    if (pg.exec("SELECT count(*) FROM pg_roles WHERE rolname = '" + n + "'") == "0") pg.create_role(n, k_password);
  }
}

std::string users_file(const TempDir& dir, std::initializer_list<std::string> names) {
  std::string text;
  for (const auto& n : names) text += "\"" + n + "\" \"" + k_password + "\"\n";
  return dir.write("userlist.txt", text);
}

// Everything a test needs before its daemon starts: certificates, TLS in PostgreSQL.
void tls_setup() {
  shared_pki();
  enable_postgres_tls();
}

// ---- client-side helpers ----

std::string outcome(const QueryResult& r) {
  if (r.ok) return "success (first value '" + r.value() + "')";
  return "error " + (r.error.sqlstate.empty() ? std::string("(no SQLSTATE)") : r.error.sqlstate) + " " +
         r.error.message;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return lower(haystack).find(lower(needle)) != std::string::npos;
}

std::string ca_opts() { return "sslrootcert=" + conninfo_quote(shared_pki().ca_cert); }

// libpq options that present `pair` as the client certificate.
std::string cert_opts(const CertPair& pair) {
  return "sslcert=" + conninfo_quote(pair.cert) + " sslkey=" + conninfo_quote(pair.key);
}

// No client certificate at all (a file that does not exist is skipped by libpq, whatever ~/.postgresql holds).
std::string no_cert_opts() {
  return "sslcert=" + conninfo_quote(shared_pki().dir() + "/none.crt") + " sslkey=" +
         conninfo_quote(shared_pki().dir() + "/none.key");
}

void expect_login(const std::string& what, const std::string& conninfo, const std::string& user) {
  auto r = connect_and_query(conninfo, "SELECT current_user");
  CHECK_MESSAGE((r.ok && r.value() == user), what << ": expected to log in as " << user << ", got " << outcome(r));
}

// `sqlstate` "" accepts any failure (e.g. a TLS handshake refused before any SQLSTATE could be sent).
void expect_refused(const std::string& what, const std::string& conninfo, const std::string& sqlstate) {
  auto r = connect_and_query(conninfo, "SELECT current_user");
  CHECK_MESSAGE((!r.ok && (sqlstate.empty() || r.error.sqlstate == sqlstate)),
                what << ": expected a refusal" << (sqlstate.empty() ? std::string() : " with SQLSTATE " + sqlstate)
                     << ", got " << outcome(r));
}

RunResult psql(const std::string& conninfo, const std::string& sql, const std::string& password) {
  Env env{{"PGSSLMODE", "disable"}};
  if (!password.empty()) env["PGPASSWORD"] = password;
  return run({pg_bin("psql"), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", conninfo, "-c", sql}, env, 60s);
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

// Reads from a raw socket until the peer closes it or `timeout` passes.
std::string read_until_closed(int fd, std::chrono::milliseconds timeout, bool& closed) {
  std::string out;
  closed = false;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[8192];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return out;
    pollfd p{fd, POLLIN, 0};
    int r = poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) return out;
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      closed = true;
      return out;
    }
    out.append(buf, static_cast<std::size_t>(n));
  }
}

std::string printable(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes) {
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
  }
  return out;
}

bool libpq_knows(const std::string& option) {
  PQconninfoOption* options = PQconndefaults();
  bool found = false;
  for (auto* o = options; o && o->keyword; ++o) found = found || option == o->keyword;
  PQconninfoFree(options);
  return found;
}

const std::string k_ssl_query = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";

}  // namespace

// ---------------------------------------------------------------------------------------------------- 1, 2

TEST_CASE("psql with sslmode=verify-full and channel_binding=require logs in with SCRAM; the server leg is TLS") {
  tls_setup();
  ensure_roles({"tls_scram"});
  // PostgreSQL itself asks the role for SCRAM too, so pgweir's server login is exercised over TLS as well.
  shared_cluster().hba("tls_scram", "scram-sha-256");
  TempDir files;
  Pgweir p(daemon_config(tls_section("require"),
                         "method = \"scram-sha-256\"\nusers_file = \"" + users_file(files, {"tls_scram"}) + "\"",
                         database("tlsdb", verify_full_dsn())));
  PGWEIR_LOG_ON_FAILURE(p);

  auto conninfo = p.conninfo("tlsdb", "tls_scram", "",
                             "host=localhost sslmode=verify-full " + ca_opts() + " channel_binding=require");
  auto r = psql(conninfo, "SELECT current_user", k_password);
  CHECK_MESSAGE(r.exit_code == 0, "psql (" << conninfo << ") expected exit 0, got " << r.exit_code << ":\n"
                                           << r.output);
  CHECK_MESSAGE(trimmed(r.output) == "tls_scram",
                "SELECT current_user: expected tls_scram, got '" << trimmed(r.output) << "'");

  auto ssl = psql(conninfo, k_ssl_query, k_password);
  CHECK_MESSAGE(ssl.exit_code == 0, "psql expected exit 0, got " << ssl.exit_code << ":\n" << ssl.output);
  CHECK_MESSAGE(trimmed(ssl.output) == "t", "pg_stat_ssl.ssl of pgweir's server connection (dsn sslmode=verify-full): "
                                            "expected t, got '" << trimmed(ssl.output) << "'");

  // The same through libpq, checking the client leg really is TLS.
  PgConn c(p.conninfo("tlsdb", "tls_scram", k_password,
                      "host=localhost sslmode=verify-full " + ca_opts() + " channel_binding=require"));
  REQUIRE_MESSAGE(c.ok(), "expected a verify-full + channel_binding=require login, got " << c.error_text());
  CHECK_MESSAGE(PQsslInUse(c.raw()) == 1, "expected the client connection to use TLS, PQsslInUse = "
                                              << PQsslInUse(c.raw()));
  CHECK(c.value("SELECT current_user") == "tls_scram");
  shared_cluster().hba("tls_scram", "trust");
}

TEST_CASE("TLS on both legs carries a pipeline, large queries, large results and concurrent clients intact") {
  tls_setup();
  ensure_roles({"tls_bulk"});
  TempDir files;
  // Transaction pooling: the server connection goes back between transactions, so the relay reads of both legs
  // wait for input again and again.
  auto config = daemon_config(tls_section("require"), "method = \"trust\"", database("tlsdb", verify_full_dsn()));
  const auto at = config.find("mode = \"session\"");
  REQUIRE(at != std::string::npos);
  config.replace(at, std::string("mode = \"session\"").size(), "mode = \"transaction\"");
  Pgweir p(config);
  PGWEIR_LOG_ON_FAILURE(p);
  const std::string tls = "host=localhost sslmode=verify-full " + ca_opts();
  PgConn c(p.conninfo("tlsdb", "tls_bulk", "", tls));
  REQUIRE_MESSAGE(c.ok(), c.error_text());
  REQUIRE(PQsslInUse(c.raw()) == 1);

  // A query of 300 kB: many TLS records from the client, read ahead together.
  const std::string big(300000, 'x');
  CHECK(c.value("SELECT length('" + big + "')") == "300000");

  // A result of about 2 MB: many records from the server leg, and as many to the client.
  PGresult* rows = PQexec(c.raw(), "SELECT g, repeat('y', 32) FROM generate_series(1, 50000) g");
  REQUIRE_MESSAGE(PQresultStatus(rows) == PGRES_TUPLES_OK, PQerrorMessage(c.raw()));
  CHECK(PQntuples(rows) == 50000);
  CHECK(std::string(PQgetvalue(rows, 49999, 0)) == "50000");
  CHECK(std::string(PQgetvalue(rows, 12345, 1)) == std::string(32, 'y'));
  PQclear(rows);

  // 300 queries in one pipeline: their messages and answers arrive many to a record and many records at a time.
  REQUIRE(PQenterPipelineMode(c.raw()) == 1);
  constexpr int k_queries = 300;
  for (int i = 0; i < k_queries; ++i) {
    auto value = std::to_string(i);
    const char* params[] = {value.c_str()};
    REQUIRE(PQsendQueryParams(c.raw(), "SELECT $1::int * 2", 1, nullptr, params, nullptr, nullptr, 0) == 1);
  }
  REQUIRE(PQpipelineSync(c.raw()) == 1);
  int answered = 0;
  for (int i = 0; i < k_queries; ++i) {
    PGresult* r = PQgetResult(c.raw());
    REQUIRE_MESSAGE(r != nullptr, "pipeline ended early at query " << i << ": " << PQerrorMessage(c.raw()));
    if (PQresultStatus(r) == PGRES_TUPLES_OK && std::string(PQgetvalue(r, 0, 0)) == std::to_string(i * 2)) ++answered;
    PQclear(r);
    CHECK(PQgetResult(c.raw()) == nullptr);  // the end of query i's results
  }
  PGresult* sync = PQgetResult(c.raw());
  CHECK(PQresultStatus(sync) == PGRES_PIPELINE_SYNC);
  PQclear(sync);
  CHECK(answered == k_queries);
  REQUIRE(PQexitPipelineMode(c.raw()) == 1);
  CHECK(c.value("SELECT 'after the pipeline'") == "after the pipeline");

  // Eight clients at once, 400 transactions each (pgbench's own connections, TLS verified).
  auto script = files.write("q.sql", "SELECT 1;\n");
  auto bench = run({pg_bin("pgbench"), "-n", "-c", "8", "-j", "2", "-t", "400", "-f", script,
                    p.conninfo("tlsdb", "tls_bulk", "", tls)},
                   {}, 120s);
  CHECK_MESSAGE(bench.exit_code == 0, "pgbench over TLS: exit " << bench.exit_code << "\n" << bench.output);
  CHECK_MESSAGE(bench.output.find("number of transactions actually processed: 3200/3200") != std::string::npos,
                bench.output);
}

TEST_CASE("channel_binding=require is refused by libpq when pgweir authenticates with md5") {
  tls_setup();
  ensure_roles({"tls_scram"});
  TempDir files;
  Pgweir p(daemon_config(tls_section("require"),
                         "method = \"md5\"\nusers_file = \"" + users_file(files, {"tls_scram"}) + "\"",
                         database("tlsdb", plain_dsn())));
  PGWEIR_LOG_ON_FAILURE(p);

  // Without channel binding the md5 login works: the refusal below is about channel binding only.
  expect_login("md5 over verify-full TLS without channel binding",
               p.conninfo("tlsdb", "tls_scram", k_password, "host=localhost sslmode=verify-full " + ca_opts()),
               "tls_scram");
  auto r = connect_and_query(
      p.conninfo("tlsdb", "tls_scram", k_password,
                 "host=localhost sslmode=verify-full " + ca_opts() + " channel_binding=require"),
      "SELECT 1");
  CHECK_MESSAGE(!r.ok, "channel_binding=require against md5: expected libpq to refuse, got " << outcome(r));
  CHECK_MESSAGE(contains(r.error.message, "channel binding"),
                "expected an error about channel binding, got " << outcome(r));
}

// ---------------------------------------------------------------------------------------------------- 3, 4

TEST_CASE("tls.mode = require: plaintext clients get 28000, TLS clients log in") {
  tls_setup();
  ensure_roles({"tls_scram"});
  TempDir files;
  Pgweir p(daemon_config(tls_section("require"),
                         "method = \"scram-sha-256\"\nusers_file = \"" + users_file(files, {"tls_scram"}) + "\"",
                         database("tlsdb", plain_dsn())));
  PGWEIR_LOG_ON_FAILURE(p);

  expect_refused("sslmode=disable against tls.mode = require", p.conninfo("tlsdb", "tls_scram", k_password), "28000");
  PgConn c(p.conninfo("tlsdb", "tls_scram", k_password, "sslmode=require"));
  REQUIRE_MESSAGE(c.ok(), "sslmode=require: expected a login, got " << c.error_text());
  CHECK_MESSAGE(PQsslInUse(c.raw()) == 1, "sslmode=require: expected TLS in use, PQsslInUse = " << PQsslInUse(c.raw()));
  CHECK(c.value("SELECT current_user") == "tls_scram");
  // sslmode=prefer tries TLS first and gets it.
  PgConn prefer(p.conninfo("tlsdb", "tls_scram", k_password, "sslmode=prefer"));
  REQUIRE_MESSAGE(prefer.ok(), "sslmode=prefer: expected a login, got " << prefer.error_text());
  CHECK_MESSAGE(PQsslInUse(prefer.raw()) == 1, "sslmode=prefer against tls.mode = require: expected TLS in use");
}

TEST_CASE("tls.mode = disable: SSLRequest is answered N, prefer connects in plaintext, require fails") {
  tls_setup();
  ensure_roles({"tls_plain"});
  Pgweir p(daemon_config(tls_section("disable"), "method = \"trust\"", database("tlsdb", plain_dsn())));
  PGWEIR_LOG_ON_FAILURE(p);

  {
    TcpClient raw("127.0.0.1", p.port());
    raw.send(ssl_request());
    auto answer = raw.receive_some(10s);
    CHECK_MESSAGE(answer == "N", "SSLRequest with tls.mode = disable: expected 'N', got '" << printable(answer) << "'");
    // After 'N' the client may go on in plaintext on the same connection.
    raw.send(startup_message("tls_plain", "tlsdb"));
    auto reply = raw.receive_some(10s);
    CHECK_MESSAGE(message_types(reply).substr(0, 1) == "R",
                  "plaintext StartupMessage after 'N': expected an 'R' message, got '" << printable(reply) << "'");
  }

  PgConn prefer(p.conninfo("tlsdb", "tls_plain", "", "sslmode=prefer"));
  REQUIRE_MESSAGE(prefer.ok(), "sslmode=prefer: expected a plaintext login, got " << prefer.error_text());
  CHECK_MESSAGE(PQsslInUse(prefer.raw()) == 0,
                "sslmode=prefer against tls.mode = disable: expected no TLS, PQsslInUse = "
                    << PQsslInUse(prefer.raw()));
  CHECK(prefer.value("SELECT current_user") == "tls_plain");

  auto require = connect_and_query(p.conninfo("tlsdb", "tls_plain", "", "sslmode=require"), "SELECT 1");
  CHECK_MESSAGE(!require.ok,
                "sslmode=require against tls.mode = disable: expected a failure, got " << outcome(require));
}

// ---------------------------------------------------------------------------------------------------- 5

TEST_CASE("direct TLS with ALPN postgresql is accepted; without ALPN or with another protocol it is refused") {
  tls_setup();
  ensure_roles({"tls_scram"});
  TempDir files;
  Pgweir p(daemon_config(tls_section("require"),
                         "method = \"scram-sha-256\"\nusers_file = \"" + users_file(files, {"tls_scram"}) + "\"",
                         database("tlsdb", plain_dsn())));
  PGWEIR_LOG_ON_FAILURE(p);

  if (libpq_knows("sslnegotiation")) {
    expect_login("libpq sslnegotiation=direct",
                 p.conninfo("tlsdb", "tls_scram", k_password,
                            "host=localhost sslmode=verify-full sslnegotiation=direct " + ca_opts()),
                 "tls_scram");
  } else {
    MESSAGE("this libpq has no sslnegotiation option; direct TLS is checked with a raw OpenSSL client only");
  }

  {
    TlsClient tls(p.port(), {.alpn = "postgresql", .sni = "localhost", .ca_file = shared_pki().ca_cert});
    REQUIRE_MESSAGE(tls.handshake_ok(), "direct TLS with ALPN postgresql: expected a handshake, got " << tls.error());
    CHECK_MESSAGE(tls.alpn_selected() == "postgresql", "expected ALPN 'postgresql' selected, got '"
                                                           << tls.alpn_selected() << "'");
    REQUIRE(tls.send(startup_message("tls_scram", "tlsdb")));
    auto reply = tls.read_message(15s);
    auto types = message_types(reply);
    CHECK_MESSAGE(types.substr(0, 1) == "R", "StartupMessage over direct TLS: expected an AuthenticationRequest "
                                             "('R'), got '" << printable(reply) << "'");
  }

  {
    TlsClient tls(p.port(), {.alpn = "", .sni = "localhost", .ca_file = shared_pki().ca_cert});
    std::string reply;
    bool closed = true;
    if (tls.handshake_ok()) {
      tls.send(startup_message("tls_scram", "tlsdb"));
      reply = tls.read_until_closed(15s, &closed);
    }
    auto types = message_types(reply);
    CHECK_MESSAGE(types.find('R') == std::string::npos,
                  "direct TLS without ALPN: expected no AuthenticationRequest, got '" << printable(reply) << "'");
    CHECK_MESSAGE(closed, "direct TLS without ALPN: expected pgweir to close the connection, it is still open after "
                          "sending '" << printable(reply) << "'");
  }

  {
    TlsClient tls(p.port(), {.alpn = "http/1.1", .sni = "localhost", .ca_file = shared_pki().ca_cert});
    std::string reply;
    if (tls.handshake_ok()) {
      tls.send(startup_message("tls_scram", "tlsdb"));
      bool closed = false;
      reply = tls.read_until_closed(15s, &closed);
    }
    CHECK_MESSAGE(message_types(reply).find('R') == std::string::npos,
                  "direct TLS with ALPN http/1.1: expected no AuthenticationRequest, got '" << printable(reply) << "'");
  }

  expect_login("a normal client after the direct TLS attempts",
               p.conninfo("tlsdb", "tls_scram", k_password, "sslmode=require"), "tls_scram");
}

// ---------------------------------------------------------------------------------------------------- 6

TEST_CASE("CVE-2021-23214 class: a StartupMessage sent in plaintext together with the SSLRequest is not processed") {
  tls_setup();
  ensure_roles({"tls_plain"});
  for (const std::string mode : {"prefer", "require"}) {
    CAPTURE(mode);
    Pgweir p(daemon_config(tls_section(mode), "method = \"trust\"", database("tlsdb", plain_dsn())));
    PGWEIR_LOG_ON_FAILURE(p);
    {
      TcpClient raw("127.0.0.1", p.port());
      raw.send(ssl_request() + startup_message("tls_plain", "tlsdb"));
      bool closed = false;
      auto got = read_until_closed(raw.fd(), 20s, closed);
      // After 'S' or 'N' anything that parses as backend messages must not include an AuthenticationRequest.
      std::string_view rest = got;
      if (!rest.empty() && (rest[0] == 'S' || rest[0] == 'N')) rest.remove_prefix(1);
      CHECK_MESSAGE(message_types(rest).find('R') == std::string::npos,
                    "injected plaintext StartupMessage: expected no AuthenticationRequest ('R'), got '"
                        << printable(got) << "'");
      CHECK_MESSAGE(closed, "injected plaintext StartupMessage: expected pgweir to close the connection, it is "
                            "still open after sending '" << printable(got) << "'");
    }
    expect_login("a normal TLS client right after the injection attempt",
                 p.conninfo("tlsdb", "tls_plain", "", "sslmode=require"), "tls_plain");
    CHECK_MESSAGE(p.running(), "pgweir exited after the injection attempt");
  }
}

// ---------------------------------------------------------------------------------------------------- 7

TEST_CASE("client certificates: tls.mode = verify-full with auth cert binds the CN to the user") {
  tls_setup();
  ensure_roles({"tls_cert_a", "tls_cert_b"});
  auto& pki = shared_pki();
  Pgweir p(daemon_config(tls_section("verify-full", true), "method = \"cert\"", database("tlsdb", plain_dsn())));
  PGWEIR_LOG_ON_FAILURE(p);
  const auto tls = "host=localhost sslmode=verify-full " + ca_opts() + " ";

  auto conninfo = p.conninfo("tlsdb", "tls_cert_a", "", tls + cert_opts(pki.client("tls_cert_a")));
  auto r = psql(conninfo, "SELECT current_user", "");
  CHECK_MESSAGE(r.exit_code == 0, "psql with a client certificate CN=tls_cert_a: expected exit 0, got "
                                      << r.exit_code << ":\n" << r.output);
  CHECK_MESSAGE(trimmed(r.output) == "tls_cert_a",
                "SELECT current_user: expected tls_cert_a, got '" << trimmed(r.output) << "'");

  expect_refused("certificate CN=tls_cert_b presented by user tls_cert_a",
                 p.conninfo("tlsdb", "tls_cert_a", "", tls + cert_opts(pki.client("tls_cert_b"))), "28000");
  expect_refused("no client certificate", p.conninfo("tlsdb", "tls_cert_a", "", tls + no_cert_opts()), "28000");
  expect_refused("a certificate CN=tls_cert_a from an unrelated CA",
                 p.conninfo("tlsdb", "tls_cert_a", "", tls + cert_opts(pki.client("tls_cert_a", true))), "");
  expect_refused("a plaintext client", p.conninfo("tlsdb", "tls_cert_a"), "28000");
  // The right certificate still works after the refusals.
  expect_login("certificate CN=tls_cert_b as user tls_cert_b",
               p.conninfo("tlsdb", "tls_cert_b", "", tls + cert_opts(pki.client("tls_cert_b"))), "tls_cert_b");
}

TEST_CASE("client certificates: tls.mode = verify-ca requires a certificate but not a matching CN") {
  tls_setup();
  ensure_roles({"tls_scram"});
  auto& pki = shared_pki();
  TempDir files;
  Pgweir p(daemon_config(tls_section("verify-ca", true),
                         "method = \"scram-sha-256\"\nusers_file = \"" + users_file(files, {"tls_scram"}) + "\"",
                         database("tlsdb", plain_dsn())));
  PGWEIR_LOG_ON_FAILURE(p);
  const auto tls = "host=localhost sslmode=verify-full " + ca_opts() + " ";

  expect_login("verify-ca, certificate CN=tls_cert_b, user tls_scram with its password",
               p.conninfo("tlsdb", "tls_scram", k_password, tls + cert_opts(pki.client("tls_cert_b"))), "tls_scram");
  expect_refused("verify-ca without a client certificate",
                 p.conninfo("tlsdb", "tls_scram", k_password, tls + no_cert_opts()), "28000");
  expect_refused("verify-ca, a certificate from an unrelated CA",
                 p.conninfo("tlsdb", "tls_scram", k_password, tls + cert_opts(pki.client("tls_cert_b", true))), "");
  expect_refused("verify-ca, a good certificate but a wrong password",
                 p.conninfo("tlsdb", "tls_scram", k_password + "-wrong", tls + cert_opts(pki.client("tls_cert_b"))),
                 "28P01");
}

TEST_CASE("client certificates: tls.mode = verify-full with scram also needs CN = user") {
  tls_setup();
  ensure_roles({"tls_scram"});
  auto& pki = shared_pki();
  TempDir files;
  Pgweir p(daemon_config(tls_section("verify-full", true),
                         "method = \"scram-sha-256\"\nusers_file = \"" + users_file(files, {"tls_scram"}) + "\"",
                         database("tlsdb", plain_dsn())));
  PGWEIR_LOG_ON_FAILURE(p);
  const auto tls = "host=localhost sslmode=verify-full " + ca_opts() + " ";

  expect_login("verify-full, certificate CN=tls_scram, right password",
               p.conninfo("tlsdb", "tls_scram", k_password, tls + cert_opts(pki.client("tls_scram"))), "tls_scram");
  expect_refused("verify-full, certificate CN=tls_cert_b for user tls_scram, right password",
                 p.conninfo("tlsdb", "tls_scram", k_password, tls + cert_opts(pki.client("tls_cert_b"))), "28000");
}

// ---------------------------------------------------------------------------------------------------- 8

TEST_CASE("server TLS follows the dsn's sslmode: verify-full, a wrong CA, require without a root cert") {
  tls_setup();
  ensure_roles({"tls_plain"});
  auto& pki = shared_pki();
  Pgweir p(daemon_config(
      tls_section("disable"), "method = \"trust\"",
      database("srv_full", verify_full_dsn()) +
          database("srv_full_ip", pg_dsn("sslmode=verify-full sslrootcert=" + pki.ca_cert, "127.0.0.1")) +
          database("srv_wrong_ca", pg_dsn("sslmode=verify-full sslrootcert=" + pki.wrong_ca_cert)) +
          database("srv_require", pg_dsn("sslmode=require")) + database("srv_disable", plain_dsn())));
  PGWEIR_LOG_ON_FAILURE(p);

  for (const std::string db : {"srv_full", "srv_full_ip", "srv_require"}) {
    auto r = connect_and_query(p.conninfo(db, "tls_plain"), k_ssl_query);
    CHECK_MESSAGE((r.ok && r.value() == "t"), "database " << db << ": expected pg_stat_ssl.ssl = t for pgweir's "
                                                          << "server connection, got " << outcome(r));
  }
  auto plain = connect_and_query(p.conninfo("srv_disable", "tls_plain"), k_ssl_query);
  CHECK_MESSAGE((plain.ok && plain.value() == "f"), "database srv_disable (sslmode=disable): expected ssl = f, got "
                                                        << outcome(plain));

  auto wrong = connect_and_query(p.conninfo("srv_wrong_ca", "tls_plain"), "SELECT 1");
  CHECK_MESSAGE(!wrong.ok, "database srv_wrong_ca (sslrootcert = an unrelated CA): expected an error, got "
                               << outcome(wrong));
  CHECK_MESSAGE(contains(wrong.error.message, "certificate"),
                "the wrong-CA error should mention the certificate, got " << outcome(wrong));
  CHECK_MESSAGE(p.running(), "pgweir exited after a failed server certificate verification");
  auto again = connect_and_query(p.conninfo("srv_full", "tls_plain"), k_ssl_query);
  CHECK_MESSAGE((again.ok && again.value() == "t"), "srv_full after the wrong-CA failure: expected ssl = t, got "
                                                        << outcome(again));
}

// ---------------------------------------------------------------------------------------------------- 9

TEST_CASE("CVE-2021-23222 class: a server that sends plaintext right after 'S' is not used") {
  tls_setup();
  ensure_roles({"tls_plain"});
  // 'S', then an AuthenticationOk in the same write, as a man-in-the-middle would inject it.
  FakeServer fake(std::string("S") + std::string("R\0\0\0\x08\0\0\0\0", 9));
  Pgweir p(daemon_config(tls_section("disable"), "method = \"trust\"",
                         database("fakedb", "host=127.0.0.1 port=" + std::to_string(fake.port()) +
                                                " dbname=postgres sslmode=require")));
  PGWEIR_LOG_ON_FAILURE(p);

  auto r = connect_and_query(p.conninfo("fakedb", "tls_plain"), "SELECT 1");
  CHECK_MESSAGE(!r.ok, "server answered 'S' plus plaintext: expected the client to get an error, got " << outcome(r));
  CHECK_MESSAGE(fake.ssl_requests() >= 1, "the fake server should have received pgweir's SSLRequest; connections: "
                                              << fake.connections() << ", SSLRequests: " << fake.ssl_requests());
  auto log = p.log_text();
  CHECK_MESSAGE((contains(r.error.message, "unencrypted") || contains(log, "unencrypted")),
                "expected the client error or pgweir's log to mention unencrypted data; client got "
                    << outcome(r) << "\n(log is shown below)");
  CHECK_MESSAGE(p.running(), "pgweir exited after the injected server response");
}

// ---------------------------------------------------------------------------------------------------- 10

TEST_CASE("auth.method = hba: local/host/hostssl/hostnossl rules, reject, md5, scram, cert, trust by CIDR, no match") {
  tls_setup();
  const std::initializer_list<std::string> users = {"hba_trust", "hba_md5",   "hba_scram",   "hba_reject", "hba_ssl",
                                                    "hba_nossl", "hba_local", "hba_cidr",    "hba_cert",   "hba_none"};
  ensure_roles(users);
  auto& pki = shared_pki();
  TempDir files;
  auto hba = files.write("pg_hba.conf", R"(# TYPE  DATABASE USER        ADDRESS       METHOD
local     all      hba_local                  trust
local     all      hba_md5                    md5
host      all      hba_reject   127.0.0.1/32  reject
# never reached for hba_reject: the first matching rule decides
host      all      hba_reject   0.0.0.0/0     trust
hostssl   all      hba_ssl      127.0.0.1/32  trust
hostnossl all      hba_nossl    127.0.0.1/32  trust
host      all      hba_md5      127.0.0.1/32  md5
host      all      hba_scram    127.0.0.1/32  scram-sha-256
hostssl   all      hba_cert     127.0.0.1/32  cert
host      all      hba_cidr     10.0.0.0/8    trust
host      all      hba_trust    127.0.0.1/32  trust
)");
  Pgweir p(daemon_config(tls_section("prefer", true),
                         "method = \"hba\"\nhba_file = \"" + hba + "\"\nusers_file = \"" + users_file(files, users) +
                             "\"",
                         database("hbadb", plain_dsn()), "unix_socket_dir = \"@DIR@\"\n"));
  PGWEIR_LOG_ON_FAILURE(p);
  auto port = std::to_string(p.port());

  auto plain = [&](const std::string& user, const std::string& pw = "") { return p.conninfo("hbadb", user, pw); };
  auto tls = [&](const std::string& user, const std::string& pw = "", const std::string& extra = "") {
    return p.conninfo("hbadb", user, pw, "sslmode=require " + no_cert_opts() + " " + extra);
  };
  auto unix_socket = [&](const std::string& user, const std::string& pw = "") {
    auto s = "host=" + conninfo_quote(p.dir()) + " port=" + port + " dbname=hbadb user=" + user + " sslmode=disable";
    return pw.empty() ? s : s + " password=" + conninfo_quote(pw);
  };

  SUBCASE("trust by CIDR") {
    expect_login("hba_trust over TCP", plain("hba_trust"), "hba_trust");
    expect_login("hba_trust over TCP+TLS", tls("hba_trust"), "hba_trust");
    expect_refused("hba_trust over the unix socket (no local rule)", unix_socket("hba_trust"), "28000");
    expect_refused("hba_cidr from 127.0.0.1 (its rule is 10.0.0.0/8)", plain("hba_cidr"), "28000");
  }
  SUBCASE("md5 and scram-sha-256") {
    expect_login("hba_md5 over TCP, right password", plain("hba_md5", k_password), "hba_md5");
    expect_refused("hba_md5 over TCP, wrong password", plain("hba_md5", k_password + "-wrong"), "28P01");
    expect_login("hba_md5 over the unix socket (local md5)", unix_socket("hba_md5", k_password), "hba_md5");
    expect_refused("hba_md5 over the unix socket, wrong password", unix_socket("hba_md5", k_password + "-wrong"),
                   "28P01");
    expect_login("hba_scram over TCP, right password", plain("hba_scram", k_password), "hba_scram");
    expect_refused("hba_scram over TCP, wrong password", plain("hba_scram", k_password + "-wrong"), "28P01");
    expect_login("hba_scram over TLS with channel_binding=require",
                 tls("hba_scram", k_password, "channel_binding=require"), "hba_scram");
    auto md5_cb = connect_and_query(tls("hba_md5", k_password, "channel_binding=require"), "SELECT 1");
    CHECK_MESSAGE(!md5_cb.ok, "hba_md5 (an md5 rule) with channel_binding=require: expected libpq to refuse, got "
                                  << outcome(md5_cb));
  }
  SUBCASE("reject, and first match wins") {
    expect_refused("hba_reject over TCP with its password", plain("hba_reject", k_password), "28000");
    expect_refused("hba_reject over TLS", tls("hba_reject", k_password), "28000");
  }
  SUBCASE("hostssl and hostnossl") {
    expect_login("hba_ssl over TLS", tls("hba_ssl"), "hba_ssl");
    expect_refused("hba_ssl in plaintext (hostssl only)", plain("hba_ssl"), "28000");
    expect_login("hba_nossl in plaintext", plain("hba_nossl"), "hba_nossl");
    expect_refused("hba_nossl over TLS (hostnossl only)", tls("hba_nossl"), "28000");
  }
  SUBCASE("local") {
    expect_login("hba_local over the unix socket", unix_socket("hba_local"), "hba_local");
    expect_refused("hba_local over TCP", plain("hba_local"), "28000");
    expect_refused("hba_local over TLS", tls("hba_local"), "28000");
  }
  SUBCASE("cert") {
    const auto cert_tls = "host=localhost sslmode=verify-full " + ca_opts() + " ";
    expect_login("hba_cert with a certificate CN=hba_cert",
                 p.conninfo("hbadb", "hba_cert", "", cert_tls + cert_opts(pki.client("hba_cert"))), "hba_cert");
    expect_refused("hba_cert with a certificate CN=hba_trust",
                   p.conninfo("hbadb", "hba_cert", "", cert_tls + cert_opts(pki.client("hba_trust"))), "28000");
    expect_refused("hba_cert over TLS without a certificate", tls("hba_cert"), "28000");
    expect_refused("hba_cert in plaintext (hostssl only)", plain("hba_cert"), "28000");
  }
  SUBCASE("no matching rule") {
    expect_refused("hba_none over TCP", plain("hba_none", k_password), "28000");
    expect_refused("hba_none over TLS", tls("hba_none", k_password), "28000");
    expect_refused("hba_none over the unix socket", unix_socket("hba_none", k_password), "28000");
  }
}

}  // namespace pgweir::test
