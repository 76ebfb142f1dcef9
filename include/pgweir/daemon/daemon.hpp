// The process: worker threads, listeners, signals, reload, graceful shutdown, systemd notify. The only place that
// wires the modules together.
#pragma once

#include <string>

namespace pgweir::daemon {

// Runs pgweir with the config at `path` until shutdown. Returns the process exit code.
int run(const std::string& path);

// `--check`: prints every problem as FILE:LINE:COL: message. Returns 0 when valid, 1 otherwise.
int check(const std::string& path);

}  // namespace pgweir::daemon
