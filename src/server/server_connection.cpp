// Server connections: connect, TLS negotiation per sslmode, login to PostgreSQL, control queries, cancel.
#include "pgweir/server/server_connection.hpp"

#include <sys/socket.h>

#include <atomic>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include "pgweir/auth/scram.hpp"
#include "pgweir/core/limits.hpp"
#include "pgweir/core/log.hpp"
#include "pgweir/net/message_io.hpp"

namespace pgweir::server {
namespace {

using namespace boost::asio::experimental::awaitable_operators;
namespace asio = boost::asio;
namespace fe = protocol::frontend;
namespace be = protocol::backend;

std::atomic<std::uint64_t> g_next_id{1};

ConnectError fail(ConnectFailure kind, std::string message) { return ConnectError{kind, std::move(message), {}}; }

// Opens a socket to one endpoint.
net::Task<Expected<net::Socket>> open_socket(const Endpoint& ep, net::Executor executor) {
  net::Socket socket(executor);
  if (ep.is_unix()) {
    std::string path = ep.host + "/.s.PGSQL." + std::to_string(ep.port);
    asio::local::stream_protocol::endpoint local(path);
    auto [ec] = co_await socket.async_connect(asio::generic::stream_protocol::endpoint(local), net::use_tuple);
    if (ec) co_return make_error("cannot connect to " + path + ": " + ec.message());
    co_return std::move(socket);
  }
  asio::ip::tcp::resolver resolver(executor);
  auto [rec, results] = co_await resolver.async_resolve(ep.host, std::to_string(ep.port), net::use_tuple);
  if (rec) co_return make_error("cannot resolve " + ep.host + ": " + rec.message());
  std::string last = "no address";
  for (const auto& entry : results) {
    net::Socket s(executor);
    auto [ec] = co_await s.async_connect(asio::generic::stream_protocol::endpoint(entry.endpoint()), net::use_tuple);
    if (!ec) co_return std::move(s);
    last = ec.message();
  }
  co_return make_error("cannot connect to " + ep.to_string() + ": " + last);
}

// SSLRequest negotiation. Returns false (with an error) when this endpoint cannot be used with this sslmode.
net::Task<std::optional<ConnectError>> negotiate_tls(net::Transport& t, const LoginSpec& spec, const Endpoint& ep) {
  if (spec.ssl_mode == tls::ServerSslMode::disable || spec.ssl_mode == tls::ServerSslMode::allow || ep.is_unix() ||
      !spec.tls)
    co_return std::nullopt;
  std::string req;
  protocol::append_ssl_request(req);
  if (auto ec = co_await t.write_all(req)) co_return fail(ConnectFailure::unreachable, ec.message());
  char answer = 0;
  if (auto ec = co_await t.read_exact(&answer, 1)) co_return fail(ConnectFailure::unreachable, ec.message());
  if (answer == 'N') {
    if (spec.ssl_mode == tls::ServerSslMode::prefer) co_return std::nullopt;
    co_return fail(ConnectFailure::tls, "server does not support SSL, but SSL was required");
  }
  if (answer != 'S') co_return fail(ConnectFailure::protocol, "received invalid response to SSL negotiation");
  // Bytes sent by the server after 'S' and before the handshake could be injected by a man in the middle.
  if (t.has_buffered_input())
    co_return fail(ConnectFailure::protocol, "received unencrypted data after SSL response");
  SSL* ssl = tls::new_client_ssl(*spec.tls, spec.ssl_mode, ep.host);
  if (!ssl) co_return fail(ConnectFailure::tls, "cannot create TLS session: " + tls::last_error());
  if (auto ec = co_await t.tls_handshake(ssl, false)) {
    std::string detail = ec == boost::system::errc::protocol_error ? tls::last_error() : ec.message();
    long verify = SSL_get_verify_result(t.ssl());
    if (verify != X509_V_OK) detail = std::string("certificate verify failed: ") + X509_verify_cert_error_string(verify);
    co_return fail(ConnectFailure::tls, "SSL handshake with " + ep.to_string() + " failed: " + detail);
  }
  co_return std::nullopt;
}

// StartupMessage, authentication, then ParameterStatus/BackendKeyData up to ReadyForQuery.
net::Task<std::optional<ConnectError>> login(ServerConnection& conn, const LoginSpec& spec) {
  auto& t = conn.transport();
  std::string out;
  std::vector<std::pair<std::string, std::string>> params;
  params.emplace_back("user", spec.user);
  params.emplace_back("database", spec.database);
  for (const auto& p : spec.parameters) params.push_back(p);
  protocol::append_startup_message(out, params);
  if (auto ec = co_await t.write_all(out)) co_return fail(ConnectFailure::unreachable, ec.message());

  std::string buffer;
  std::optional<auth::ScramClientExchange> scram;
  bool authenticated = false;
  for (;;) {
    auto msg = co_await net::read_message(t, buffer, limits::k_max_server_login_message);
    if (!msg) co_return fail(ConnectFailure::protocol, "server login: " + msg.error().message);
    switch (msg->tag) {
      case be::Authentication: {
        auto a = protocol::parse_authentication(msg->body);
        if (!a) co_return fail(ConnectFailure::protocol, "server login: " + a.error().message);
        out.clear();
        auto no_secret = [&](std::string_view method) {
          return fail(ConnectFailure::auth, "server asked for " + std::string(method) + " authentication and pgweir " +
                                                "has no password for user \"" + spec.user + "\"");
        };
        switch (a->code) {
          case protocol::AuthCode::ok: authenticated = true; break;
          case protocol::AuthCode::cleartext_password:
            if (!spec.password) co_return no_secret("password");
            protocol::append_password_message(out, *spec.password);
            break;
          case protocol::AuthCode::md5_password:
            if (spec.password) {
              protocol::append_password_message(
                  out, auth::md5_response(auth::md5_secret(spec.user, *spec.password), a->md5_salt));
            } else if (spec.md5_secret) {
              protocol::append_password_message(out, auth::md5_response(*spec.md5_secret, a->md5_salt));
            } else {
              co_return no_secret("md5");
            }
            break;
          case protocol::AuthCode::sasl: {
            bool offered = false;
            for (const auto& m : a->mechanisms) offered = offered || m == "SCRAM-SHA-256";
            if (!offered) co_return fail(ConnectFailure::auth, "server offered no SASL mechanism pgweir supports");
            if (spec.password) {
              scram.emplace(*spec.password);
            } else if (spec.scram_keys) {
              scram.emplace(spec.scram_keys->first, spec.scram_keys->second);
            } else {
              co_return no_secret("SCRAM-SHA-256");
            }
            protocol::append_sasl_initial_response(out, "SCRAM-SHA-256", scram->client_first());
            break;
          }
          case protocol::AuthCode::sasl_continue: {
            if (!scram) co_return fail(ConnectFailure::protocol, "unexpected SASLContinue");
            auto final_msg = scram->handle_server_first(a->data);
            if (!final_msg) co_return fail(ConnectFailure::auth, "SCRAM: " + final_msg.error().message);
            protocol::append_sasl_response(out, *final_msg);
            break;
          }
          case protocol::AuthCode::sasl_final: {
            if (!scram) co_return fail(ConnectFailure::protocol, "unexpected SASLFinal");
            auto ok = scram->verify_server_final(a->data);
            if (!ok) co_return fail(ConnectFailure::auth, "SCRAM: " + ok.error().message);
            break;
          }
          default:
            co_return fail(ConnectFailure::auth, "server asked for an authentication method pgweir does not support (" +
                                                     std::to_string(static_cast<unsigned>(a->code)) + ")");
        }
        if (!out.empty()) {
          if (auto ec = co_await t.write_all(out)) co_return fail(ConnectFailure::unreachable, ec.message());
        }
        break;
      }
      case be::ParameterStatus: {
        auto ps = protocol::parse_parameter_status(msg->body);
        if (!ps) co_return fail(ConnectFailure::protocol, "server login: " + ps.error().message);
        conn.set_parameter(ps->name, ps->value);
        break;
      }
      case be::BackendKeyData: {
        auto k = protocol::parse_backend_key_data(msg->body);
        if (!k) co_return fail(ConnectFailure::protocol, "server login: " + k.error().message);
        conn.set_backend_key(*k);
        break;
      }
      case be::ReadyForQuery: {
        if (!authenticated) co_return fail(ConnectFailure::protocol, "server sent ReadyForQuery before AuthenticationOk");
        auto s = protocol::parse_ready_for_query(msg->body);
        if (!s) co_return fail(ConnectFailure::protocol, "server login: " + s.error().message);
        conn.set_transaction_status(*s);
        co_return std::nullopt;
      }
      case be::ErrorResponse: {
        auto fields = protocol::parse_error_fields(msg->body);
        ConnectError err;
        err.kind = ConnectFailure::server_error;
        if (fields) {
          err.message = fields->message;
          if (fields->code.empty()) fields->code = "08P01";  // a server error without SQLSTATE still gets one
          if (fields->code == "28P01" || fields->code == "28000") err.kind = ConnectFailure::auth;
          err.server = std::move(*fields);
        } else {
          err.message = "server sent a malformed ErrorResponse";
          err.kind = ConnectFailure::protocol;
        }
        co_return err;
      }
      case be::NoticeResponse:
      case be::NegotiateProtocolVersion:
        break;
      default:
        co_return fail(ConnectFailure::protocol,
                       std::string("unexpected message type '") + msg->tag + "' during server login");
    }
  }
}

net::Task<ConnectResult> connect_all(const LoginSpec& spec, net::Executor executor) {
  ConnectError last = fail(ConnectFailure::unreachable, "no server address configured");
  for (const auto& ep : spec.endpoints) {
    auto socket = co_await open_socket(ep, executor);
    if (!socket) {
      last = fail(ConnectFailure::unreachable, socket.error().message);
      continue;
    }
    net::tune_socket(*socket, !ep.is_unix());
    auto conn = std::make_unique<ServerConnection>(net::Transport(std::move(*socket)), ep);
    if (auto err = co_await negotiate_tls(conn->transport(), spec, ep)) {
      last = std::move(*err);
      continue;
    }
    if (auto err = co_await login(*conn, spec)) {
      // A server that answers but rejects us is a final answer; trying the next host only helps when unreachable.
      if (err->kind != ConnectFailure::unreachable) co_return std::move(*err);
      last = std::move(*err);
      continue;
    }
    conn->set_signature(make_signature(spec.parameters));
    conn->mark_idle();
    co_return std::move(conn);
  }
  co_return last;
}

// awaitable operator|| flattens a std::variant result into its own variant; a struct keeps ConnectResult whole.
struct BoxedConnect {
  ConnectResult result;
};

net::Task<BoxedConnect> connect_boxed(const LoginSpec& spec, net::Executor executor) {
  // Not `co_return BoxedConnect{co_await …}`: GCC 12 miscompiles co_await inside a braced initializer.
  auto result = co_await connect_all(spec, executor);
  BoxedConnect boxed{std::move(result)};
  co_return boxed;
}

}  // namespace

std::string Endpoint::to_string() const {
  if (is_unix()) return host + "/.s.PGSQL." + std::to_string(port);
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

std::string_view to_string(ConnectFailure f) {
  switch (f) {
    case ConnectFailure::none: return "none";
    case ConnectFailure::unreachable: return "unreachable";
    case ConnectFailure::timeout: return "timeout";
    case ConnectFailure::tls: return "tls";
    case ConnectFailure::auth: return "auth";
    case ConnectFailure::server_error: return "server_error";
    case ConnectFailure::protocol: return "protocol";
  }
  return "protocol";
}

ServerConnection::ServerConnection(net::Transport transport, Endpoint endpoint)
    : transport_(std::move(transport)),
      endpoint_(std::move(endpoint)),
      id_(g_next_id.fetch_add(1, std::memory_order_relaxed)),
      created_at_(net::Clock::now()),
      idle_since_(created_at_) {}

void ServerConnection::set_parameter(std::string_view name, std::string_view value) {
  auto it = parameters_.find(name);
  if (it == parameters_.end()) {
    parameters_.emplace(std::string(name), std::string(value));
  } else if (it->second != value) {
    it->second.assign(value);
  } else {
    return;
  }
  if (is_tracked(name)) tracked_ = tracked_fingerprint(parameters_);
}

bool is_tracked(std::string_view name) {
  for (auto t : k_tracked_parameters)
    if (t == name) return true;
  return false;
}

std::string tracked_fingerprint(const ParamMap& parameters) {
  std::string f;
  for (auto name : k_tracked_parameters) {
    auto it = parameters.find(name);
    if (it == parameters.end()) {
      f += '\0';  // absent
    } else {
      f += '\1';
      f += it->second;  // a parameter value holds no NUL
      f += '\0';
    }
  }
  return f;
}

net::Task<Expected<void>> ServerConnection::run_control_query(std::string_view sql, std::chrono::milliseconds timeout) {
  auto body = [this, sql]() -> net::Task<Expected<void>> {
    std::string out;
    protocol::append_query(out, sql);
    if (auto ec = co_await transport_.write_all(out)) co_return make_error(ec.message());
    std::string buffer;
    std::optional<Error> failure;
    for (;;) {
      auto msg = co_await net::read_message(transport_, buffer, limits::k_max_inspected_message);
      if (!msg) co_return msg.error();
      if (msg->tag == be::ParameterStatus) {
        if (auto ps = protocol::parse_parameter_status(msg->body)) set_parameter(ps->name, ps->value);
      } else if (msg->tag == be::ErrorResponse) {
        auto fields = protocol::parse_error_fields(msg->body);
        failure = make_error(fields ? fields->message : "malformed ErrorResponse");
      } else if (msg->tag == be::ReadyForQuery) {
        auto s = protocol::parse_ready_for_query(msg->body);
        if (!s) co_return s.error();
        tx_status_ = *s;
        if (failure) co_return *failure;
        co_return Expected<void>{};
      }
    }
  };
  net::Timer timer(transport_.executor());
  timer.expires_after(timeout);
  auto result = co_await (body() || timer.async_wait(net::use_tuple));
  if (result.index() == 1) co_return make_error("timed out");
  co_return std::get<0>(std::move(result));
}

void ServerConnection::terminate() {
  if (!transport_.is_open()) return;
  if (!transport_.is_tls()) {
    static constexpr char k_terminate[] = {'X', 0, 0, 0, 4};
    [[maybe_unused]] auto n = ::send(transport_.native_handle(), k_terminate, sizeof k_terminate, MSG_NOSIGNAL | MSG_DONTWAIT);
  } else {
    SSL_shutdown(transport_.ssl());
  }
  transport_.close();
}

std::string make_signature(const StartupParams& parameters) {
  std::vector<std::string> items;
  items.reserve(parameters.size());
  for (const auto& [k, v] : parameters) {
    // application_name differs per client more often than anything else; it is re-applied with SET instead.
    if (k == "application_name") continue;
    items.push_back(k + '=' + v);
  }
  std::sort(items.begin(), items.end());
  std::string s;
  for (const auto& i : items) {
    s += i;
    s += '\0';
  }
  return s;
}

net::Task<ConnectResult> connect(const LoginSpec& spec, net::Executor executor) {
  net::Timer timer(executor);
  timer.expires_after(spec.connect_timeout.count() > 0 ? spec.connect_timeout : std::chrono::hours(24 * 365));
  auto result = co_await (connect_boxed(spec, executor) || timer.async_wait(net::use_tuple));
  if (result.index() == 1)
    co_return fail(ConnectFailure::timeout, "timeout while connecting to the server (connect_timeout)");
  co_return std::move(std::get<0>(result).result);
}

net::Task<void> send_cancel(Endpoint endpoint, protocol::BackendKeyData key, net::Executor executor) {
  auto body = [&]() -> net::Task<void> {
    auto socket = co_await open_socket(endpoint, executor);
    if (!socket) {
      log::warn("cancel_failed", {{"server", endpoint.to_string()}, {"error", socket.error().message}});
      co_return;
    }
    net::Transport t(std::move(*socket));
    std::string out;
    protocol::append_cancel_request(out, key.process_id, key.secret_key);
    co_await t.write_all(out);
    // The server closes the connection when done; wait for that so the cancel is delivered before we return.
    char byte;
    co_await t.read_some(&byte, 1);
  };
  net::Timer timer(executor);
  timer.expires_after(limits::k_cancel_timeout);
  co_await (body() || timer.async_wait(net::use_tuple));
}

}  // namespace pgweir::server
