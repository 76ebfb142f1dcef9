// A client session's life: login, attach to a server connection, relay both ways, give the server back clean
// (or close it), and one log line with the close reason.
#include <boost/asio/experimental/awaitable_operators.hpp>

#include "pgweir/core/limits.hpp"
#include "pgweir/core/log.hpp"
#include "pgweir/net/chunk_pool.hpp"
#include "session_impl.hpp"

namespace pgweir::client {
namespace {

using namespace boost::asio::experimental::awaitable_operators;
namespace asio = boost::asio;
namespace fe = protocol::frontend;
namespace be = protocol::backend;
using net::Verdict;

std::atomic<int> g_clients{0};

bool is_tracked(std::string_view name) {
  for (auto t : k_tracked_parameters)
    if (t == name) return true;
  return false;
}

// SET name TO 'value', quoted so that any value round-trips whatever standard_conforming_strings is.
void append_set(std::string& sql, std::string_view name, std::string_view value) {
  sql += "SET ";
  sql += name;
  sql += " TO E'";
  for (char c : value) {
    if (c == '\'' || c == '\\') sql += c;
    sql += c;
  }
  sql += "';";
}

std::string duration_text(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + "s";
  return std::to_string(d.count()) + "ms";
}

}  // namespace

std::string_view to_string(CloseReason r) {
  switch (r) {
    case CloseReason::client_terminate: return "client_terminate";
    case CloseReason::client_eof: return "client_eof";
    case CloseReason::client_error: return "client_error";
    case CloseReason::protocol_violation: return "protocol_violation";
    case CloseReason::login_timeout: return "login_timeout";
    case CloseReason::auth_failed: return "auth_failed";
    case CloseReason::unknown_database: return "unknown_database";
    case CloseReason::tls_required: return "tls_required";
    case CloseReason::tls_failed: return "tls_failed";
    case CloseReason::too_many_clients: return "too_many_clients";
    case CloseReason::pool_timeout: return "pool_timeout";
    case CloseReason::server_unavailable: return "server_unavailable";
    case CloseReason::server_closed: return "server_closed";
    case CloseReason::shutdown: return "shutdown";
    case CloseReason::admin_kill: return "admin_kill";
    case CloseReason::cancel_request: return "cancel_request";
  }
  return "unknown";
}

// ---------------------------------------------------------------------------------------------
// Registry

std::uint64_t Registry::add(Session* s, net::Executor ex) {
  std::lock_guard lock(mutex_);
  auto id = next_id_++;
  sessions_.emplace(id, Entry{s, std::move(ex)});
  return id;
}

void Registry::remove(std::uint64_t id) {
  std::lock_guard lock(mutex_);
  sessions_.erase(id);
}

std::size_t Registry::size() const {
  std::lock_guard lock(mutex_);
  return sessions_.size();
}

void Registry::for_each(const std::function<void(Session&)>& fn) {
  std::lock_guard lock(mutex_);
  for (auto& [id, e] : sessions_) {
    // Runs on the session's own thread; it is looked up again there, since it may have ended meanwhile.
    asio::post(e.executor, [this, id = id, fn] {
      Session* s = nullptr;
      {
        std::lock_guard inner(mutex_);
        auto it = sessions_.find(id);
        if (it != sessions_.end()) s = it->second.session;
      }
      if (s) fn(*s);
    });
  }
}

void request_shutdown(Session& s) { s.on_shutdown(); }
void kill(Session& s) { s.on_kill(); }

// ---------------------------------------------------------------------------------------------
// Session

Session::Session(net::Transport client, SessionEnv& env)
    : client_(std::move(client)), env_(env), started_(net::Clock::now()) {
  peer_ = net::peer_name(client_.socket());
}

void Session::on_shutdown() {
  shutdown_requested_ = true;
  // Wake a pump blocked on the client so it can see whether the session is idle.
  boost::system::error_code ignored;
  client_.socket().cancel(ignored);
}

void Session::on_kill() {
  killed_ = true;
  boost::system::error_code ignored;
  client_.socket().cancel(ignored);
  if (lease_) lease_->transport().socket().cancel(ignored);
}

bool Session::server_clean() const {
  return pending_ == 0 && !unsynced_ && !in_copy_ && from_client_.at_boundary() && from_server_.at_boundary();
}

net::Task<bool> Session::sync_parameters() {
  std::string sql;
  const auto& have = lease_->parameters();
  for (const auto& [name, value] : believed_) {
    if (!is_tracked(name)) continue;
    auto it = have.find(name);
    if (it == have.end() || it->second != value) append_set(sql, name, value);
  }
  if (sql.empty()) co_return true;
  auto timeout = pool_->settings().connect_timeout;
  auto ok = co_await lease_->run_control_query(sql, timeout.count() > 0 ? timeout : std::chrono::seconds(10));
  if (!ok) {
    log::warn("parameter_sync_failed", {{"client_id", id_}, {"server_id", lease_->id()}, {"error", ok.error().message}});
    co_return false;
  }
  co_return true;
}

net::Task<bool> Session::attach(bool first) {
  auto result = co_await pool_->acquire(client_.executor(), server_params_);
  if (auto* err = std::get_if<pool::AcquireError>(&result)) {
    const auto& key = pool_->key();
    switch (err->kind) {
      case pool::AcquireFailure::timeout:
        co_await fail(CloseReason::pool_timeout, "53300",
                      "no server connection available in pool \"" + key.database + "/" + key.user + "\" within " +
                          duration_text(pool_->settings().timeout) + " (pool.timeout)");
        break;
      case pool::AcquireFailure::closed:
        co_await fail(CloseReason::shutdown, "57P01", "pool \"" + key.database + "/" + key.user + "\" was closed");
        break;
      case pool::AcquireFailure::connect_failed:
        if (err->connect.server) {
          // The server's own refusal (e.g. a startup parameter it rejects) reaches the client as it was sent.
          reason_ = CloseReason::server_unavailable;
          close_detail_ = err->connect.message;
          auto fields = *err->connect.server;
          fields.severity = "FATAL";
          scratch_.clear();
          protocol::append_error_response(scratch_, fields);
          co_await client_.write_all(scratch_);
        } else {
          co_await fail(CloseReason::server_unavailable, "08006",
                        "pgweir could not connect to the server for database \"" + key.database +
                            "\": " + err->connect.message);
        }
        log::warn("server_connect_failed", {{"pool", key.to_string()},
                                            {"reason", server::to_string(err->connect.kind)},
                                            {"error", err->connect.message}});
        break;
    }
    co_return false;
  }
  lease_ = std::move(std::get<pool::Lease>(result));
  if (first) {
    // The client is told the values of the connection it logs in on; application_name is its own.
    const auto* app = startup_.find("application_name");
    believed_["application_name"] = app ? *app : std::string();
    if (!co_await sync_parameters()) {
      lease_.close();
      co_await fail(CloseReason::server_unavailable, "08006", "pgweir could not prepare a server connection");
      co_return false;
    }
    believed_ = lease_->parameters();
  } else if (!co_await sync_parameters()) {
    lease_.close();
    co_await fail(CloseReason::server_closed, "08006", "pgweir could not prepare a server connection");
    co_return false;
  }
  cancel_target_->set(lease_->endpoint(), lease_->backend_key());
  co_return true;
}

net::Task<void> Session::detach() {
  cancel_target_->clear();
  if (!lease_) co_return;
  bool clean = server_clean() && lease_->transaction_status() == 'I';
  if (clean && mode_ == config::PoolMode::session) {
    auto s = pool_->settings();
    if (!s.reset_query.empty()) {
      auto timeout = s.connect_timeout.count() > 0 ? s.connect_timeout : std::chrono::milliseconds(10'000);
      auto ok = co_await lease_->run_control_query(s.reset_query, timeout);
      clean = ok && lease_->transaction_status() == 'I';
    }
  }
  from_server_.release_memory();
  if (clean) {
    lease_.give_back();
  } else {
    log::info("server_closed", {{"client_id", id_}, {"server_id", lease_->id()}, {"reason", "client_left_dirty"}});
    lease_.close();
  }
  pending_ = 0;
  unsynced_ = false;
  in_copy_ = false;
}

// Client -> server. Streams bodies through; looks only at tags, and holds Terminate back.
net::Task<void> Session::pump_client() {
  struct Hooks {
    Session& s;
    bool terminate = false;
    bool inspect(char tag, std::uint32_t) { return tag == fe::Terminate; }
    Verdict on_message(char tag, std::string_view) {
      if (tag == fe::Terminate) terminate = true;
      return Verdict::drop;
    }
    void on_passthrough(char tag, std::uint32_t) {
      switch (tag) {
        case fe::Query:
        case fe::FunctionCall: ++s.pending_; break;
        case fe::Sync: ++s.pending_; s.unsynced_ = false; break;
        case fe::Parse:
        case fe::Bind:
        case fe::Execute:
        case fe::Describe:
        case fe::Close:
        case fe::Flush: s.unsynced_ = true; break;
        case fe::CopyDone:
        case fe::CopyFail: s.in_copy_ = false; break;
        default: break;
      }
    }
  };
  Hooks hooks{*this};
  net::Chunk chunk;
  net::Segments out;
  for (;;) {
    if (auto ec = co_await client_.wait_readable()) {
      if (end_) co_return;  // the other direction ended the relay
      if (ec == asio::error::operation_aborted && shutdown_requested_ && !killed_) {
        if (server_clean() && (!lease_ || lease_->transaction_status() == 'I')) {
          stop(CloseReason::shutdown);
          co_return;
        }
        continue;  // in a transaction: let it finish
      }
      stop(killed_ ? CloseReason::admin_kill : CloseReason::client_error);
      co_return;
    }
    chunk.acquire();
    auto [ec, n] = co_await client_.read_some(chunk.data(), chunk.size());
    if (ec) {
      stop(ec == asio::error::eof ? CloseReason::client_eof : CloseReason::client_error);
      client_done_ = true;
      co_return;
    }
    out.clear();
    if (const char* err = from_client_.feed(std::string_view(chunk.data(), n), hooks, out)) {
      close_detail_ = err;
      stop(CloseReason::protocol_violation);
      co_return;
    }
    if (!out.empty()) {
      std::array<asio::const_buffer, 16> bufs;
      std::size_t i = 0;
      for (auto s : out) {
        if (i == bufs.size()) {
          if (co_await lease_->transport().write_all(std::span(bufs.data(), i))) {
            stop(CloseReason::server_closed);
            co_return;
          }
          i = 0;
        }
        bufs[i++] = asio::const_buffer(s.data(), s.size());
      }
      if (co_await lease_->transport().write_all(std::span(bufs.data(), i))) {
        stop(CloseReason::server_closed);
        co_return;
      }
    }
    chunk.reset();
    if (hooks.terminate) {
      client_done_ = true;
      stop(CloseReason::client_terminate);
      co_return;
    }
  }
}

// Server -> client. Tracks ReadyForQuery and ParameterStatus; everything streams through.
net::Task<void> Session::pump_server() {
  struct Hooks {
    Session& s;
    bool inspect(char tag, std::uint32_t) { return tag == be::ReadyForQuery || tag == be::ParameterStatus; }
    Verdict on_message(char tag, std::string_view whole) {
      auto body = whole.substr(protocol::k_header_size);
      if (tag == be::ReadyForQuery) {
        if (auto st = protocol::parse_ready_for_query(body)) s.lease_->set_transaction_status(*st);
        if (s.pending_ > 0) --s.pending_;
        s.in_copy_ = false;
      } else if (auto ps = protocol::parse_parameter_status(body)) {
        s.lease_->set_parameter(ps->name, ps->value);
        s.believed_[std::string(ps->name)] = std::string(ps->value);
      }
      return Verdict::forward;
    }
    void on_passthrough(char tag, std::uint32_t) {
      if (tag == be::CopyInResponse || tag == be::CopyOutResponse || tag == be::CopyBothResponse) s.in_copy_ = true;
    }
  };
  Hooks hooks{*this};
  net::Chunk chunk;
  net::Segments out;
  auto& server = lease_->transport();
  for (;;) {
    if (auto ec = co_await server.wait_readable()) {
      stop(killed_ ? CloseReason::admin_kill : CloseReason::server_closed);
      co_return;
    }
    chunk.acquire();
    auto [ec, n] = co_await server.read_some(chunk.data(), chunk.size());
    if (ec) {
      stop(CloseReason::server_closed);
      co_return;
    }
    out.clear();
    if (const char* err = from_server_.feed(std::string_view(chunk.data(), n), hooks, out)) {
      close_detail_ = std::string("server: ") + err;
      stop(CloseReason::server_closed);
      co_return;
    }
    if (!out.empty()) {
      std::array<asio::const_buffer, 16> bufs;
      std::size_t i = 0;
      for (auto s : out) {
        if (i == bufs.size()) {
          if (co_await client_.write_all(std::span(bufs.data(), i))) {
            stop(CloseReason::client_error);
            co_return;
          }
          i = 0;
        }
        bufs[i++] = asio::const_buffer(s.data(), s.size());
      }
      if (co_await client_.write_all(std::span(bufs.data(), i))) {
        stop(CloseReason::client_error);
        co_return;
      }
    }
    chunk.reset();
    if (shutdown_requested_ && server_clean() && lease_->transaction_status() == 'I') {
      stop(CloseReason::shutdown);
      co_return;
    }
  }
}

net::Task<CloseReason> Session::serve() {
  for (;;) {
    end_.reset();
    co_await (pump_client() || pump_server());
    CloseReason reason = end_.value_or(CloseReason::client_error);
    co_return reason;
  }
}

net::Task<void> Session::run() {
  settings_ = env_.router.settings();
  const auto& cfg = *settings_->config;

  // Login: negotiation and authentication, bounded by client_login_timeout.
  auto login = [this]() -> net::Task<bool> {
    if (!co_await negotiate()) co_return false;
    if (!co_await authenticate()) co_return false;
    co_return true;
  };
  bool logged_in = false;
  if (cfg.server.client_login_timeout.count() > 0) {
    asio::steady_timer timer(client_.executor());
    timer.expires_after(cfg.server.client_login_timeout);
    auto r = co_await (login() || timer.async_wait(net::use_tuple));
    if (r.index() == 1) {
      reason_ = CloseReason::login_timeout;
    } else {
      logged_in = std::get<0>(r);
    }
  } else {
    logged_in = co_await login();
  }

  if (logged_in) {
    // Admission: max_client_connections counts logged-in clients.
    int now = g_clients.fetch_add(1, std::memory_order_relaxed) + 1;
    struct Count {
      ~Count() { g_clients.fetch_sub(1, std::memory_order_relaxed); }
    } count;
    if (now > cfg.server.max_client_connections) {
      co_await fail(CloseReason::too_many_clients, "53300", "sorry, too many clients already");
    } else if (env_.shutting_down.load()) {
      co_await fail(CloseReason::shutdown, "57P03", "pgweir is shutting down");
    } else if (!(pool_ = env_.router.pool_for(database_, user_, client_password_))) {
      co_await fail(CloseReason::unknown_database, "3D000", "database \"" + database_ + "\" does not exist");
    } else {
      mode_ = pool_->settings().mode;
      cancel_target_ = std::make_shared<router::CancelTarget>();
      key_ = env_.router.cancels().issue(cancel_target_);
      key_issued_ = true;
      id_ = env_.registry.add(this, client_.executor());
      log::info("client_login", {{"client_id", id_}, {"peer", peer_}, {"database", database_}, {"user", user_},
                                 {"tls", client_.is_tls() ? "on" : "off"}});
      if (co_await attach(true)) {
        // Welcome: the server's parameters, our own key for cancels, ready.
        scratch_.clear();
        for (const auto& [k, v] : believed_) protocol::append_parameter_status(scratch_, k, v);
        protocol::append_backend_key_data(scratch_, key_.process_id, key_.secret_key);
        protocol::append_ready_for_query(scratch_, 'I');
        if (co_await client_.write_all(scratch_)) {
          reason_ = CloseReason::client_error;
        } else {
          std::string().swap(scratch_);
          reason_ = co_await serve();
          if (reason_ == CloseReason::shutdown) {
            scratch_.clear();
            protocol::append_error(scratch_, "FATAL", "57P01", "terminating connection due to administrator command");
            co_await client_.write_all(scratch_);
          } else if (reason_ == CloseReason::admin_kill) {
            scratch_.clear();
            protocol::append_error(scratch_, "FATAL", "57P01", "client killed by administrator command");
            co_await client_.write_all(scratch_);
          }
        }
        co_await detach();
      }
      env_.registry.remove(id_);
    }
  }
  if (key_issued_) env_.router.cancels().remove(key_);

  auto duration = std::chrono::duration_cast<std::chrono::milliseconds>(net::Clock::now() - started_);
  if (id_ != 0) {
    log::info("client_logout", {{"client_id", id_}, {"peer", peer_}, {"database", database_}, {"user", user_},
                                {"duration_ms", duration.count()}, {"reason", to_string(reason_)},
                                {"detail", close_detail_}});
  } else if (reason_ != CloseReason::cancel_request && reason_ != CloseReason::client_eof) {
    log::info("client_rejected", {{"peer", peer_}, {"database", database_}, {"user", user_},
                                  {"reason", to_string(reason_)}, {"detail", close_detail_}});
  }
  client_.close();
}

net::Task<void> run_session(net::Socket socket, SessionEnv& env) {
  net::tune_socket(socket);
  Session session(net::Transport(std::move(socket)), env);
  co_await session.run();
}

}  // namespace pgweir::client
