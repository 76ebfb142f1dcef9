// The metrics HTTP endpoint (SPEC §5): GET /metrics, /healthz, /readyz over HTTP/1.1 with keep-alive, one
// coroutine per connection. Built on Beast; only this header and src/metrics/http.cpp know about it.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include <boost/asio/ip/tcp.hpp>

#include "pgweir/core/result.hpp"
#include "pgweir/metrics/registry.hpp"
#include "pgweir/net/asio.hpp"

namespace pgweir::metrics {

// Limits of the endpoint, in one place.
inline constexpr std::size_t k_http_max_header_bytes = 8 * 1024;
inline constexpr std::size_t k_http_max_body_bytes = 4 * 1024;  // GET has no body; a little slack for odd clients
inline constexpr std::chrono::seconds k_http_idle_timeout{30};  // per read and per write
inline constexpr int k_http_max_connections = 64;               // scrapers and probes, not clients

struct HealthState {
  bool ready = false;
  std::string reason;  // why not ready; sent as /readyz's 503 body
};
using HealthProbe = std::function<HealthState()>;

// What one request gets, before HTTP framing. Pure, for tests and for the server below.
struct HttpReply {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  bool allow_get_header = false;  // 405: send "Allow: GET"
};
HttpReply route(std::string_view method, std::string_view target, Registry& registry, const HealthProbe& probe);

using Acceptor = boost::asio::basic_socket_acceptor<boost::asio::ip::tcp, net::Executor>;

// Binds and listens on "host:port" ("127.0.0.1:9127", "[::1]:0", "localhost:9127"). The error text says which
// address and why ("address already in use").
Expected<Acceptor> bind_http(net::Executor executor, std::string_view listen);

// Accepts until the acceptor is closed (close() it from its executor to stop), then returns. Each connection runs
// in its own coroutine on the acceptor's executor and ends on client close, error, or k_http_idle_timeout of silence.
// `registry` and whatever `probe` refers to must outlive those connections (stop the io_context before destroying
// them).
net::Task<void> serve_http(Acceptor& acceptor, Registry& registry, HealthProbe probe);

}  // namespace pgweir::metrics
