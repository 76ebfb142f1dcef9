// Recognising SQL that leaves state on a server connection beyond the transaction (SET of a parameter pgweir
// cannot re-apply, LISTEN, PREPARE, temporary tables, session advisory locks, WITH HOLD cursors, SET ROLE and
// SET SESSION AUTHORIZATION). Pure: a small lexer that knows quotes, dollar quotes and comments.
#pragma once

#include <optional>
#include <string_view>

namespace pgweir::client {

// The reason label of the first statement in `sql` that leaves session state, or nullopt.
// Reasons: "set", "role", "listen", "prepare", "temp_table", "advisory_lock", "hold_cursor".
std::optional<std::string_view> detect_session_state(std::string_view sql);

}  // namespace pgweir::client
