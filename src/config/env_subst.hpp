// ${VAR} and ${VAR:-default} substitution in config strings.
#pragma once

#include <string>
#include <string_view>

#include "pgweir/config/config.hpp"
#include "pgweir/core/result.hpp"

namespace pgweir::config::detail {

// Replaces ${VAR} by VAR's value (an unset VAR is an error naming it) and ${VAR:-default} by VAR's value, or by
// `default` when VAR is unset or empty, as in the shell. `$${` writes a literal `${`; every other `$` is kept as
// written, so `$1` in a query or `$$` in a password need no escaping. Substituted text is not scanned again.
Expected<std::string> substitute_env(std::string_view text, const EnvLookup& env);

}  // namespace pgweir::config::detail
