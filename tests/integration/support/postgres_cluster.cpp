// Test harness: PostgresCluster owns one PostgreSQL data directory and server for the tests of one
// executable: initdb, configuration, pg_hba rules with a reload that is known to have taken effect, stop/start.
#include "support/postgres_cluster.hpp"

#include <fstream>
#include <stdexcept>
#include <sys/stat.h>
#include <thread>

#include "support/net.hpp"

namespace pgweir::test {

namespace {

void write_owned_by_postgres(const std::string& path, const std::string& text) {
  {
    std::ofstream out(path, std::ios::trunc);
    out << text;
    if (!out) throw std::runtime_error("cannot write " + path);
  }
  ::chmod(path.c_str(), 0644);
  give_to_postgres_user(path);
}

std::string sql_literal(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

std::string sql_ident(const std::string& s) {
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

}  // namespace

std::string pg_bin(const std::string& program) { return std::string(PGWEIR_PG_BIN) + "/" + program; }

PostgresCluster::PostgresCluster() : dir_(std::make_unique<TempDir>("pgweir-pg")) {
  ::chmod(dir_->path().c_str(), 0755);
  give_to_postgres_user(dir_->path());
  data_ = dir_->file("data");

  // If this process dies without running the destructor, the reaper still stops the server.
  auto pg_ctl_stop = describe(as_postgres_user({pg_bin("pg_ctl"), "-D", data_, "-m", "immediate", "-w", "stop"}));
  reaper_fd_ = spawn_reaper("cat >/dev/null; " + pg_ctl_stop + " >/dev/null 2>&1; rm -rf " + describe({dir_->path()}));

  auto init = run(as_postgres_user({pg_bin("initdb"), "-D", data_, "-U", "postgres", "--auth=trust", "-E", "UTF8",
                                    "--locale=C", "--no-sync", "--no-instructions"}));
  if (init.exit_code != 0) throw std::runtime_error("initdb failed (exit " + std::to_string(init.exit_code) + "):\n" + init.output);
  write_owned_by_postgres(dir_->file("generation.conf"), "pgweir_test.generation = '0'\n");
  write_hba();
  start();
}

PostgresCluster::~PostgresCluster() {
  try {
    stop();
  } catch (...) {
    // Destructors do not throw; the reaper retries with -m immediate.
  }
  dir_.reset();
  if (reaper_fd_ >= 0) ::close(reaper_fd_);
}

std::string PostgresCluster::log_text() const { return read_file(dir_->file("postgres.log")); }

std::string PostgresCluster::superuser_conninfo(const std::string& db) const {
  return "host=" + socket_dir() + " port=" + std::to_string(port_) + " user=postgres dbname=" + conninfo_quote(db);
}

std::string PostgresCluster::conninfo(const std::string& db, const std::string& user, const std::string& password) const {
  auto s = "host=127.0.0.1 port=" + std::to_string(port_) + " sslmode=disable dbname=" + conninfo_quote(db) +
           " user=" + conninfo_quote(user);
  if (!password.empty()) s += " password=" + conninfo_quote(password);
  return s;
}

std::string PostgresCluster::dsn(const std::string& db, const std::string& user) const {
  return "postgresql://" + (user.empty() ? std::string() : user + "@") + "127.0.0.1:" + std::to_string(port_) + "/" +
         db + "?sslmode=disable";
}

QueryResult PostgresCluster::try_exec(const std::string& sql, const std::string& db) {
  PgConn c(superuser_conninfo(db));
  if (!c.ok()) {
    QueryResult r;
    r.error = c.error();
    return r;
  }
  return c.exec(sql);
}

std::string PostgresCluster::exec(const std::string& sql, const std::string& db) {
  auto r = try_exec(sql, db);
  if (!r.ok) throw std::runtime_error("direct SQL on PostgreSQL failed: " + sql + ": " + r.error.sqlstate + " " + r.error.message);
  return r.value();
}

void PostgresCluster::create_role(const std::string& name, const std::string& password, const std::string& encryption) {
  exec("SET password_encryption = " + sql_literal(encryption) + "; DROP ROLE IF EXISTS " + sql_ident(name) +
       "; CREATE ROLE " + sql_ident(name) + " LOGIN PASSWORD " + sql_literal(password));
}

std::string PostgresCluster::role_secret(const std::string& name) {
  return exec("SELECT rolpassword FROM pg_authid WHERE rolname = " + sql_literal(name));
}

void PostgresCluster::hba(const std::string& user, const std::string& method) {
  if (method == "trust") hba_.erase(user);
  else hba_[user] = method;
  write_hba();
  reload_and_wait();
}

void PostgresCluster::write_hba() {
  std::string text = "# written by the pgweir integration test harness\n"
                     "local all postgres trust\n"
                     "host all postgres 127.0.0.1/32 trust\n";
  for (const auto& [user, method] : hba_) {
    auto u = sql_ident(user);  // pg_hba.conf quotes names the same way
    text += "local all " + u + " " + method + "\n";
    text += "host all " + u + " 127.0.0.1/32 " + method + "\n";
    text += "host all " + u + " ::1/128 " + method + "\n";
  }
  text += "local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n";
  write_owned_by_postgres(data_ + "/pg_hba.conf", text);
}

void PostgresCluster::reload_and_wait() {
  // The postmaster rereads postgresql.conf and pg_hba.conf in one go on SIGHUP; a new backend that sees
  // the new generation number was therefore forked after the new pg_hba.conf was loaded.
  ++generation_;
  auto want = std::to_string(generation_);
  write_owned_by_postgres(dir_->file("generation.conf"), "pgweir_test.generation = '" + want + "'\n");
  exec("SELECT pg_reload_conf()");
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = try_exec("SHOW pgweir_test.generation");
    if (r.ok && r.value() == want) return;
    std::this_thread::sleep_for(20ms);
  }
  throw std::runtime_error("PostgreSQL did not pick up the new pg_hba.conf within 10 s; log:\n" + log_text());
}

void PostgresCluster::start() {
  if (running_) return;
  std::string last_error;
  // A free port can be taken by someone else before the server binds it: try a few.
  for (int attempt = 0; attempt < 5; ++attempt) {
    if (port_ == 0 || attempt > 0) port_ = free_port();
    write_owned_by_postgres(data_ + "/postgresql.auto.conf",
                            "port = " + std::to_string(port_) +
                                "\nlisten_addresses = '127.0.0.1'\n"
                                "unix_socket_directories = '" + socket_dir() + "'\n"
                                "max_connections = 300\n"
                                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                                "password_encryption = 'scram-sha-256'\n"
                                "include_if_exists = '" + dir_->file("generation.conf") + "'\n");
    auto r = run(as_postgres_user({pg_bin("pg_ctl"), "-D", data_, "-l", dir_->file("postgres.log"), "-w", "-t", "60",
                                   "start"}));
    if (r.exit_code == 0) {
      running_ = true;
      return;
    }
    last_error = r.output + "\n" + log_text();
    // A port already taken is worth retrying; anything else is not.
    if (last_error.find("could not bind") == std::string::npos &&
        last_error.find("could not create any TCP/IP sockets") == std::string::npos &&
        last_error.find("Address already in use") == std::string::npos)
      break;
  }
  throw std::runtime_error("pg_ctl start failed:\n" + last_error);
}

void PostgresCluster::stop() {
  if (!running_) return;
  auto r = run(as_postgres_user({pg_bin("pg_ctl"), "-D", data_, "-m", "fast", "-w", "-t", "60", "stop"}));
  running_ = false;
  if (r.exit_code != 0) throw std::runtime_error("pg_ctl stop failed:\n" + r.output);
}

PostgresCluster& shared_cluster() {
  static PostgresCluster cluster;
  return cluster;
}

}  // namespace pgweir::test
