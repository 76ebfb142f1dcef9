// pgweir's command line (SPEC §1).
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "pgweir/daemon/daemon.hpp"
#include "pgweir/migrate/pgbouncer.hpp"

namespace {

constexpr const char* k_usage =
    "usage: pgweir [-c FILE]            run in the foreground (logs to stderr)\n"
    "       pgweir --check [-c FILE]    validate the configuration and exit\n"
    "       pgweir --from-pgbouncer FILE.ini   print an equivalent pgweir.toml for a PgBouncer config\n"
    "       pgweir --version | --help\n"
    "\n"
    "FILE defaults to $PGWEIR_CONFIG, else /etc/pgweir/pgweir.toml.\n"
    "Signals: SIGHUP reloads the configuration; SIGTERM/SIGINT shut down gracefully (twice: at once).\n";

// Prints the pgweir.toml equivalent of a pgbouncer.ini to stdout.
int from_pgbouncer(const char* path) {
  std::FILE* in = std::fopen(path, "rb");
  std::string text;
  if (in) {
    char buffer[8192];
    for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, in)) > 0;) text.append(buffer, n);
  }
  if (!in || std::ferror(in)) {
    std::fprintf(stderr, "pgweir: cannot read %s: %s\n", path, std::strerror(errno));
    if (in) std::fclose(in);
    return 1;
  }
  std::fclose(in);
  std::fputs(pgweir::migrate::from_pgbouncer(text, path).c_str(), stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  bool check = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--version" || arg == "-V") {
      std::printf("pgweir %s\n", PGWEIR_VERSION);
      return 0;
    }
    if (arg == "--help" || arg == "-h") {
      std::fputs(k_usage, stdout);
      return 0;
    }
    if (arg == "--from-pgbouncer") {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "pgweir: --from-pgbouncer needs a file name\n%s", k_usage);
        return 1;
      }
      return from_pgbouncer(argv[i + 1]);
    }
    if (arg == "--check") {
      check = true;
    } else if (arg == "-c" || arg == "--config") {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "pgweir: %s needs a file name\n%s", argv[i], k_usage);
        return 1;
      }
      config_path = argv[++i];
    } else if (arg.starts_with("--config=")) {
      config_path = std::string(arg.substr(9));
    } else {
      std::fprintf(stderr, "pgweir: unknown argument \"%s\"\n%s", argv[i], k_usage);
      return 1;
    }
  }
  if (config_path.empty()) {
    const char* env = std::getenv("PGWEIR_CONFIG");
    config_path = env && *env ? env : "/etc/pgweir/pgweir.toml";
  }
  return check ? pgweir::daemon::check(config_path) : pgweir::daemon::run(config_path);
}
