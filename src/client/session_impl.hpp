// The Session class, shared by the login and serve halves of a client session (private to src/client).
#pragma once

#include <array>
#include <optional>
#include <string>

#include "pgweir/auth/scram.hpp"
#include "pgweir/client/session.hpp"
#include "pgweir/core/limits.hpp"
#include "pgweir/core/slab.hpp"
#include "pgweir/net/message_io.hpp"
#include "pgweir/net/readiness_wait.hpp"
#include "pgweir/net/signal.hpp"
#include "pgweir/net/stream_scanner.hpp"
#include "pgweir/net/transport.hpp"
#include "pgweir/pool/pool.hpp"
#include "pgweir/protocol/messages.hpp"
#include "prepared_tracker.hpp"

namespace pgweir::client {

struct ServerStartup {
  server::StartupParams params;
  std::string signature;  // server::make_signature(params)
};

class Session {
 public:
  Session(net::Transport client, net::PeerAddress peer, SessionEnv& env);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  // Sessions live in the slab, apart from the passing allocations of logins (see core/slab.hpp).
  static void* operator new(std::size_t size) { return core::slab::allocate(size); }
  static void operator delete(void* p, std::size_t size) noexcept { core::slab::deallocate(p, size); }
  net::Task<void> run();

  // Fixed for the session's life, so the registry may read them from any thread while the session is registered.
  net::Executor executor() { return client_.executor(); }
  const std::shared_ptr<ClientInfo>& info() const { return info_; }

  // Called on the session's executor.
  void on_shutdown();
  void on_kill();

  // Parking (see ParkingLot). A session whose run() or unpark() ended with parked() set waits for input in a
  // reactor wait that owns it, and continues in unpark() when the client sends something, closes, or the session
  // is cancelled (kill, shutdown).
  bool parked() const { return parked_; }
  static void park(std::unique_ptr<Session> self);

 private:
  // ---- login.cpp
  // Negotiation up to the StartupMessage; false when the session ends (reason_ set).
  net::Task<bool> negotiate();
  enum class PacketStep { startup, accept_tls, decline_encryption, cancel, stop };
  // What negotiate() does next with a packet read before the StartupMessage (stop: refused or gone).
  PacketStep take_packet(const Expected<std::string_view>& packet, std::string_view buffer, int& negotiations);
  // The StartupMessage's checks; leaves a NegotiateProtocolVersion to send in login_->scratch when one is due.
  bool accept_startup();
  // The startup parameters server connections are given.
  bool forward_startup();
  net::Task<bool> start_tls(bool direct);
  net::Task<bool> authenticate();
  std::optional<std::string> verified_certificate_cn();
  bool check_client_certificate(bool cn_must_match);
  net::Task<bool> auth_md5(const auth::UserSecret* secret);
  net::Task<bool> auth_hba(const auth::UserSecret* secret);
  net::Task<bool> auth_scram(const auth::UserSecret* secret);
  // auth_scram's steps between its waits: the exchange with the SASL offer left in login_->scratch, then each
  // client message handled (false: refused).
  auth::ScramServerExchange start_scram(const auth::UserSecret* secret);
  bool scram_first(auth::ScramServerExchange& exchange, std::string_view message);
  bool scram_final(auth::ScramServerExchange& exchange, std::string_view message, const auth::UserSecret* secret);
  // The client's answer to an authentication request, read into `buffer`; not a coroutine (its caller awaits the
  // read itself). auth_response: its body, or nullopt when the login ends here (the client left, or sent something
  // else and was refused).
  net::Task<Expected<net::Message>> read_auth_message(std::string& buffer);
  std::optional<std::string_view> auth_response(const Expected<net::Message>& msg);
  net::Task<void> handle_cancel(const protocol::CancelRequest& req);
  net::Task<void> fail(CloseReason reason, std::string_view sqlstate, std::string message);
  // fail() for the login's coroutines: records the refusal, which log_in() sends once they have returned, so that
  // none of their frames (held by every login in flight) carries a write of its own. Returns false.
  bool refuse(CloseReason reason, std::string_view sqlstate, std::string message);

  // ---- session.cpp
  net::Task<bool> log_in();
  // Leases a server (the first one at login), brings its parameters in step, points cancels at it.
  // `woken`: waiter_ has just been woken from a wait pump_client started in the pool's queue.
  net::Task<bool> attach(bool first, bool woken = false);
  // Transaction and statement mode: welcomes the client with the parameters a server of its kind reported at its
  // login, the client's application_name in (attach(false) later brings its server in step), and returns them as
  // ParameterStatus messages. Null when the pool has no such server's parameters yet and the login must take a
  // server.
  std::shared_ptr<const std::string> welcome_from_pool();
  // attach(false)'s common case without a coroutine: an idle server lent at once whose parameters already match.
  // False when attach(false) has to do it (with lease_ already set when only the parameters need a SET).
  bool attach_now(net::TimePoint now);
  // Takes a lent server; false when its parameters are out of step (lease_ is set: attach(false) runs the SET).
  bool adopt(pool::Lease lease);
  // SHOW CLIENTS: the client waits for a server (since now), or no longer does.
  void mark_waiting(bool waiting);
  void attached();
  net::Task<bool> sync_parameters();
  net::Task<void> detach();
  bool detach_now();
  void detached();
  void reset_relay_state();
  net::Task<bool> admit();
  net::Task<void> serve_pool();
  // serve() until the session ends or parks: the first time from serve_pool(), again from unpark().
  net::Task<void> keep_serving();
  // Whether this session parks when idle (plain connection, transaction or statement mode, no timeouts to watch).
  bool may_park() const;
  static net::Task<void> unpark(std::unique_ptr<Session> self);
  // Asks pump_client to end its idle read and park, when the session is idle and has been quiet long enough.
  void try_park(net::TimePoint now);
  // Ends the login (cancels its socket operations) once client_login_timeout has passed since the connection.
  void check_login(net::TimePoint now);
  // What follows serving: the server (if any) goes back clean or is closed; the one log line.
  net::Task<void> wind_up();
  void count_login(bool logged_in);
  void finish();
  net::Task<CloseReason> serve();
  net::Task<void> serve_console();
  // SHOW CLIENTS' record, completed at admission (login time, application, TLS).
  void welcome_info();
  net::Task<void> relay();
  net::Task<void> watchdog();
  struct ClientHooks;
  net::Task<void> pump_client();
  bool forward_to_server(std::string_view input, ClientHooks& hooks);
  net::Task<net::ErrorCode> write_spill_to_server();
  net::Task<void> pump_server();
  net::Task<bool> relay_server();
  // Sends the prepared-statement tracker's retry (a statement prepared again and its segment): false on failure.
  net::Task<bool> send_retry();
  std::size_t write_to_server_now(const net::Segments& out, net::ErrorCode& ec);
  net::Task<net::ErrorCode> write_to_server(const net::Segments& out, std::size_t done);
  // The relay is winding down: a pump ended it, or the server is being released (transaction mode).
  bool relay_stopping() const { return end_.has_value() || release_requested_; }
  bool idle_at_boundary() const { return server_clean() && (!lease_ || lease_->transaction_status() == 'I'); }
  bool server_clean() const;
  void begin_query();
  void account_client_message(char tag);
  // Transaction mode: SQL that would leave session state on the server. Returns the verdict for the message.
  bool watches_session_state(char tag, std::uint32_t length) const;
  std::optional<net::Verdict> check_session_state(char tag, std::string_view whole);
  void end_query(char status);
  void stop(CloseReason r) {
    if (!end_) end_ = r;
  }

  // Members are grouped by size (pointers, then the small fields together) so that the object, which every
  // connected client keeps, has no padding between them.
  net::Transport client_;
  SessionEnv& env_;
  std::uint64_t id_ = 0;
  net::TimePoint started_;
  // What SHOW CLIENTS shows of this client, made with the session: the address at once, the user and database
  // when the login has read them. The session keeps no copies of its own.
  std::shared_ptr<ClientInfo> info_;
  const std::string& user() const { return info_->user; }
  const std::string& database() const { return info_->database; }
  std::string peer() const;  // host:port, as logs show it
  // What the close reason does not say (an error's text), for the session's last log line. Rarely set: a pointer,
  // not a string, in every session.
  std::unique_ptr<std::string> close_detail_;
  void set_close_detail(std::string text) { close_detail_ = std::make_unique<std::string>(std::move(text)); }

  std::shared_ptr<const router::Settings> settings_;
  // What only the login and admission need, freed when a pool client has been welcomed (serve_pool()).
  struct Login {
    protocol::StartupMessage startup;
    // Bytes for the client. From a successful authenticate() to the welcome it holds what is still to be sent of
    // the answer to the login (SCRAM's final message, AuthenticationOk).
    std::string scratch;
    bool refused = false;  // scratch holds the refusal (refuse())
    protocol::CancelRequest cancel;  // a CancelRequest sent instead of a StartupMessage
    // What the login revealed of the client's secret, for the pool's server logins; dropped at admission.
    router::ClientCredentials credentials;
  };
  std::unique_ptr<Login> login_ = std::make_unique<Login>();
  router::ClientCredentials& credentials() { return login_->credentials; }
  // Startup parameters forwarded to server connections, and their server::make_signature: shared with the other
  // sessions whose clients sent the same (see negotiate()).
  std::shared_ptr<const ServerStartup> server_startup_;

  std::shared_ptr<pool::Pool> pool_;
  pool::Lease lease_;
  std::shared_ptr<router::CancelTarget> cancel_target_;  // made with info_, in one allocation
  protocol::BackendKeyData key_{};
  std::shared_ptr<const server::ParameterSet> believed_;  // parameter values the client has been told
  std::shared_ptr<const config::PoolSettings> pool_settings_;  // the pool's settings when the client joined it
  std::shared_ptr<pool::Waiter> waiter_;  // this client's place in its pool's queue, made at its first wait

  // Relay state.
  // Made at admission; a parked session that holds no statements drops it (make_tracker() when it is back).
  std::unique_ptr<PreparedTracker> prepared_;
  void make_tracker();
  net::TimePoint last_client_io_;
  net::TimePoint query_started_;
  net::TimePoint xact_started_;
  // What only a serving session needs: made at admission and by keep_serving(), dropped while it is parked.
  struct RelayBuffers {
    explicit RelayBuffers(net::Executor ex) : wake(std::move(ex)) {}
    // Bytes read from the client that no server has seen yet: the relay's idle read lands in the inbox (sized for
    // the typical OLTP message batch, so a read there usually drains the socket); `carry` holds the rare larger
    // read that completed while the server was being released.
    std::array<char, limits::k_client_inbox> inbox;
    net::StreamScanner from_client;
    net::StreamScanner from_server;
    std::string carry;
    std::string spill;          // what the server socket did not take at once (forward_to_server)
    std::string state_rewrite;  // a statement refused for session state, rewritten (check_session_state)
    // The SQL of the last Parse found to leave no session state: drivers send the same unnamed statement again and
    // again, and it is not looked at twice (check_session_state).
    std::string stateless_parse;
    // pump_server waits on it for the next server.
    net::Signal server_pump_wake;
    // The clock, read once per read and passed on: when the input being forwarded arrived (or, after a wait for a
    // server, when that wait ended), and when the last query was answered.
    net::TimePoint input_at;
    net::TimePoint answered_at;
    // relay() waits on it for pump_server to end.
    net::Timer wake;
  };
  std::unique_ptr<RelayBuffers> buf_;

  // Parking. The lot's links are set while keep_serving() runs for a session that may park.
  friend class ParkingLot;
  ParkingLot* lot_ = nullptr;
  Session* lot_prev_ = nullptr;
  Session* lot_next_ = nullptr;

  int pending_ = 0;             // Query/Sync/FunctionCall sent without their ReadyForQuery yet
  std::uint32_t inbox_len_ = 0;  // bytes waiting in buf_->inbox
  CloseReason reason_ = CloseReason::client_eof;
  std::optional<CloseReason> end_;  // set by a pump to stop the relay
  config::PoolMode mode_ = config::PoolMode::session;
  bool key_issued_ = false;
  bool counted_ = false;  // counted in max_client_connections
  bool joined_ = false;   // counted among pool_'s clients
  bool unsynced_ = false;  // extended-protocol messages sent since the last Sync
  bool in_copy_ = false;
  bool server_writing_ = false;  // a pump is writing to the server (see write_to_server)
  bool shutdown_requested_ = false;
  bool killed_ = false;
  bool release_requested_ = false;  // transaction/statement mode: the server goes back at this boundary
  bool query_cancelled_ = false;
  bool attaching_ = false;
  bool client_pumping_ = false;  // pump_client is running (relay())
  bool server_pumping_ = false;  // pump_server is running
  bool pinned_ = false;  // session state: keeps its server until it leaves (session_state = pin)
  bool linked_ = false;
  bool logging_in_ = false;     // linked for check_login(), not try_park()
  bool login_expired_ = false;  // client_login_timeout passed during the login: nothing more is sent to the client
  bool idle_reading_ = false;    // pump_client waits for the client in its inbox read (the last read drained)
  bool park_requested_ = false;  // try_park() cancelled that read
  bool parked_ = false;          // pump_client ended for the park; the relay unwinds without an end_
  // The park's wait for input (see park()): a member, so that a park allocates nothing.
  net::ReadinessWait park_wait_{&Session::park_woken, this};
  static void park_woken(void* context, bool destroyed);
  static void resume(std::unique_ptr<Session> self);
};

}  // namespace pgweir::client
