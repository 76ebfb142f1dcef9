// The PgBouncer-compatible admin console (SPEC §4): parses one simple-protocol query and returns the complete wire
// response. Pure: no sockets; the client session sends the bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pgweir/admin/inventory.hpp"

namespace pgweir::admin {

enum class Role {
  admin,  // admin.users: every command
  stats,  // admin.stats_users: SHOW only (and the harmless SET a driver sends)
};

// Names the console answers to (SPEC §4); the daemon routes connections to these databases here.
bool is_console_database(std::string_view database);

// A parsed console command. Exposed for tests; Console::execute is the entry point.
struct Command {
  enum class Kind {
    empty,       // only whitespace and semicolons
    show,        // SHOW <what>
    set,         // SET key = value / SET key TO value
    pause, resume, reconnect, kill, kill_client, reload, shutdown,
    unsupported, // a PgBouncer command pgweir does not implement (SUSPEND, DISABLE, …)
  };
  Kind kind = Kind::empty;
  std::string verb;                     // upper case, as typed ("SHOW", "PAUSE", …)
  std::optional<std::string> argument;  // SHOW's subject (lower case), a database name, a client id, a mode
  std::string set_value;
};

// Parses `text`; the error is the message for a 42601 ErrorResponse.
Expected<Command> parse_command(std::string_view text);

class Console {
 public:
  // The whole response: RowDescription + DataRows + CommandComplete, or ErrorResponse, or EmptyQueryResponse,
  // always followed by ReadyForQuery('I'). Never throws on any input text.
  std::string execute(std::string_view query_text, Role role, Inventory& inventory);
};

}  // namespace pgweir::admin
