// One client connection from accept to close: negotiation and TLS, authentication, routing to a pool, serving
// queries through a leased server connection, and the one close reason it ends with.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "pgweir/core/slab.hpp"
#include "pgweir/net/asio.hpp"
#include "pgweir/net/transport.hpp"
#include "pgweir/admin/inventory.hpp"
#include "pgweir/router/router.hpp"

namespace pgweir::client {

// Every session ends with exactly one reason: one log line, one metric label, one fate for its server.
enum class CloseReason : std::uint8_t {
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

// What the console shows of a client. Fixed at login but for the atomics, which the session updates.
struct ClientInfo {
  enum State { idle = 0, active = 1, waiting = 2 };
  std::uint64_t id = 0;
  std::string user, database, addr, tls, application_name;
  int port = 0;
  std::atomic<int> state{idle};
  std::chrono::system_clock::time_point connect_time;
  std::atomic<std::uint64_t> server_id{0};
  std::atomic<std::int64_t> request_time_us{0};  // steady clock (the relay reads no other), shown as wall time
  std::atomic<std::int64_t> wait_started_us{0};  // steady clock, while waiting
};

// Live sessions, for shutdown and the console. Sessions register on their own executor.
class Registry {
 public:
  // Registers a logged-in session (its info complete) and numbers it.
  std::uint64_t add(Session* s);
  void remove(std::uint64_t id);
  std::size_t size() const;
  // Runs `fn` on each live session, on that session's executor.
  void for_each(const std::function<void(Session&)>& fn);
  // Runs `fn` on one session (by id) on its executor; false when there is no such session.
  bool with(std::uint64_t id, const std::function<void(Session&)>& fn);
  std::vector<std::shared_ptr<const ClientInfo>> clients() const;
  // Sessions still logging in (counted by the accept loop), for SHOW LISTS.
  std::atomic<int> logging_in{0};

 private:
  // The live session with this id, or null. Under the mutex.
  Session* find_locked(std::uint64_t id) const;

  mutable std::mutex mutex_;
  // A session stays registered until its destructor: under the mutex, its executor and info can be read.
  // In id order: ids only grow, so add() appends. remove() leaves a hole (a null session) that is swept out once
  // holes are half the entries. 16 bytes per client where a map's node took 48.
  std::vector<std::pair<std::uint64_t, Session*>> sessions_;
  std::size_t live_ = 0;
  std::uint64_t next_id_ = 1;
};

// What sessions share across the process.
struct SessionEnv {
  router::Router& router;
  Registry& registry;
  std::atomic<bool>& shutting_down;
  admin::Inventory* inventory = nullptr;  // the console's view of the process
};

// The pool clients one event loop serves, so that those idle for server.client_park_after can be parked: their
// relay coroutines end and they wait for input in a plain reactor wait, holding only their Session. Clients that
// are logging in are on it too, so that a login that outlasts server.client_login_timeout is ended. One per event
// loop, used on that loop's thread only; it must outlive the loop's io_context (sessions unlink themselves from it
// when they end).
class ParkingLot {
 public:
  // Makes `lot` the lot of sessions that start serving on the calling thread (an event loop's thread).
  static void bind(ParkingLot* lot);
  static ParkingLot* current();
  // Parks the sessions on this lot that are idle and have been quiet for their client_park_after, and ends the
  // logins that have outlasted client_login_timeout. Called every limits::k_park_sweep_period on the lot's loop
  // while it returns true: while the lot holds sessions, or freed memory is still to be handed back to the system.
  bool sweep(net::TimePoint now);
  // Called on the lot's loop when a session joins an empty lot: the loop starts sweeping again.
  void on_occupied(void (*callback)(void* context), void* context) {
    occupied_ = callback;
    occupied_context_ = context;
  }
  // The clients placed on this lot's loop that have not ended, parked or not. The one exception to "this loop's
  // thread only": the thread that accepts a client counts it here (place()) before its session starts, the session
  // takes it off when it ends, and any thread reads it to choose where the next client goes.
  void place() { clients_.fetch_add(1, std::memory_order_relaxed); }
  int clients() const { return clients_.load(std::memory_order_relaxed); }

 private:
  friend class Session;
  void link(Session* s);
  void unlink(Session* s);
  void (*occupied_)(void*) = nullptr;
  void* occupied_context_ = nullptr;
  std::atomic<int> clients_{0};
  Session* head_ = nullptr;
  std::size_t parked_since_trim_ = 0;
  std::size_t parked_at_last_sweep_ = 0;  // parked_since_trim_ when the last sweep ended
  net::TimePoint last_trim_{};
};

// Serves a client connection just accepted from `peer`, on the loop of the calling thread's ParkingLot, which
// counted it with place().
net::Task<void> run_session(net::Socket socket, net::PeerAddress peer, SessionEnv& env);

// Asks a session to end at its next idle moment (shutdown), or at once (kill).
void request_shutdown(Session& s);
void kill(Session& s);

}  // namespace pgweir::client
