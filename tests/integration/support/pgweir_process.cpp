// Test harness: Pgweir starts the daemon under test from a TOML text, knows its port and log, and
// signals it (reload, shutdown) the way an operator would.
#include "support/pgweir_process.hpp"

#include <csignal>
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "support/net.hpp"
#include "support/pq.hpp"

#ifndef PGWEIR_BINARY
#define PGWEIR_BINARY ""
#endif

namespace pgweir::test {

std::string pgweir_binary() { return PGWEIR_BINARY; }

std::string substitute(std::string text, const std::map<std::string, std::string>& vars) {
  for (const auto& [key, value] : vars) {
    for (auto pos = text.find(key); pos != std::string::npos; pos = text.find(key, pos + value.size()))
      text.replace(pos, key.size(), value);
  }
  return text;
}

// PGWEIR_TEST_WRAPPER runs the daemon under another program (valgrind, strace …): its words go before ours, and
// after the test's own wrapper (PgweirOptions::wrapper).
std::vector<std::string> Pgweir::command() const {
  std::vector<std::string> argv = wrapper_;
  if (const char* wrapper = std::getenv("PGWEIR_TEST_WRAPPER")) {
    std::istringstream words(wrapper);
    for (std::string w; words >> w;) argv.push_back(w);
  }
  argv.insert(argv.end(), {pgweir_binary(), "-c", config_path_});
  return argv;
}

Pgweir::Pgweir(const std::string& toml, PgweirOptions options) : port_(free_port()), wrapper_(options.wrapper) {
  if (std::getenv("PGWEIR_TEST_WRAPPER")) options.ready_timeout = std::max(options.ready_timeout, 60'000ms);
  if (pgweir_binary().empty()) throw std::runtime_error("the pgweir target was not built: no binary to test");
  log_path_ = dir_.file("pgweir.log");
  // Another test process may bind our free port first: then pgweir exits saying so, and we try another.
  for (int attempt = 1;; ++attempt) {
    config_path_ = dir_.write("pgweir.toml", expand(toml));
    child_ = Child(command(), log_path_, options.env);
    if (!options.wait_ready) return;
    auto failure = wait_listening(options);
    if (failure.empty()) return;
    bool port_taken = log_text().find("in use") != std::string::npos;
    if (!port_taken || attempt == 3) throw std::runtime_error(failure);
    dir_.write("pgweir.log", "");
    port_ = free_port();
  }
}

std::string Pgweir::wait_listening(const PgweirOptions& options) {
  auto where = options.wait_host + ":" + std::to_string(port_);
  auto deadline = std::chrono::steady_clock::now() + options.ready_timeout;
  for (;;) {
    if (!child_.running()) {
      auto code = child_.wait(0ms);
      return "pgweir exited with status " + std::to_string(code.value_or(-1)) + " before listening on " + where +
             "\nconfig:\n" + read_file(config_path_) + "\nlog:\n" + log_text();
    }
    if (can_connect(options.wait_host, port_)) return {};
    if (std::chrono::steady_clock::now() >= deadline) {
      child_.kill();
      return "pgweir did not listen on " + where + " within " + std::to_string(options.ready_timeout.count()) +
             " ms\nconfig:\n" + read_file(config_path_) + "\nlog:\n" + log_text();
    }
    std::this_thread::sleep_for(20ms);
  }
}

Pgweir::~Pgweir() {
  if (child_.running()) stop();
}

std::string Pgweir::expand(const std::string& toml) const {
  auto text = substitute(toml, {{"@PORT@", std::to_string(port_)}, {"@DIR@", dir_.path()}});
  // PGWEIR_TEST_IO runs a suite with another server.io (ctest runs the relay suites again with epoll). The key
  // goes right after the [server] header, or in a [server] table of its own at the end; a test that sets
  // server.io itself keeps its own.
  const char* io = std::getenv("PGWEIR_TEST_IO");
  if (!io || !*io || text.find("\nio = ") != std::string::npos || text.rfind("io = ", 0) == 0) return text;
  auto line = std::string("io = \"") + io + "\"\n";
  auto header = text.find("[server]\n");
  if (header != std::string::npos && (header == 0 || text[header - 1] == '\n')) {
    text.insert(header + 9, line);
  } else {
    text += "\n[server]\n" + line;
  }
  return text;
}

std::string Pgweir::log_text() const { return read_file(log_path_); }

std::string Pgweir::conninfo(const std::string& db, const std::string& user, const std::string& password,
                             const std::string& extra) const {
  auto s = "host=127.0.0.1 port=" + std::to_string(port_) + " dbname=" + conninfo_quote(db) +
           " user=" + conninfo_quote(user) + " connect_timeout=30";
  if (!password.empty()) s += " password=" + conninfo_quote(password);
  if (extra.find("sslmode") == std::string::npos) s += " sslmode=disable";
  if (!extra.empty()) s += " " + extra;
  return s;
}

void Pgweir::rewrite_config(const std::string& toml) { dir_.write("pgweir.toml", expand(toml)); }

void Pgweir::reload() { child_.signal(SIGHUP); }

std::optional<int> Pgweir::stop(std::chrono::milliseconds timeout) {
  child_.signal(SIGTERM);
  auto code = child_.wait(timeout);
  if (!code) child_.kill();
  return code;
}

}  // namespace pgweir::test
