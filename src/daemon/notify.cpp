// sd_notify over a datagram unix socket; abstract socket names start with '@'.
#include "notify.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

namespace pgweir::daemon::notify {
namespace {

void send(const std::string& message) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (!path || !*path) return;
  sockaddr_un addr{};
  std::size_t len = std::strlen(path);
  if (len >= sizeof addr.sun_path) return;
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path, len);
  if (path[0] == '@') addr.sun_path[0] = '\0';
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  ::sendto(fd, message.data(), message.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr),
           static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len));
  ::close(fd);
}

}  // namespace

void ready() { send("READY=1\nSTATUS=serving"); }

void reloading() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  auto usec = static_cast<unsigned long long>(ts.tv_sec) * 1'000'000ULL + static_cast<unsigned long long>(ts.tv_nsec) / 1000;
  send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec));
}

void stopping() { send("STOPPING=1"); }

void start_watchdog(boost::asio::io_context& io) {
  const char* usec_text = std::getenv("WATCHDOG_USEC");
  if (!usec_text) return;
  if (const char* pid = std::getenv("WATCHDOG_PID"); pid && std::strtoul(pid, nullptr, 10) != static_cast<unsigned long>(::getpid()))
    return;
  auto usec = std::strtoull(usec_text, nullptr, 10);
  if (usec == 0) return;
  auto period = std::chrono::microseconds(usec / 2);
  boost::asio::co_spawn(
      io,
      [&io, period]() -> boost::asio::awaitable<void> {
        boost::asio::steady_timer timer(io);
        for (;;) {
          send("WATCHDOG=1");
          timer.expires_after(period);
          co_await timer.async_wait(boost::asio::use_awaitable);
        }
      },
      boost::asio::detached);
}

}  // namespace pgweir::daemon::notify
