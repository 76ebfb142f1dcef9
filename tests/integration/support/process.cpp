// Test harness: temp dirs, run-to-completion of commands with captured output, and owned child processes
// (fork/exec with a parent-death signal, so a crashed test leaves no daemon behind).
#include "support/process.hpp"

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <poll.h>
#include <pwd.h>
#include <sstream>
#include <stdexcept>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

extern char** environ;

namespace pgweir::test {

namespace {

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

// Built before fork: only async-signal-safe calls may run in the child of a threaded process.
struct ExecImage {
  std::vector<std::string> args, env;
  std::vector<char*> argv, envp;

  ExecImage(const std::vector<std::string>& a, const Env& extra) : args(a) {
    if (args.empty()) throw std::invalid_argument("empty command line");
    for (char** e = environ; *e != nullptr; ++e) {
      std::string entry = *e;
      auto name = entry.substr(0, entry.find('='));
      if (!extra.contains(name)) env.push_back(std::move(entry));
    }
    for (const auto& [k, v] : extra) env.push_back(k + "=" + v);
    for (auto& s : args) argv.push_back(s.data());
    argv.push_back(nullptr);
    for (auto& s : env) envp.push_back(s.data());
    envp.push_back(nullptr);
  }
};

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// In the child: stdin from /dev/null, stdout+stderr to `out_fd`, then exec. Never returns.
[[noreturn]] void exec_child(ExecImage& image, int out_fd, bool die_with_parent) {
  if (die_with_parent) prctl(PR_SET_PDEATHSIG, SIGKILL);
  int null_fd = open("/dev/null", O_RDONLY);
  if (null_fd >= 0) dup2(null_fd, 0);
  dup2(out_fd, 1);
  dup2(out_fd, 2);
  // Default signal dispositions and an empty mask for the new program.
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  execvpe(image.argv[0], image.argv.data(), image.envp.data());
  const char msg[] = "exec failed\n";
  [[maybe_unused]] auto n = write(2, msg, sizeof msg - 1);
  _exit(127);
}

}  // namespace

TempDir::TempDir(const std::string& prefix) {
  std::string tmpl = "/tmp/" + prefix + "-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error(errno_text("mkdtemp " + tmpl));
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::write(const std::string& name, const std::string& text) const {
  auto p = file(name);
  {
    std::ofstream out(p, std::ios::trunc | std::ios::binary);
    out << text;
    if (!out) throw std::runtime_error("cannot write " + p);
  }
  ::chmod(p.c_str(), 0600);
  return p;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string describe(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) out += ' ';
    if (a.find_first_of(" '\"\\$") == std::string::npos && !a.empty()) {
      out += a;
    } else {
      out += '\'';
      for (char c : a) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
      out += '\'';
    }
  }
  return out;
}

RunResult run(const std::vector<std::string>& argv, const Env& env, std::chrono::milliseconds timeout) {
  ExecImage image(argv, env);
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error(errno_text("pipe2"));
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error(errno_text("fork"));
  if (pid == 0) exec_child(image, fds[1], true);
  close(fds[1]);

  RunResult result;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  bool timed_out = false;
  char buf[8192];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    int r = poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 1000)));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    ssize_t n = read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    result.output.append(buf, static_cast<size_t>(n));
  }
  close(fds[0]);
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = timed_out ? -1 : decode_status(status);
  if (timed_out) result.output += "\n[harness: killed after " + std::to_string(timeout.count()) + " ms]\n";
  return result;
}

Child::Child(const std::vector<std::string>& argv, const std::string& log_path, const Env& env) {
  ExecImage image(argv, env);
  int out = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (out < 0) throw std::runtime_error(errno_text("open " + log_path));
  pid_ = fork();
  if (pid_ < 0) {
    close(out);
    throw std::runtime_error(errno_text("fork"));
  }
  if (pid_ == 0) exec_child(image, out, true);
  close(out);
}

Child::~Child() { kill(); }

Child::Child(Child&& other) noexcept : pid_(other.pid_), exit_code_(other.exit_code_) { other.pid_ = -1; }

Child& Child::operator=(Child&& other) noexcept {
  if (this != &other) {
    kill();
    pid_ = other.pid_;
    exit_code_ = other.exit_code_;
    other.pid_ = -1;
  }
  return *this;
}

bool Child::running() {
  if (pid_ < 0 || exit_code_) return false;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_code_ = decode_status(status);
    return false;
  }
  return true;
}

void Child::signal(int sig) {
  if (running()) ::kill(pid_, sig);
}

std::optional<int> Child::wait(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (running()) {
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(20ms);
  }
  return exit_code_;
}

void Child::kill() {
  if (pid_ < 0) return;
  if (running()) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    exit_code_ = decode_status(status);
  }
  pid_ = -1;
}

int spawn_reaper(const std::string& script) {
  ExecImage image({"sh", "-c", script}, {});
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error(errno_text("pipe2"));
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error(errno_text("fork"));
  if (pid == 0) {
    // Double fork: the reaper is re-parented to init, so killing this process tree leaves it running.
    setsid();
    if (fork() != 0) _exit(0);
    dup2(fds[0], 0);
    int null_fd = open("/dev/null", O_WRONLY);
    if (null_fd >= 0) {
      dup2(null_fd, 1);
      dup2(null_fd, 2);
    }
    execvpe(image.argv[0], image.argv.data(), image.envp.data());
    _exit(127);
  }
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return fds[1];
}

void give_to_postgres_user(const std::string& path) {
  if (!running_as_root()) return;
  passwd* pw = getpwnam("postgres");
  if (pw == nullptr) throw std::runtime_error("running as root, but there is no \"postgres\" user to run PostgreSQL");
  if (::chown(path.c_str(), pw->pw_uid, pw->pw_gid) != 0) throw std::runtime_error(errno_text("chown " + path));
}

bool running_as_root() { return geteuid() == 0; }

std::vector<std::string> as_postgres_user(std::vector<std::string> argv) {
  if (!running_as_root()) return argv;
  std::vector<std::string> out{"runuser", "-u", "postgres", "--"};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

}  // namespace pgweir::test
