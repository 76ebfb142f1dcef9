// Test harness: a throwaway PostgreSQL 15 cluster (initdb in a temp dir, random port, own pg_hba.conf).
#pragma once

#include <map>
#include <memory>
#include <string>

#include "support/pq.hpp"
#include "support/process.hpp"

#ifndef PGWEIR_PG_BIN
#define PGWEIR_PG_BIN "/usr/lib/postgresql/15/bin"
#endif

namespace pgweir::test {

// Absolute path of a PostgreSQL 15 program (initdb, pg_ctl, psql, pgbench).
std::string pg_bin(const std::string& program);

class PostgresCluster {
 public:
  PostgresCluster();  // initdb --auth=trust, then start; throws with the logs if that fails
  ~PostgresCluster();  // stops the server and removes the directory
  PostgresCluster(const PostgresCluster&) = delete;
  PostgresCluster& operator=(const PostgresCluster&) = delete;

  int port() const { return port_; }
  std::string host() const { return "127.0.0.1"; }
  const std::string& socket_dir() const { return dir_->path(); }
  std::string log_text() const;

  // Superuser connection over the unix socket.
  std::string superuser_conninfo(const std::string& db = "postgres") const;
  // TCP key=value conninfo for another role.
  std::string conninfo(const std::string& db, const std::string& user, const std::string& password = "") const;
  // The same as a postgresql:// URI without password, for pgweir's `dsn`.
  std::string dsn(const std::string& db, const std::string& user = "") const;

  // Runs SQL as superuser; throws (naming the SQL and the error) unless it succeeds. Returns the first value.
  std::string exec(const std::string& sql, const std::string& db = "postgres");
  QueryResult try_exec(const std::string& sql, const std::string& db = "postgres");

  // CREATE ROLE name LOGIN PASSWORD password, stored with `encryption` (scram-sha-256 or md5).
  void create_role(const std::string& name, const std::string& password,
                   const std::string& encryption = "scram-sha-256");
  // What pg_authid stores for the role: "SCRAM-SHA-256$4096:…" or "md5…".
  std::string role_secret(const std::string& name);

  // Sets how `user` must authenticate over TCP and the unix socket: trust, md5, scram-sha-256 or password;
  // rewrites pg_hba.conf, reloads and waits until new connections see the new rules.
  void hba(const std::string& user, const std::string& method);

  void stop();
  void start();
  void restart() { stop(); start(); }

 private:
  void write_hba();
  void reload_and_wait();

  std::unique_ptr<TempDir> dir_;
  std::string data_;
  int port_ = 0;
  bool running_ = false;
  int generation_ = 0;
  int reaper_fd_ = -1;
  std::map<std::string, std::string> hba_;
};

// One cluster per test executable, started on first use and stopped at exit.
PostgresCluster& shared_cluster();

}  // namespace pgweir::test
