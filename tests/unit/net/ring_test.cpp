// Transport on a loop with an io_uring (server.io = "io_uring", net/ring.hpp): reads, writes and waits go through
// the ring, writes keep their order through the send queue and its backlog, a cancelled read ends with
// operation_aborted, and a connection closed with a send in flight still delivers it, then closes.
#include <doctest/doctest.h>

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <thread>

#include "pgweir/net/ring.hpp"
#include "pgweir/net/transport.hpp"

using namespace pgweir;
using namespace std::chrono_literals;

namespace {

// A socket pair whose first end is a Transport on a loop with a ring (when this kernel makes one); the test reads
// and writes the other end from a thread of its own.
struct RingPair {
  net::asio::io_context io{1};
  std::string unavailable;  // why there is no ring, if there is none
  std::optional<net::Transport> transport;
  int peer = -1;
  RingPair() {
    unavailable = net::Ring::create(io);
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    net::Socket socket(io);
    REQUIRE_FALSE(net::assign_accepted(socket, net::asio::generic::stream_protocol(AF_UNIX, 0), fds[0]));
    transport.emplace(std::move(socket));
    peer = fds[1];
  }
  ~RingPair() {
    transport.reset();
    if (peer >= 0) ::close(peer);
  }
  bool has_ring() const { return unavailable.empty(); }
  // Runs `body` on the loop until it returns and `until` holds (checked every 5 ms), or 10 s pass.
  template <class F, class U>
  bool run(F body, U until) {
    bool done = false;
    net::asio::co_spawn(io, [&]() -> net::Task<void> {
      co_await body(*transport);
      net::Timer tick(io);
      for (auto deadline = net::Clock::now() + 10s; !until() && net::Clock::now() < deadline;) {
        tick.expires_after(5ms);
        co_await tick.async_wait(net::use_tuple);
      }
      done = until();
      io.stop();
    }, net::asio::detached);
    io.run();
    return done;
  }
};

// Reads from `fd` until end of stream.
std::string read_all(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return out;
    out.append(buf, static_cast<std::size_t>(n));
  }
}

// Reads the peer's end on a thread of its own, starting late so that the socket's buffer fills and the ring's
// sends wait for it, until end of stream.
struct LateReader {
  std::atomic<bool> done{false};
  std::string received;
  std::thread thread;
  int fd;
  explicit LateReader(int peer)
      : thread([this, peer] {
          std::this_thread::sleep_for(100ms);
          received = read_all(peer);
          done = true;
        }),
        fd(peer) {}
  ~LateReader() {
    if (!thread.joinable()) return;
    ::shutdown(fd, SHUT_RDWR);  // a test that failed before closing its end: the read ends here
    thread.join();
  }
};

std::string pattern(std::size_t n, char seed) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>(seed + i % 23);
  return s;
}

}  // namespace

TEST_CASE("with a ring: writes of every kind arrive whole and in order, past the send backlog") {
  RingPair p;
  if (!p.has_ring()) {
    MESSAGE("no io_uring here (" << p.unavailable << "): the transport runs on epoll, checked the same way");
  }
  CHECK((p.transport->ring() != nullptr) == p.has_ring());
  std::string expected;
  LateReader reader(p.peer);
  bool ok = p.run(
      [&](net::Transport& t) -> net::Task<void> {
        for (int i = 0; i < 40; ++i) {
          auto small = pattern(100 + i, 'a');
          auto big = pattern(48 * 1024 + i, 'A');
          net::ErrorCode ec;
          net::asio::const_buffer b1(small.data(), small.size());
          auto taken = t.write_now(std::span(&b1, 1), ec);
          REQUIRE_FALSE(ec);
          if (taken < small.size()) {
            auto rest = std::string_view(small).substr(taken);
            REQUIRE_FALSE(co_await t.write_all(rest));
          }
          expected += small;
          REQUIRE_FALSE(co_await t.write_all(big));
          expected += big;
        }
        REQUIRE_FALSE(co_await t.flush());
        CHECK_FALSE(t.sending());
        t.close();
      },
      [&] { return reader.done.load(); });
  reader.thread.join();
  CHECK(ok);
  CHECK(reader.received.size() == expected.size());
  CHECK(reader.received == expected);
}

TEST_CASE("with a ring: a read gets what the peer sends, and a cancelled read ends with operation_aborted") {
  RingPair p;
  std::string first, second;
  net::ErrorCode cancelled;
  bool ok = p.run(
      [&](net::Transport& t) -> net::Task<void> {
        REQUIRE(::send(p.peer, "hello", 5, 0) == 5);
        char buf[64];
        net::ReadResult got;
        co_await t.receive_into(buf, sizeof buf, got);
        auto [ec, n] = got.take();
        REQUIRE_FALSE(ec);
        first.assign(buf, n);
        // A read with nothing to read, cancelled from a timer: aborted, and nothing sent after it is lost.
        net::Timer later(t.executor());
        later.expires_after(20ms);
        later.async_wait([&](net::ErrorCode) { t.cancel(); });
        net::ReadResult waited;
        co_await t.receive_into(buf, sizeof buf, waited);
        cancelled = std::get<0>(waited.take());
        REQUIRE(::send(p.peer, "again", 5, 0) == 5);
        auto [ec2, n2] = co_await t.receive(buf, sizeof buf);
        REQUIRE_FALSE(ec2);
        second.assign(buf, n2);
      },
      [] { return true; });
  CHECK(ok);
  CHECK(first == "hello");
  CHECK(cancelled == net::asio::error::operation_aborted);
  CHECK(second == "again");
}

TEST_CASE("with a ring: a connection closed with a send in flight delivers it, then the peer sees the close") {
  RingPair p;
  auto payload = pattern(4 * 1024 * 1024, '0');  // far more than a socket pair buffers
  LateReader reader(p.peer);
  bool ok = p.run(
      [&](net::Transport& t) -> net::Task<void> {
        net::ErrorCode ec;
        net::asio::const_buffer b(payload.data(), payload.size());
        auto taken = t.write_now(std::span(&b, 1), ec);
        REQUIRE_FALSE(ec);
        if (t.ring()) {
          CHECK(taken == payload.size());  // queued whole: the ring sends it
          CHECK(t.sending());
        } else if (taken < payload.size()) {
          REQUIRE_FALSE(co_await t.write_all(std::string_view(payload).substr(taken)));
        }
        t.close();  // with the send still in flight
        co_return;
      },
      [&] { return reader.done.load(); });
  reader.thread.join();
  CHECK(ok);
  CHECK(reader.received.size() == payload.size());
  CHECK(reader.received == payload);
}
