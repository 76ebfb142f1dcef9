// Whether a PostgreSQL server answers at all (libpq's PQping: no login needed), for /readyz.
#pragma once

#include <chrono>

#include "pgweir/pq/dsn.hpp"

namespace pgweir::pq {

// True when the server accepts connections (it would let a client with valid credentials in). Blocking: call it off
// the event loops.
bool ping(const Dsn& dsn, std::chrono::seconds timeout);

}  // namespace pgweir::pq
