// The standard process_* metrics, read from /proc/self at scrape time (Linux only; elsewhere they are left out).
#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "pgweir/metrics/registry.hpp"

namespace pgweir::metrics {
namespace {

std::optional<std::string> read_text(const char* path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The fields of /proc/self/stat after "(comm)": comm may hold spaces and parentheses, so split after the last ')'.
// fields[0] is field 3 (state) of proc(5).
std::vector<std::string_view> stat_fields(std::string_view stat) {
  std::vector<std::string_view> fields;
  const auto close = stat.rfind(')');
  if (close == std::string_view::npos) return fields;
  stat.remove_prefix(close + 1);
  while (!stat.empty()) {
    const auto start = stat.find_first_not_of(" \n");
    if (start == std::string_view::npos) break;
    stat.remove_prefix(start);
    const auto end = stat.find_first_of(" \n");
    fields.push_back(stat.substr(0, end));
    if (end == std::string_view::npos) break;
    stat.remove_prefix(end);
  }
  return fields;
}

std::optional<unsigned long long> to_ull(std::string_view s) {
  unsigned long long v = 0;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc{} || r.ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<unsigned long long> boot_time_seconds() {
  const auto text = read_text("/proc/stat");
  if (!text) return std::nullopt;
  const auto pos = text->find("\nbtime ");
  if (pos == std::string::npos) return std::nullopt;
  const auto begin = pos + 7;
  const auto end = text->find('\n', begin);
  return to_ull(std::string_view(*text).substr(begin, end == std::string::npos ? std::string::npos : end - begin));
}

std::optional<long> open_fds() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (!dir) return std::nullopt;
  long n = 0;
  while (const dirent* e = ::readdir(dir))
    if (e->d_name[0] != '.') ++n;
  ::closedir(dir);
  return n - 1;  // the directory stream's own descriptor
}

}  // namespace

void write_process_metrics(Writer& out) {
  const long ticks = ::sysconf(_SC_CLK_TCK);
  const long page = ::sysconf(_SC_PAGESIZE);
  if (const auto stat = read_text("/proc/self/stat"); stat && ticks > 0) {
    const auto f = stat_fields(*stat);
    // proc(5) numbering: utime 14, stime 15, starttime 22, vsize 23, rss 24; f[0] is field 3.
    auto field = [&](std::size_t n) { return f.size() > n - 3 ? to_ull(f[n - 3]) : std::nullopt; };
    const auto utime = field(14), stime = field(15), start = field(22), vsize = field(23), rss = field(24);
    if (utime && stime)
      out.counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", {},
                  static_cast<double>(*utime + *stime) / static_cast<double>(ticks));
    if (rss && page > 0)
      out.gauge("process_resident_memory_bytes", "Resident memory size in bytes.", {},
                static_cast<double>(*rss) * static_cast<double>(page));
    if (vsize)
      out.gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", {}, static_cast<double>(*vsize));
    if (const auto boot = boot_time_seconds(); boot && start)
      out.gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", {},
                static_cast<double>(*boot) + static_cast<double>(*start) / static_cast<double>(ticks));
  }
  if (const auto fds = open_fds())
    out.gauge("process_open_fds", "Number of open file descriptors.", {}, static_cast<double>(*fds));
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY)
    out.gauge("process_max_fds", "Maximum number of open file descriptors.", {},
              static_cast<double>(limit.rlim_cur));
}

}  // namespace pgweir::metrics
