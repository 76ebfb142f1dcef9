// Test harness: temporary directories, running commands to completion, and owning a spawned child process.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace pgweir::test {

using namespace std::chrono_literals;

// A fresh directory under /tmp, removed with everything in it on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "pgweir-it");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  // Writes `text` to path()/name (mode 0600) and returns the full path.
  std::string write(const std::string& name, const std::string& text) const;

 private:
  std::string path_;
};

std::string read_file(const std::string& path);

struct RunResult {
  int exit_code = -1;  // the child's exit status; 128+N if killed by signal N; -1 if it timed out
  std::string output;  // stdout and stderr, interleaved
};

using Env = std::map<std::string, std::string>;

// Runs argv (argv[0] looked up on PATH) with extra environment variables, waits for it and returns its
// exit code and output. A child still running after `timeout` is killed.
RunResult run(const std::vector<std::string>& argv, const Env& env = {},
              std::chrono::milliseconds timeout = 120s);

// Shell-quoted argv, for failure messages.
std::string describe(const std::vector<std::string>& argv);

// A running child with stdout and stderr appended to a file; killed (SIGKILL) if this process dies.
class Child {
 public:
  Child() = default;
  Child(const std::vector<std::string>& argv, const std::string& log_path, const Env& env = {});
  ~Child();
  Child(Child&& other) noexcept;
  Child& operator=(Child&& other) noexcept;

  pid_t pid() const { return pid_; }
  bool running();
  void signal(int sig);
  // Waits up to `timeout` for the child to exit; returns its exit code (128+N if killed by signal N).
  std::optional<int> wait(std::chrono::milliseconds timeout);
  // SIGKILL and reap.
  void kill();

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
};

// Starts `sh -c script` detached from this process (it survives a test crash or a ctest timeout kill),
// with its stdin a pipe that reaches EOF when this process exits: a script beginning `cat >/dev/null;`
// runs the rest as clean-up after us. Returns the pipe's write end; close it to run the clean-up now.
int spawn_reaper(const std::string& script);

// Gives `path` to the postgres user when this process is root; does nothing otherwise.
void give_to_postgres_user(const std::string& path);

// Runs `argv` prefixed with `runuser -u postgres --` when this process is root (PostgreSQL refuses to run
// as root), unchanged otherwise.
std::vector<std::string> as_postgres_user(std::vector<std::string> argv);
bool running_as_root();

}  // namespace pgweir::test
