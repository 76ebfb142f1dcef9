// DSN parsing with libpq's own PQconninfoParse, so every form libpq accepts works.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "pgweir/core/result.hpp"

namespace pgweir::pq {

// Fields libpq leaves unset get libpq's defaults: no host (and no hostaddr) means the default unix socket
// directory, no port 5432. Environment variables (PGHOST, …) are NOT consulted: a daemon's config says it all.
struct Dsn {
  std::vector<std::string> hosts;  // "host" split on ','; a host starting with '/' is a unix socket directory
  std::vector<std::uint16_t> ports;  // "port" split on ','; one port applies to every host; default 5432
  std::string dbname;              // empty when not given
  std::string user;                // empty when not given
  std::string password;
  std::string sslmode;             // as given, or "prefer"
  std::string sslrootcert, sslcert, sslkey;
  std::string application_name;
  std::string options;
  std::string target_session_attrs;  // default "any"
  int connect_timeout_seconds = 0;   // 0 = not given
  std::map<std::string, std::string> all;  // every keyword libpq reported with a non-empty value
};

// Error text is libpq's, e.g. `invalid connection option "foo"`. Secrets never appear in it.
Expected<Dsn> parse_dsn(std::string_view dsn);

}  // namespace pgweir::pq
