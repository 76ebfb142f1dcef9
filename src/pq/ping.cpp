// pq::ping with PQpingParams, built from the parsed DSN's keywords.
#include "pgweir/pq/ping.hpp"

#include <libpq-fe.h>

#include <algorithm>
#include <string>
#include <vector>

namespace pgweir::pq {

bool ping(const Dsn& dsn, std::chrono::seconds timeout) {
  std::vector<std::string> keys, values;
  for (const auto& [k, v] : dsn.all) {
    if (k == "connect_timeout" || k == "password") continue;
    keys.push_back(k);
    values.push_back(v);
  }
  keys.push_back("connect_timeout");
  values.push_back(std::to_string(std::max<long>(1, static_cast<long>(timeout.count()))));
  if (!dsn.all.contains("dbname")) {
    keys.push_back("dbname");
    values.push_back("postgres");
  }
  std::vector<const char*> k, v;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    k.push_back(keys[i].c_str());
    v.push_back(values[i].c_str());
  }
  k.push_back(nullptr);
  v.push_back(nullptr);
  PGPing r = PQpingParams(k.data(), v.data(), 0);
  // PQPING_REJECT: up but refusing connections (starting, stopping, recovering): not usable yet.
  return r == PQPING_OK;
}

}  // namespace pgweir::pq
