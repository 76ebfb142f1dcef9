// Test harness: one pgweir daemon under test, with its config file, log file and port.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "support/process.hpp"

namespace pgweir::test {

// Path of the pgweir binary this suite was built against ("" if the target did not exist).
std::string pgweir_binary();

// Replaces every key of `vars` (e.g. "@PGPORT@") in `text` with its value.
std::string substitute(std::string text, const std::map<std::string, std::string>& vars);

struct PgweirOptions {
  std::string wait_host = "127.0.0.1";  // where to wait for the listener
  bool wait_ready = true;
  Env env;                              // extra environment variables for the daemon
  std::vector<std::string> wrapper;     // a program (and its arguments) the daemon runs under
  std::chrono::milliseconds ready_timeout = 10s;
};

class Pgweir {
 public:
  // Writes `toml` (with @PORT@ = a free port and @DIR@ = this daemon's temp dir substituted) to a file,
  // starts `pgweir -c FILE` with stderr to a log file, and waits until @PORT@ accepts connections.
  // Throws with the daemon's log if it exits or does not listen in time.
  explicit Pgweir(const std::string& toml, PgweirOptions options = {});
  ~Pgweir();  // SIGTERM, then SIGKILL if it has not exited in 10 s
  Pgweir(const Pgweir&) = delete;
  Pgweir& operator=(const Pgweir&) = delete;

  int port() const { return port_; }
  pid_t pid() const { return child_.pid(); }
  const std::string& dir() const { return dir_.path(); }
  const std::string& config_path() const { return config_path_; }
  std::string log_text() const;

  // key=value conninfo through pgweir's TCP listener (sslmode=disable unless `extra` says otherwise).
  std::string conninfo(const std::string& db, const std::string& user, const std::string& password = "",
                       const std::string& extra = "") const;

  void rewrite_config(const std::string& toml);  // same substitutions as the constructor
  void reload();                                 // SIGHUP
  void signal(int sig) { child_.signal(sig); }
  bool running() { return child_.running(); }
  std::optional<int> wait(std::chrono::milliseconds timeout) { return child_.wait(timeout); }
  // SIGTERM and wait; the exit code, or nullopt if it had to be killed after `timeout`.
  std::optional<int> stop(std::chrono::milliseconds timeout = 10s);

 private:
  std::string expand(const std::string& toml) const;
  std::vector<std::string> command() const;
  std::string wait_listening(const PgweirOptions& options);  // "" once listening, else why not

  TempDir dir_{"pgweir-d"};
  int port_ = 0;
  std::string config_path_;
  std::string log_path_;
  std::vector<std::string> wrapper_;
  Child child_;
};

}  // namespace pgweir::test
