// One client connection from accept to close: negotiation and TLS, authentication, routing to a pool, serving
// queries through a leased server connection, and the one close reason it ends with.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "pgweir/net/asio.hpp"
#include "pgweir/router/router.hpp"

namespace pgweir::client {

// Every session ends with exactly one reason: one log line, one metric label, one fate for its server.
enum class CloseReason {
  client_terminate,    // Terminate message
  client_eof,          // the client closed the socket
  client_error,        // a socket error on the client side
  protocol_violation,  // malformed or unexpected bytes
  login_timeout,
  auth_failed,
  unknown_database,
  tls_required,
  tls_failed,
  too_many_clients,
  pool_timeout,
  server_unavailable,  // could not open a server connection
  server_closed,       // the server connection ended under the client
  shutdown,
  admin_kill,
  cancel_request,      // the connection only carried a CancelRequest
  client_idle_timeout,
  idle_transaction_timeout,
  transaction_not_allowed,  // statement mode: a multi-statement transaction was started
};
std::string_view to_string(CloseReason);

class Session;

// Live sessions, for shutdown and the console. Sessions register on their own executor.
class Registry {
 public:
  std::uint64_t add(Session* s, net::Executor ex);
  void remove(std::uint64_t id);
  std::size_t size() const;
  // Runs `fn` on each live session, on that session's executor.
  void for_each(const std::function<void(Session&)>& fn);

 private:
  struct Entry {
    Session* session;
    net::Executor executor;
  };
  mutable std::mutex mutex_;
  std::map<std::uint64_t, Entry> sessions_;
  std::uint64_t next_id_ = 1;
};

// What sessions share across the process.
struct SessionEnv {
  router::Router& router;
  Registry& registry;
  std::atomic<bool>& shutting_down;
};

net::Task<void> run_session(net::Socket socket, SessionEnv& env);

// Asks a session to end at its next idle moment (shutdown), or at once (kill).
void request_shutdown(Session& s);
void kill(Session& s);

}  // namespace pgweir::client
