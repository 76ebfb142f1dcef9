// Shared by the integration test files: the harness headers, doctest, and config-text helpers.
#pragma once

#include <doctest/doctest.h>

#include <string>

#include "support/net.hpp"
#include "support/pgweir_process.hpp"
#include "support/postgres_cluster.hpp"
#include "support/pq.hpp"
#include "support/process.hpp"

namespace pgweir::test {

// Fills @PGPORT@ and @PGSOCK@ (the shared cluster's TCP port and unix socket dir) into a config text.
inline std::string with_cluster(const std::string& toml) {
  auto& pg = shared_cluster();
  return substitute(toml, {{"@PGPORT@", std::to_string(pg.port())}, {"@PGSOCK@", pg.socket_dir()}});
}

// Creates a login role and a database it owns on the shared cluster, unless they exist.
inline void ensure_database(const std::string& db, const std::string& user) {
  auto& pg = shared_cluster();
  if (pg.exec("SELECT count(*) FROM pg_roles WHERE rolname = '" + user + "'") == "0")
    pg.exec("CREATE ROLE " + user + " LOGIN");
  if (pg.exec("SELECT count(*) FROM pg_database WHERE datname = '" + db + "'") == "0")
    pg.exec("CREATE DATABASE " + db + " OWNER " + user);
}

}  // namespace pgweir::test

// Shows the daemon's log (lazily: only if an assertion in this scope fails).
#define PGWEIR_LOG_ON_FAILURE(daemon) INFO("pgweir log:\n" << (daemon).log_text())
