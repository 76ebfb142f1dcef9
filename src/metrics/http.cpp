// The metrics HTTP endpoint: routing (/metrics, /healthz, /readyz), the accept loop and one keep-alive session
// coroutine per connection. Malformed requests get 400 and a close; nothing a peer sends ends the accept loop.
#include "pgweir/metrics/http.hpp"

#include <atomic>
#include <memory>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "pgweir/config/config.hpp"
#include "pgweir/core/limits.hpp"

namespace pgweir::metrics {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Stream = beast::basic_stream<tcp, net::Executor>;

HttpReply route(std::string_view method, std::string_view target, Registry& registry, const HealthProbe& probe) {
  const std::string_view path = target.substr(0, target.find('?'));
  HttpReply r;
  if (path != "/metrics" && path != "/healthz" && path != "/readyz") {
    r.status = 404;
    r.body = "not found; try /metrics, /healthz or /readyz\n";
    return r;
  }
  if (method != "GET") {
    r.status = 405;
    r.body = "method not allowed\n";
    r.allow_get_header = true;
    return r;
  }
  if (path == "/metrics") {
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = registry.render();
  } else if (path == "/healthz") {
    r.body = "ok\n";
  } else {
    const HealthState h = probe ? probe() : HealthState{true, {}};
    r.status = h.ready ? 200 : 503;
    r.body = h.ready ? std::string("ready\n") : (h.reason.empty() ? "not ready" : h.reason) + "\n";
  }
  return r;
}

Expected<Acceptor> bind_http(net::Executor executor, std::string_view listen) {
  // The config accepts ports 1-65535 only; port 0 (an ephemeral port) is for tests, so parse it as port 1.
  const bool ephemeral = listen.ends_with(":0");
  auto address = config::parse_listen_address(
      ephemeral ? std::string(listen.substr(0, listen.size() - 1)) + "1" : std::string(listen));
  if (!address) return make_error("metrics listen address \"" + std::string(listen) + "\" is not host:port");
  if (ephemeral) address->port = 0;
  const std::string where = "metrics endpoint " + std::string(listen);
  net::ErrorCode ec;
  tcp::resolver resolver(executor);
  const auto endpoints = resolver.resolve(address->host, std::to_string(address->port),
                                          tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec) return make_error(where + ": " + ec.message());
  for (const auto& entry : endpoints) {
    Acceptor acceptor(executor);
    acceptor.open(entry.endpoint().protocol(), ec);
    if (ec) continue;
    acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    acceptor.bind(entry.endpoint(), ec);
    if (ec) continue;
    acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) continue;
    return Expected<Acceptor>(std::move(acceptor));
  }
  return make_error(where + ": " + (ec ? ec.message() : std::string("no address to listen on")));
}

namespace {

bool is_parse_error(const net::ErrorCode& ec) {
  // end_of_stream and partial_message mean the peer went away, not that it sent garbage.
  return ec.category() == http::make_error_code(http::error::bad_method).category() &&
         ec != http::error::end_of_stream && ec != http::error::partial_message;
}

http::response<http::string_body> to_response(HttpReply reply, unsigned version) {
  http::response<http::string_body> res{static_cast<http::status>(reply.status), version};
  res.set(http::field::server, "pgweir");
  res.set(http::field::content_type, reply.content_type);
  if (reply.allow_get_header) res.set(http::field::allow, "GET");
  res.body() = std::move(reply.body);
  return res;
}

net::Task<void> serve_connection(Stream stream, Registry& registry, HealthProbe probe,
                                 std::shared_ptr<std::atomic<int>> live) {
  struct Release {
    std::atomic<int>& n;
    ~Release() { n.fetch_sub(1, std::memory_order_relaxed); }
  } release{*live};

  beast::flat_buffer buffer(k_http_max_header_bytes + k_http_max_body_bytes);
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(k_http_max_header_bytes));
    parser.body_limit(k_http_max_body_bytes);
    stream.expires_after(k_http_idle_timeout);
    auto [ec, n] = co_await http::async_read(stream, buffer, parser, net::use_tuple);
    (void)n;
    if (ec) {
      if (is_parse_error(ec)) {
        auto res = to_response(HttpReply{400, "text/plain; charset=utf-8", "bad request: " + ec.message() + "\n"}, 11);
        res.keep_alive(false);
        res.prepare_payload();
        stream.expires_after(k_http_idle_timeout);
        co_await http::async_write(stream, res, net::use_tuple);
      }
      break;
    }
    const auto& req = parser.get();
    auto res = to_response(route(req.method_string(), req.target(), registry, probe), req.version());
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    stream.expires_after(k_http_idle_timeout);
    auto [wec, wn] = co_await http::async_write(stream, res, net::use_tuple);
    (void)wn;
    if (wec || !res.keep_alive()) break;
  }
  net::ErrorCode ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

}  // namespace

net::Task<void> serve_http(Acceptor& acceptor, Registry& registry, HealthProbe probe) {
  auto live = std::make_shared<std::atomic<int>>(0);
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(net::use_tuple);
    if (!acceptor.is_open() || ec == asio::error::operation_aborted) co_return;
    if (ec) {
      // Out of descriptors and the like: wait instead of spinning on the same error.
      net::Timer backoff(acceptor.get_executor(), limits::k_accept_backoff);
      co_await backoff.async_wait(net::use_tuple);
      continue;
    }
    if (live->load(std::memory_order_relaxed) >= k_http_max_connections) {
      net::ErrorCode ignored;
      socket.close(ignored);
      continue;
    }
    live->fetch_add(1, std::memory_order_relaxed);
    asio::co_spawn(acceptor.get_executor(),
                   serve_connection(Stream(std::move(socket)), registry, probe, live), asio::detached);
  }
}

}  // namespace pgweir::metrics
