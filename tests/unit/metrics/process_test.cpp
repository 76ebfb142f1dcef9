// The process_* metrics from /proc/self, and promtool's verdict on a full rendered sample when promtool is installed.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <unistd.h>

#include "pgweir/metrics/pgweir_metrics.hpp"
#include "pgweir/metrics/registry.hpp"

using namespace pgweir::metrics;

namespace {

// The value of the sample line that starts with `name ` (unlabelled), or -1.
double sample_value(const std::string& text, const std::string& name) {
  const auto pos = text.find("\n" + name + " ");
  if (pos == std::string::npos) return -1;
  return std::stod(text.substr(pos + name.size() + 2));
}

bool on_path(const char* tool) {
  const char* path = std::getenv("PATH");
  if (!path) return false;
  std::string p = path;
  std::size_t start = 0;
  while (start <= p.size()) {
    const auto end = p.find(':', start);
    const std::string dir = p.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (::access((dir + "/" + tool).c_str(), X_OK) == 0) return true;
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return false;
}

}  // namespace

TEST_CASE("process metrics are read from /proc/self") {
  Writer w;
  write_process_metrics(w);
  const std::string text = "\n" + w.finish();
  CHECK(text.find("# TYPE process_cpu_seconds_total counter\n") != std::string::npos);
  CHECK(sample_value(text, "process_cpu_seconds_total") >= 0);
  CHECK(sample_value(text, "process_resident_memory_bytes") > 0);
  CHECK(sample_value(text, "process_virtual_memory_bytes") >= sample_value(text, "process_resident_memory_bytes"));
  CHECK(sample_value(text, "process_open_fds") >= 3);  // at least stdin, stdout, stderr
  CHECK(sample_value(text, "process_max_fds") >= sample_value(text, "process_open_fds"));
  const double start = sample_value(text, "process_start_time_seconds");
  const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  CHECK(start > 1e9);  // after 2001: the value is an epoch time, not a tick count
  CHECK(start <= now + 1);
}

TEST_CASE("process_open_fds follows opened descriptors") {
  auto count = [] {
    Writer w;
    write_process_metrics(w);
    return sample_value("\n" + w.finish(), "process_open_fds");
  };
  const double before = count();
  std::FILE* f = std::fopen("/proc/self/stat", "r");
  REQUIRE(f);
  const double during = count();
  std::fclose(f);
  CHECK(during == before + 1);
}

TEST_CASE("promtool check metrics accepts a full rendered sample") {
  if (!on_path("promtool")) {
    MESSAGE("promtool not on PATH; skipped");
    return;
  }
  Registry r;
  Metrics m(r, "0.1.0-test");
  auto cells = m.for_pool("appdb", "app \"quoted\"\\x");
  cells.transactions.inc(5);
  cells.queries.inc(9);
  cells.bytes_received.inc(1000);
  cells.bytes_sent.inc(4000);
  cells.wait.observe(0.01);
  cells.query_duration.observe(0.2);
  cells.transaction_duration.observe(0.4);
  m.server_connect_error("appdb", "app", "auth_failed").inc();
  m.client_disconnects.with({"client_close"}).inc();
  m.ready.with().set(1);
  add_pool_collector(r, [] {
    PoolGauges p;
    p.database = "appdb";
    p.user = "app\nnewline";
    return std::vector<PoolGauges>{p};
  });
  r.add_process_collector();
  char path[] = "/tmp/pgweir_metrics_XXXXXX";
  const int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  ::close(fd);
  {
    std::ofstream out(path);
    out << r.render();
  }
  const std::string cmd = std::string("promtool check metrics < ") + path + " > " + path + ".out 2>&1";
  const int rc = std::system(cmd.c_str());
  std::ifstream in(std::string(path) + ".out");
  const std::string report((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CAPTURE(report);
  CHECK(rc == 0);
  CHECK(report.empty());  // lint findings (naming, units) are printed even when the exit code is 0
  std::remove(path);
  std::remove((std::string(path) + ".out").c_str());
}
