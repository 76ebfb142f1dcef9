// message_io's read-ahead and Transport::unread: whatever follows a message comes back in order, nothing lost;
// peer_address as logs and SHOW CLIENTS show it.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "pgweir/net/message_io.hpp"
#include "pgweir/net/transport.hpp"
#include "pgweir/protocol/messages.hpp"

using namespace pgweir;
using namespace std::chrono_literals;

namespace {

std::string be32(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

std::string startup_packet() {
  std::string body = be32(196608) + std::string("user\0alice\0database\0db\0\0", 24);
  return be32(static_cast<std::uint32_t>(body.size() + 4)) + body;
}

std::string message(char tag, const std::string& body) {
  return std::string(1, tag) + be32(static_cast<std::uint32_t>(body.size() + 4)) + body;
}

// One end of a socket pair as a Transport on `io`; the other end's fd is returned for the test to write.
struct Pair {
  net::asio::io_context io;
  std::optional<net::Transport> transport;
  int peer = -1;
  Pair() {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    transport.emplace(net::Socket(io, net::asio::generic::stream_protocol(AF_UNIX, 0), fds[0]));
    peer = fds[1];
  }
  ~Pair() {
    if (peer >= 0) ::close(peer);
  }
  void send(const std::string& bytes) { REQUIRE(::send(peer, bytes.data(), bytes.size(), 0) == ssize_t(bytes.size())); }
  template <class F>
  void run(F body) {
    bool done = false;
    net::asio::co_spawn(io, [&]() -> net::Task<void> {
      co_await body(*transport);
      done = true;
    }, net::asio::detached);
    io.run_for(5s);
    CHECK(done);
  }
};

}  // namespace

TEST_CASE("bytes read past a login message are given back and read next, in order") {
  Pair p;
  std::string query = message('Q', std::string("select 1", 9));
  // All in one write, so the first read takes the startup packet, the password message and the query at once.
  p.send(startup_packet() + message('p', std::string("secret", 7)) + query);
  p.run([&](net::Transport& t) -> net::Task<void> {
    std::string buffer;
    auto packet = co_await net::read_startup_packet(t, buffer);
    REQUIRE(packet);
    CHECK(*packet == startup_packet());
    CHECK(t.has_unread());
    auto msg = co_await net::read_message(t, buffer, 1024);
    REQUIRE(msg);
    CHECK(msg->tag == 'p');
    CHECK(msg->body == std::string_view("secret", 7));
    CHECK(t.has_buffered_input());
    // The relay's read gets the rest, then finds the socket empty.
    char out[64];
    auto [ec, n] = co_await t.receive(out, sizeof out);
    CHECK(!ec);
    CHECK(std::string(out, n) == query);
    CHECK(!t.has_unread());
  });
}

TEST_CASE("a startup packet and a password message longer than a client read-ahead are read whole, in order") {
  Pair p;
  std::string options(300, 'o');  // the startup packet alone is longer than k_client_read_ahead
  std::string body = be32(196608) + std::string("user\0alice\0options\0", 19) + options + std::string("\0\0", 2);
  std::string startup = be32(static_cast<std::uint32_t>(body.size() + 4)) + body;
  REQUIRE(startup.size() > net::k_client_read_ahead);
  std::string secret(net::k_client_read_ahead + 100, 's');
  std::string password = message('p', secret + std::string(1, '\0'));
  p.send(startup + password + "Z");
  p.run([&](net::Transport& t) -> net::Task<void> {
    std::string buffer;
    auto packet = co_await net::read_startup_packet(t, buffer);
    REQUIRE(packet);
    CHECK(*packet == startup);
    auto msg = co_await net::read_message(t, buffer, 1024, net::k_client_read_ahead);
    REQUIRE(msg);
    CHECK(msg->tag == 'p');
    CHECK(msg->body == secret + std::string(1, '\0'));
    char out[8];
    auto [ec, n] = co_await t.read_some(out, sizeof out);
    CHECK(!ec);
    CHECK(std::string(out, n) == "Z");
  });
}

TEST_CASE("a message split across writes is read whole") {
  Pair p;
  std::string body(3000, 'x');  // longer than one read-ahead
  std::string whole = message('p', body);
  p.send(whole.substr(0, 3));  // not even a whole header
  std::thread later([&] {
    std::this_thread::sleep_for(50ms);
    p.send(whole.substr(3, 1500));
    std::this_thread::sleep_for(50ms);
    p.send(whole.substr(1503) + "Z");
  });
  p.run([&](net::Transport& t) -> net::Task<void> {
    std::string buffer;
    auto msg = co_await net::read_message(t, buffer, 10000);
    REQUIRE(msg);
    CHECK(msg->tag == 'p');
    CHECK(msg->body == body);
    char out[8];
    auto [ec, n] = co_await t.read_some(out, sizeof out);
    CHECK(!ec);
    CHECK(std::string(out, n) == "Z");
  });
  later.join();
}

TEST_CASE("a declared length over the limit is refused without reading on") {
  Pair p;
  p.send(std::string(1, 'p') + be32(1'000'000));
  p.run([&](net::Transport& t) -> net::Task<void> {
    std::string buffer;
    auto msg = co_await net::read_message(t, buffer, 1024);
    CHECK(!msg);
  });
}

TEST_CASE("unread bytes come before the socket's, and a TLS handshake refuses to start over them") {
  Pair p;
  p.send("cd");
  p.run([&](net::Transport& t) -> net::Task<void> {
    t.unread("b");
    t.unread("a");  // given back later, read first: it came first
    char out[8];
    std::string got;
    while (got.size() < 4) {
      auto [ec, n] = co_await t.receive(out, sizeof out);
      REQUIRE(!ec);
      got.append(out, n);
    }
    CHECK(got == "abcd");
    t.unread("x");
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    auto ec = co_await t.tls_handshake(SSL_new(ctx), true);
    CHECK(ec);
    SSL_CTX_free(ctx);
  });
}

TEST_CASE("peer_address formats IPv4 and IPv6 peers with their port, and unix socket peers as [local]") {
  auto v4 = [](const char* text, std::uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    REQUIRE(::inet_pton(AF_INET, text, &a.sin_addr) == 1);
    return net::peer_address(net::Endpoint(&a, sizeof a));
  };
  for (const char* text : {"0.0.0.0", "127.0.0.1", "10.9.100.255", "255.255.255.255", "1.20.199.9"}) {
    auto peer = v4(text, 5432);
    CHECK(peer.host == text);
    CHECK(peer.port == 5432);
    CHECK(peer.to_string() == std::string(text) + ":5432");
  }
  sockaddr_in6 a6{};
  a6.sin6_family = AF_INET6;
  a6.sin6_port = htons(6000);
  REQUIRE(::inet_pton(AF_INET6, "::1", &a6.sin6_addr) == 1);
  auto six = net::peer_address(net::Endpoint(&a6, sizeof a6));
  CHECK(six.host == "::1");
  CHECK(six.to_string() == "[::1]:6000");
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  auto local = net::peer_address(net::Endpoint(&un, sizeof(sa_family_t)));
  CHECK(local.to_string() == "[local]");
}
