// The metrics HTTP endpoint over a real socket: routes, status codes, keep-alive, and garbage that must not stop it.
#include <doctest/doctest.h>

#include <sys/socket.h>
#include <sys/time.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "pgweir/metrics/http.hpp"

using namespace pgweir;
using namespace pgweir::metrics;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

// A server on 127.0.0.1:<ephemeral> running in its own thread for the test's lifetime.
class TestServer {
 public:
  TestServer() {
    registry_.counter("pgweir_test_total", "Test counter.").with().inc(3);
    auto bound = bind_http(io_.get_executor(), "127.0.0.1:0");
    REQUIRE(bound);
    acceptor_ = std::make_unique<Acceptor>(std::move(bound.value()));
    port_ = acceptor_->local_endpoint().port();
    asio::co_spawn(io_, serve_http(*acceptor_, registry_, [this] {
                     return ready_.load() ? HealthState{true, {}} : HealthState{false, "no database reachable"};
                   }),
                   asio::detached);
    thread_ = std::thread([this] { io_.run(); });
  }
  ~TestServer() {
    asio::post(io_, [this] { acceptor_->close(); });
    io_.stop();
    thread_.join();
  }
  std::uint16_t port() const { return port_; }
  void set_ready(bool r) { ready_ = r; }

 private:
  asio::io_context io_;
  Registry registry_;
  std::atomic<bool> ready_{true};
  std::unique_ptr<Acceptor> acceptor_;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

struct Response {
  int status = 0;
  std::string head;
  std::string body;
};

// A raw blocking client: what a scraper or a probe does, byte for byte.
class Client {
 public:
  explicit Client(std::uint16_t port) : socket_(io_) {
    socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    // A safety net so that a broken server fails the test instead of hanging it; nothing asserts on time.
    timeval tv{10, 0};
    ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  void send(const std::string& bytes) { asio::write(socket_, asio::buffer(bytes)); }

  // Reads one response (headers, then Content-Length bytes). status 0 when the server closed first.
  Response read_response() {
    Response r;
    while (buffer_.find("\r\n\r\n") == std::string::npos)
      if (!fill()) return r;
    const auto end = buffer_.find("\r\n\r\n");
    r.head = buffer_.substr(0, end);
    buffer_.erase(0, end + 4);
    r.status = std::stoi(r.head.substr(9, 3));
    std::size_t length = 0;
    if (const auto pos = lower(r.head).find("content-length:"); pos != std::string::npos)
      length = std::stoul(r.head.substr(pos + 15));
    while (buffer_.size() < length)
      if (!fill()) return r;
    r.body = buffer_.substr(0, length);
    buffer_.erase(0, length);
    return r;
  }
  Response get(const std::string& path) {
    send("GET " + path + " HTTP/1.1\r\nHost: localhost\r\n\r\n");
    return read_response();
  }
  // True when the server has closed the connection (EOF with nothing more to read).
  bool closed_by_server() {
    while (fill()) {
    }
    return eof_;
  }

 private:
  static std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  }
  bool fill() {
    char buf[4096];
    boost::system::error_code ec;
    const auto n = socket_.read_some(asio::buffer(buf), ec);
    if (ec == asio::error::eof) eof_ = true;
    if (ec) return false;
    buffer_.append(buf, n);
    return true;
  }
  asio::io_context io_;
  tcp::socket socket_;
  std::string buffer_;
  bool eof_ = false;
};

}  // namespace

TEST_CASE("routes answer with the right status codes over one keep-alive connection") {
  TestServer server;
  Client c(server.port());

  auto metrics = c.get("/metrics");
  CHECK(metrics.status == 200);
  CHECK(metrics.head.find("Content-Type: text/plain; version=0.0.4") != std::string::npos);
  CHECK(metrics.body.find("pgweir_test_total 3\n") != std::string::npos);

  CHECK(c.get("/metrics?name[]=x").status == 200);  // scrapers may add query parameters

  auto health = c.get("/healthz");
  CHECK(health.status == 200);
  CHECK(health.body == "ok\n");

  CHECK(c.get("/readyz").status == 200);
  server.set_ready(false);
  auto not_ready = c.get("/readyz");
  CHECK(not_ready.status == 503);
  CHECK(not_ready.body == "no database reachable\n");
  server.set_ready(true);
  CHECK(c.get("/readyz").status == 200);

  CHECK(c.get("/nope").status == 404);

  c.send("POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi");
  auto post = c.read_response();
  CHECK(post.status == 405);
  CHECK(post.head.find("Allow: GET") != std::string::npos);

  CHECK(c.get("/healthz").status == 200);  // still the same connection
}

TEST_CASE("two pipelined requests in one write get two responses in order") {
  TestServer server;
  Client c(server.port());
  c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(c.read_response().status == 200);
  CHECK(c.read_response().status == 404);
}

TEST_CASE("HTTP/1.0 without keep-alive is answered and closed") {
  TestServer server;
  Client c(server.port());
  c.send("GET /healthz HTTP/1.0\r\n\r\n");
  CHECK(c.read_response().status == 200);
  CHECK(c.closed_by_server());
}

TEST_CASE("garbage gets 400 and a close, and the server still serves the next connection") {
  TestServer server;
  const std::string garbage[] = {
      std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11),  // a TLS ClientHello
      "GARBAGE\r\n\r\n",
      "GET /metrics HTTP/9.9\r\n\r\n",
      "GET /metrics HTTP/1.1\r\nBad Header Without Colon\r\n\r\n",
      "GET /metrics HTTP/1.1\r\nX: " + std::string(20000, 'a') + "\r\n\r\n",  // over the header limit
      "POST /metrics HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n",         // over the body limit
      std::string("\0\0\0\x08\x04\xd2\x16\x2f", 8),                          // a PostgreSQL SSLRequest
  };
  for (const auto& g : garbage) {
    CAPTURE(g.substr(0, 40));
    {
      Client c(server.port());
      c.send(g);
      const auto r = c.read_response();
      CHECK((r.status == 400 || r.status == 0));
      CHECK(c.closed_by_server());
    }
    Client next(server.port());
    CHECK(next.get("/healthz").status == 200);
  }
}

TEST_CASE("a client that closes mid-request does not disturb the server") {
  TestServer server;
  {
    Client c(server.port());
    c.send("GET /metr");
  }
  Client next(server.port());
  CHECK(next.get("/metrics").status == 200);
}

TEST_CASE("bind_http reports bad addresses and ports in use") {
  asio::io_context io;
  auto bad = bind_http(io.get_executor(), "not an address");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message.find("not an address") != std::string::npos);

  auto first = bind_http(io.get_executor(), "127.0.0.1:0");
  REQUIRE(first);
  const auto port = first->local_endpoint().port();
  auto second = bind_http(io.get_executor(), "127.0.0.1:" + std::to_string(port));
  REQUIRE_FALSE(second);
  CHECK(second.error().message.find("in use") != std::string::npos);
}

TEST_CASE("route is pure and handles odd targets") {
  Registry r;
  HealthProbe none;
  CHECK(route("GET", "/readyz", r, none).status == 200);  // no probe: ready
  CHECK(route("GET", "", r, none).status == 404);
  CHECK(route("GET", "*", r, none).status == 404);
  CHECK(route("DELETE", "/healthz", r, none).status == 405);
  CHECK(route("DELETE", "/other", r, none).status == 404);
}
