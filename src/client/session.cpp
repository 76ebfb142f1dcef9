// A client session's life: login, attach to a server connection, relay both ways, give the server back clean
// (or close it), and one log line with the close reason.
#include <boost/asio/experimental/awaitable_operators.hpp>

#include <malloc.h>

#include <algorithm>
#include <utility>

#include "pgweir/core/limits.hpp"
#include "pgweir/core/log.hpp"
#include "pgweir/core/slab.hpp"
#include "pgweir/net/chunk_pool.hpp"
#include "pgweir/admin/console.hpp"
#include "session_impl.hpp"
#include "session_state.hpp"

namespace pgweir::client {
namespace {

using namespace boost::asio::experimental::awaitable_operators;
namespace asio = boost::asio;
namespace fe = protocol::frontend;
namespace be = protocol::backend;
using net::Verdict;

std::atomic<int> g_clients{0};

// The longest Parse SQL a serving session remembers as free of session state (RelayBuffers::stateless_parse).
constexpr std::size_t k_remembered_parse = 1024;

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

// What the client is told when pgweir ends its session (nothing when the client ended it).
std::optional<std::pair<std::string_view, std::string>> closing_message(CloseReason r) {
  switch (r) {
    case CloseReason::shutdown: return std::pair{"57P01", "terminating connection due to administrator command"};
    case CloseReason::admin_kill: return std::pair{"57P01", "client killed by administrator command"};
    case CloseReason::client_idle_timeout: return std::pair{"57P05", "terminating connection due to idle timeout (client_idle_timeout)"};
    case CloseReason::idle_transaction_timeout:
      return std::pair{"25P03", "terminating connection due to idle-in-transaction timeout (idle_transaction_timeout)"};
    case CloseReason::transaction_not_allowed:
      return std::pair{"08P01", "transaction blocks are not allowed in statement pooling mode"};
    case CloseReason::server_closed: return std::pair{"08006", "server connection closed unexpectedly"};
    case CloseReason::protocol_violation: return std::pair{"08P01", "invalid message from client"};
    default: return std::nullopt;
  }
}

// What a session shares with other threads (the console, cancel requests), in one allocation.
struct SharedRecord {
  ClientInfo info;
  router::CancelTarget cancel;
};

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
    case CloseReason::client_idle_timeout: return "client_idle_timeout";
    case CloseReason::idle_transaction_timeout: return "idle_transaction_timeout";
    case CloseReason::transaction_not_allowed: return "transaction_not_allowed";
  }
  return "unknown";
}

// ---------------------------------------------------------------------------------------------
// Registry

std::uint64_t Registry::add(Session* s) {
  std::lock_guard lock(mutex_);
  auto id = next_id_++;
  s->info()->id = id;
  sessions_.emplace_back(id, s);
  ++live_;
  return id;
}

namespace {

// The entry for `id` in a registry's id-ordered entries, or end().
template <class Entries>
auto entry_of(Entries& entries, std::uint64_t id) {
  auto it = std::lower_bound(entries.begin(), entries.end(), id,
                             [](const auto& entry, std::uint64_t key) { return entry.first < key; });
  return it != entries.end() && it->first == id ? it : entries.end();
}

}  // namespace

Session* Registry::find_locked(std::uint64_t id) const {
  auto it = entry_of(sessions_, id);
  return it != sessions_.end() ? it->second : nullptr;
}

bool Registry::with(std::uint64_t id, const std::function<void(Session&)>& fn) {
  std::lock_guard lock(mutex_);
  Session* s = find_locked(id);
  if (!s) return false;
  asio::post(s->executor(), [this, id, fn] {
    Session* found = nullptr;
    {
      std::lock_guard inner(mutex_);
      found = find_locked(id);
    }
    if (found) fn(*found);
  });
  return true;
}

std::vector<std::shared_ptr<const ClientInfo>> Registry::clients() const {
  std::lock_guard lock(mutex_);
  std::vector<std::shared_ptr<const ClientInfo>> out;
  out.reserve(live_);
  for (const auto& [id, s] : sessions_)
    if (s) out.push_back(s->info());
  return out;
}

void Registry::remove(std::uint64_t id) {
  std::lock_guard lock(mutex_);
  auto it = entry_of(sessions_, id);
  if (it == sessions_.end() || !it->second) return;
  it->second = nullptr;
  --live_;
  if (live_ < sessions_.size() / 2) {
    std::erase_if(sessions_, [](const auto& entry) { return entry.second == nullptr; });
    if (sessions_.capacity() > 4 * std::max<std::size_t>(sessions_.size(), 64)) sessions_.shrink_to_fit();
  }
}

std::size_t Registry::size() const {
  std::lock_guard lock(mutex_);
  return live_;
}

void Registry::for_each(const std::function<void(Session&)>& fn) {
  std::lock_guard lock(mutex_);
  for (const auto& [id, session] : sessions_) {
    if (!session) continue;
    // Runs on the session's own thread; it is looked up again there, since it may have ended meanwhile.
    asio::post(session->executor(), [this, id = id, fn] {
      Session* s = nullptr;
      {
        std::lock_guard inner(mutex_);
        s = find_locked(id);
      }
      if (s) fn(*s);
    });
  }
}

// ---------------------------------------------------------------------------------------------
// ParkingLot

namespace {
thread_local ParkingLot* t_lot = nullptr;
}  // namespace

void ParkingLot::bind(ParkingLot* lot) { t_lot = lot; }
ParkingLot* ParkingLot::current() { return t_lot; }

void ParkingLot::link(Session* s) {
  if (!head_ && occupied_) occupied_(occupied_context_);
  s->lot_prev_ = nullptr;
  s->lot_next_ = head_;
  if (head_) head_->lot_prev_ = s;
  head_ = s;
  s->linked_ = true;
}

void ParkingLot::unlink(Session* s) {
  if (!s->linked_) return;
  if (s->lot_prev_) {
    s->lot_prev_->lot_next_ = s->lot_next_;
  } else {
    head_ = s->lot_next_;
  }
  if (s->lot_next_) s->lot_next_->lot_prev_ = s->lot_prev_;
  s->lot_prev_ = s->lot_next_ = nullptr;
  s->linked_ = false;
}

bool ParkingLot::sweep(net::TimePoint now) {
  // check_login() and try_park() only cancel operations: the list does not change under this walk.
  for (Session* s = head_; s; s = s->lot_next_) {
    if (s->logging_in_) {
      s->check_login(now);
    } else {
      s->try_park(now);
    }
  }
  // The frames parked sessions gave up are free chunks scattered between live objects; glibc returns such pages to
  // the system only when asked. Once a batch of parks has built up: as soon as the parks stop coming (the end of a
  // burst of logins, say), and while they keep coming, at most every few seconds.
  bool quiet = parked_since_trim_ == parked_at_last_sweep_;
  if (parked_since_trim_ >= limits::k_parks_before_trim && (quiet || now - last_trim_ >= limits::k_trim_interval)) {
    ::malloc_trim(0);
    parked_since_trim_ = 0;
    last_trim_ = now;
  }
  parked_at_last_sweep_ = parked_since_trim_;
  return head_ != nullptr || parked_since_trim_ >= limits::k_parks_before_trim;
}

void request_shutdown(Session& s) { s.on_shutdown(); }
void kill(Session& s) { s.on_kill(); }

// ---------------------------------------------------------------------------------------------
// Session

Session::Session(net::Transport client, net::PeerAddress peer, SessionEnv& env)
    : client_(std::move(client)), env_(env), started_(net::Clock::now()), lot_(ParkingLot::current()) {
  // Made with the session, in the slab like the session itself (see core/slab.hpp).
  auto shared = std::allocate_shared<SharedRecord>(core::slab::Allocator<SharedRecord>());
  info_ = std::shared_ptr<ClientInfo>(shared, &shared->info);
  cancel_target_ = std::shared_ptr<router::CancelTarget>(shared, &shared->cancel);
  info_->addr = std::move(peer.host);
  info_->port = peer.port;
}

std::string Session::peer() const { return net::PeerAddress{info_->addr, info_->port}.to_string(); }

void Session::welcome_info() {
  info_->connect_time = std::chrono::system_clock::now();
  info_->request_time_us.store(
      std::chrono::duration_cast<std::chrono::microseconds>(net::Clock::now().time_since_epoch()).count());
  if (const auto* app = login_->startup.find("application_name")) info_->application_name = *app;
  if (client_.is_tls()) {
    info_->tls = std::string(SSL_get_version(client_.ssl())) + "/" + SSL_get_cipher_name(client_.ssl());
  }
}

Session::~Session() {
  // Also reached when the session's coroutine (or its park) is destroyed without finishing (process exit).
  if (lot_) {
    lot_->unlink(this);
    lot_->clients_.fetch_sub(1, std::memory_order_relaxed);
  }
  if (joined_) pool_->client_left();
  if (counted_) g_clients.fetch_sub(1, std::memory_order_relaxed);
  if (id_ != 0) env_.registry.remove(id_);
  if (key_issued_) env_.router.cancels().remove(key_);
}

void Session::on_shutdown() {
  shutdown_requested_ = true;
  // Wake a pump blocked on the client so it can see whether the session is idle.
  client_.cancel();
}

void Session::on_kill() {
  killed_ = true;
  client_.cancel();
  if (lease_) lease_->transport().cancel();
}

bool Session::server_clean() const {
  return pending_ == 0 && !unsynced_ && !in_copy_ &&
         (!buf_ || (buf_->from_client.at_boundary() && buf_->from_server.at_boundary()));
}

net::Task<bool> Session::sync_parameters() {
  std::string sql;
  const auto& have = lease_->parameters();
  for (const auto& [name, value] : believed_->values) {
    if (!server::is_tracked(name)) continue;
    auto it = have.find(name);
    if (it == have.end() || it->second != value) append_set(sql, name, value);
  }
  if (sql.empty()) co_return true;
  auto timeout = pool_settings_->connect_timeout;
  auto ok = co_await lease_->run_control_query(sql, timeout.count() > 0 ? timeout : std::chrono::milliseconds(10'000));
  if (!ok) {
    log::warn("parameter_sync_failed", {{"client_id", id_}, {"server_id", lease_->id()}, {"error", ok.error().message}});
    co_return false;
  }
  co_return true;
}

bool Session::attach_now(net::TimePoint now) {
  auto lease = pool_->try_lend(client_.executor(), server_startup_->signature, now);
  return lease && adopt(std::move(*lease));
}

bool Session::adopt(pool::Lease lease) {
  lease_ = std::move(lease);
  if (lease_->tracked() != believed_->tracked) return false;  // attach(false) runs the SET
  attached();
  return true;
}

void Session::attached() {
  cancel_target_->set(lease_->endpoint(), lease_->backend_key());
  info_->server_id.store(lease_->id(), std::memory_order_relaxed);
  info_->state.store(ClientInfo::active, std::memory_order_relaxed);
}

void Session::mark_waiting(bool waiting) {
  if (waiting) {
    info_->wait_started_us.store(std::chrono::duration_cast<std::chrono::microseconds>(
                                     net::Clock::now().time_since_epoch()).count(), std::memory_order_relaxed);
  }
  info_->state.store(waiting ? ClientInfo::waiting : ClientInfo::idle, std::memory_order_relaxed);
}

std::shared_ptr<const std::string> Session::welcome_from_pool() {
  if (mode_ == config::PoolMode::session) return nullptr;
  const auto* app = login_->startup.find("application_name");
  auto welcome = pool_->welcome(server_startup_->signature, app ? std::string_view(*app) : std::string_view());
  if (!welcome) return nullptr;
  believed_ = std::move(welcome->parameters);
  return std::move(welcome->messages);
}

net::Task<bool> Session::attach(bool first, bool woken) {
  if (lease_) {
    // attach_now lent it; only the parameters are out of step.
    if (!co_await sync_parameters()) {
      lease_.close();
      co_await fail(CloseReason::server_closed, "08006", "pgweir could not prepare a server connection");
      co_return false;
    }
    attached();
    co_return true;
  }
  if (!woken) mark_waiting(true);
  auto result = co_await pool_->acquire(client_.executor(), server_startup_->params, server_startup_->signature, waiter_,
                                        woken);
  mark_waiting(false);
  if (auto* err = std::get_if<pool::AcquireError>(&result)) {
    const auto& key = pool_->key();
    switch (err->kind) {
      case pool::AcquireFailure::timeout:
        co_await fail(CloseReason::pool_timeout, "53300",
                      "no server connection available in pool \"" + key.database + "/" + key.user + "\" within " +
                          duration_text(pool_->settings()->timeout) + " (pool.timeout)");
        break;
      case pool::AcquireFailure::closed:
        co_await fail(CloseReason::shutdown, "57P01", "pool \"" + key.database + "/" + key.user + "\" was closed");
        break;
      case pool::AcquireFailure::connect_failed:
        if (err->connect.server) {
          // The server's own refusal (e.g. a startup parameter it rejects) reaches the client as it was sent.
          reason_ = CloseReason::server_unavailable;
          set_close_detail(err->connect.message);
          auto fields = *err->connect.server;
          fields.severity = "FATAL";
          std::string out;
          protocol::append_error_response(out, fields);
          co_await client_.write_all(out);
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
    const auto* app = login_->startup.find("application_name");
    believed_ = std::make_shared<const server::ParameterSet>(
        server::ParameterSet{{{"application_name", app ? *app : std::string()}}, {}});
    if (!co_await sync_parameters()) {
      lease_.close();
      co_await fail(CloseReason::server_unavailable, "08006", "pgweir could not prepare a server connection");
      co_return false;
    }
    believed_ = pool_->shared_parameters(lease_->parameters());
  } else if (lease_->tracked() != believed_->tracked && !co_await sync_parameters()) {
    lease_.close();
    co_await fail(CloseReason::server_closed, "08006", "pgweir could not prepare a server connection");
    co_return false;
  }
  attached();
  co_return true;
}

// The client no longer has a server: cancels have no target and SHOW CLIENTS says idle.
void Session::detached() {
  cancel_target_->clear();
  info_->server_id.store(0, std::memory_order_relaxed);
  info_->state.store(ClientInfo::idle, std::memory_order_relaxed);
}

net::Task<void> Session::detach() {
  detached();
  if (!lease_) co_return;
  // A cancel already on its way to this server must land before anyone else can be running a query there.
  if (cancel_target_->cancels_in_flight() > 0) {
    net::Timer wait(client_.executor());
    auto deadline = net::Clock::now() + limits::k_cancel_timeout;
    while (cancel_target_->cancels_in_flight() > 0 && net::Clock::now() < deadline) {
      wait.expires_after(std::chrono::milliseconds(10));
      co_await wait.async_wait(net::use_tuple);
    }
  }
  bool clean = server_clean() && lease_->transaction_status() == 'I';
  // A write still on its way through the loop's ring is finished before the server changes hands (or loops).
  if (clean && lease_->transport().sending()) clean = !co_await lease_->transport().flush();
  if (clean && (mode_ == config::PoolMode::session || pinned_) && !release_requested_ &&
      !pool_settings_->reset_query.empty()) {
    auto timeout =
        pool_settings_->connect_timeout.count() > 0 ? pool_settings_->connect_timeout : std::chrono::milliseconds(10'000);
    auto ok = co_await lease_->run_control_query(pool_settings_->reset_query, timeout);
    clean = ok && lease_->transaction_status() == 'I';
    lease_->prepared().clear();  // a reset (DISCARD ALL) also ends prepared statements
  }
  buf_->from_server.release_memory();
  if (clean) {
    lease_.give_back();
  } else {
    const char* why = pending_ > 0 ? "client_left_mid_query" : in_copy_ ? "client_left_mid_copy" :
                      lease_->transaction_status() != 'I' ? "client_left_in_transaction" : "client_left_mid_message";
    log::info("server_closed", {{"client_id", id_}, {"server_id", lease_->id()}, {"reason", why}});
    if (pending_ > 0) {
      // A query still running would keep its locks until it next writes to the closed socket: cancel it first.
      co_await server::send_cancel(lease_->endpoint(), lease_->backend_key(), client_.executor());
    }
    lease_.close();
  }
  reset_relay_state();
}

// The common release, without a coroutine: a clean server at a transaction boundary, no cancel on its way to it
// and no reset query to run. Otherwise detach() does the rest.
bool Session::detach_now() {
  detached();
  if (!lease_ || cancel_target_->cancels_in_flight() > 0 || !server_clean() || lease_->transaction_status() != 'I' ||
      lease_->transport().sending())
    return false;
  if ((mode_ == config::PoolMode::session || pinned_) && !release_requested_ && !pool_settings_->reset_query.empty())
    return false;
  buf_->from_server.release_memory();
  // Idle since its last answer, which the relay has just read (end_query): the clock is not read again.
  auto answered = buf_->answered_at;
  lease_.give_back(answered != net::TimePoint{} && answered >= query_started_ ? answered : net::Clock::now());
  reset_relay_state();
  return true;
}

void Session::reset_relay_state() {
  pending_ = 0;
  unsynced_ = false;
  in_copy_ = false;
  release_requested_ = false;
  if (prepared_) prepared_->reset_in_flight();
  if (buf_) {
    buf_->from_client.reset();
    buf_->from_server.reset();
  }
}

namespace {

// Writes `out` to `to`, skipping its first `skip` bytes (already written), in batches of gathered buffers.
net::Task<net::ErrorCode> write_segments(net::Transport& to, const net::Segments& out, std::size_t skip) {
  std::array<asio::const_buffer, 16> bufs;
  std::size_t i = 0;
  for (auto seg : out) {
    if (skip >= seg.size()) {
      skip -= seg.size();
      continue;
    }
    seg.remove_prefix(skip);
    skip = 0;
    if (i == bufs.size()) {
      if (auto ec = co_await to.write_all(std::span(bufs.data(), i))) co_return ec;
      i = 0;
    }
    bufs[i++] = asio::const_buffer(seg.data(), seg.size());
  }
  co_return co_await to.write_all(std::span(bufs.data(), i));
}

// The first try at writing `out`: one gathered write, no coroutine. Returns the bytes written.
std::size_t write_segments_now(net::Transport& to, const net::Segments& out, net::ErrorCode& ec) {
  std::array<asio::const_buffer, net::Segments::static_capacity> bufs;
  if (out.size() > bufs.size()) return 0;
  for (std::size_t i = 0; i < out.size(); ++i) bufs[i] = asio::const_buffer(out[i].data(), out[i].size());
  return to.write_now(std::span(bufs.data(), out.size()), ec);
}

std::size_t total_size(const net::Segments& out) {
  std::size_t n = 0;
  for (auto seg : out) n += seg.size();
  return n;
}

}  // namespace

// Both pumps write to the server (pump_server only to retry a prepared statement), one write at a time. The first
// try is one gathered write without a coroutine, which usually takes everything.
std::size_t Session::write_to_server_now(const net::Segments& out, net::ErrorCode& ec) {
  if (server_writing_) return 0;  // the other pump's write is unfinished: wait for the turn
  return write_segments_now(lease_->transport(), out, ec);
}

// The rest of a write to the server after its first `done` bytes. Turns are rare and short, so the wait polls.
net::Task<net::ErrorCode> Session::write_to_server(const net::Segments& out, std::size_t done) {
  if (server_writing_) {
    net::Timer turn(client_.executor());
    while (server_writing_) {
      turn.expires_after(std::chrono::milliseconds(1));
      co_await turn.async_wait(net::use_tuple);
    }
  }
  server_writing_ = true;
  struct Done {
    bool& writing;
    ~Done() { writing = false; }  // also when the pump is cancelled mid-write
  } finished{server_writing_};
  co_return co_await write_segments(lease_->transport(), out, done);
}

// What forward_to_server() left in buf_->spill, in a frame of its own that exists only while it waits.
net::Task<net::ErrorCode> Session::write_spill_to_server() {
  net::Segments rest;
  rest.push_back(buf_->spill);
  auto ec = co_await write_to_server(rest, 0);
  std::string().swap(buf_->spill);
  co_return ec;
}

// What pump_client's scanner asks of the session: it looks only at tags, and holds Terminate back.
struct Session::ClientHooks {
  Session& s;
  bool terminate = false;
  bool replaced_state = false;
  bool inspect(char tag, std::uint32_t length) {
    return tag == fe::Terminate || s.prepared_->wants_client(tag, length) || s.watches_session_state(tag, length);
  }
  Verdict on_message(char tag, std::string_view whole) {
    if (tag == fe::Terminate) {
      terminate = true;
      return Verdict::drop;
    }
    s.account_client_message(tag);
    replaced_state = false;
    if (auto v = s.check_session_state(tag, whole)) {
      replaced_state = true;
      return *v;
    }
    if (!s.prepared_->wants_client(tag, static_cast<std::uint32_t>(whole.size() - 1))) {
      s.prepared_->on_client_passthrough(tag);
      return Verdict::forward;
    }
    return s.prepared_->on_client_message(tag, whole, *s.lease_);
  }
  std::string_view replacement() { return replaced_state ? std::string_view(s.buf_->state_rewrite) : s.prepared_->replacement(); }
  void on_passthrough(char tag, std::uint32_t) {
    s.account_client_message(tag);
    s.prepared_->on_client_passthrough(tag);
  }
};

// Client input through the scanner to the server, without a coroutine: one gathered write usually takes it all;
// what the socket does not take is copied to buf_->spill for pump_client to write. False when the relay ends (end_ set).
bool Session::forward_to_server(std::string_view input, ClientHooks& hooks) {
  net::Segments out;
  if (const char* err = buf_->from_client.feed(input, hooks, out)) {
    set_close_detail(err);
    stop(CloseReason::protocol_violation);
    return false;
  }
  if (out.empty()) return true;
  net::ErrorCode ec;
  auto done = write_to_server_now(out, ec);
  if (ec) {
    stop(CloseReason::server_closed);
    return false;
  }
  for (auto seg : out) {
    if (done >= seg.size()) {
      done -= seg.size();
      continue;
    }
    buf_->spill.append(seg.substr(done));
    done = 0;
  }
  return true;
}

// Client -> server. Streams bodies through (forward_to_server); attaches a server when a transaction starts.
net::Task<void> Session::pump_client() {
  ClientHooks hooks{*this};
  net::Chunk chunk;
  // A read goes into the session's small inbox when the last one drained the socket, so a client with nothing
  // more to say waits holding no relay chunk; a read that filled its buffer is followed by a chunk read.
  bool drained = true;
  for (;;) {
    // A kill or shutdown that arrived while this pump was busy found no read to cancel: look before reading.
    if (killed_) {
      stop(CloseReason::admin_kill);
      co_return;
    }
    if (shutdown_requested_ && idle_at_boundary()) {
      stop(CloseReason::shutdown);
      co_return;
    }
    std::string_view input;
    if (!buf_->carry.empty()) {
      input = buf_->carry;
      drained = buf_->carry.size() < chunk.size();
    } else if (inbox_len_ > 0) {
      input = std::string_view(buf_->inbox.data(), inbox_len_);  // read while no server was attached
      drained = inbox_len_ < buf_->inbox.size();
    } else {
      std::span<char> buffer(buf_->inbox);
      if (!drained) {
        chunk.acquire();
        buffer = std::span<char>(chunk.data(), chunk.size());
      }
      idle_reading_ = buffer.data() == buf_->inbox.data();  // try_park() also wants no server attached
      net::ReadResult got;
      std::tuple<net::ErrorCode, std::size_t> read;
      if (client_.reads_directly()) {
        co_await client_.receive_into(buffer.data(), buffer.size(), got);
        read = got.take();
      } else {
        read = co_await client_.receive(buffer.data(), buffer.size());
      }
      auto [ec, n] = read;
      idle_reading_ = false;
      if (ec) {
        if (relay_stopping()) co_return;  // the other direction ended or released
        if (ec == asio::error::operation_aborted && (killed_ || shutdown_requested_)) {
          park_requested_ = false;
          continue;  // handled above
        }
        if (ec == asio::error::operation_aborted && park_requested_) {
          parked_ = true;  // relay() and serve() unwind; keep_serving()'s caller parks the session
          co_return;
        }
        stop(ec == asio::error::eof ? CloseReason::client_eof : CloseReason::client_error);
        co_return;
      }
      park_requested_ = false;  // input came first: a park asked for meanwhile is void
      drained = n < buffer.size();
      if (relay_stopping()) {
        // The read completed as the server was being released: these bytes open the next transaction.
        if (buffer.data() == buf_->inbox.data()) {
          inbox_len_ = static_cast<std::uint32_t>(n);
        } else {
          buf_->carry.assign(buffer.data(), n);
        }
        co_return;
      }
      input = std::string_view(buffer.data(), n);
    }
    last_client_io_ = net::Clock::now();
    buf_->input_at = last_client_io_;
    if (!lease_) {
      // Transaction mode between transactions: this input opens the next one.
      if (input == std::string_view("X\0\0\0\4", 5)) {
        stop(CloseReason::client_terminate);  // a client that only says goodbye needs no server
        co_return;
      }
      if (shutdown_requested_ || killed_) {
        stop(killed_ ? CloseReason::admin_kill : CloseReason::shutdown);
        co_return;
      }
      attaching_ = true;
      bool ok = attach_now(last_client_io_);
      bool at_once = ok;
      bool woken = false;
      if (!ok && !lease_) {
        // Nothing to lend at once: the common wait, in the pool's queue, is awaited right here.
        if (!waiter_) waiter_ = std::make_shared<pool::Waiter>(client_.executor());
        if (pool_->enqueue(waiter_)) {
          mark_waiting(true);
          co_await waiter_->wake.wait();
          mark_waiting(false);
          woken = true;
          if (auto lease = pool_->claim(*waiter_, client_.executor(), server_startup_->signature)) {
            woken = false;
            ok = adopt(std::move(*lease));
          }
        }
      }
      if (!ok) ok = co_await attach(false, woken);
      attaching_ = false;
      if (!ok) {
        stop(reason_);
        co_return;
      }
      if (!at_once) buf_->input_at = net::Clock::now();  // the wait for a server is not the query's time
    }
    pool_->cells().bytes_received.inc(input.size());
    bool forwarded = forward_to_server(input, hooks);
    // pump_server waits for a server to read from: once the input is on its way to the server (and before any wait
    // for the rest of it, which needs the server's answers read), it starts its read from here.
    buf_->server_pump_wake.notify_here();
    if (!forwarded) co_return;
    if (!buf_->spill.empty()) {
      // The socket did not take it all at once: the rest goes through the waiting path.
      auto ec = co_await write_spill_to_server();
      if (ec) {
        stop(CloseReason::server_closed);
        co_return;
      }
    }
    prepared_->chunk_written();
    // What was fed is forwarded: the buffers are free again.
    if (!buf_->carry.empty()) {
      std::string().swap(buf_->carry);
    } else {
      inbox_len_ = 0;
    }
    chunk.reset();
    if (hooks.terminate) {
      stop(CloseReason::client_terminate);
      co_return;
    }
  }
}

bool Session::watches_session_state(char tag, std::uint32_t length) const {
  return mode_ != config::PoolMode::session && !pinned_ && pool_settings_->session_state != config::SessionState::allow &&
         (tag == fe::Query || tag == fe::Parse) && length <= limits::k_max_inspected_message;
}

std::optional<net::Verdict> Session::check_session_state(char tag, std::string_view whole) {
  if (!watches_session_state(tag, static_cast<std::uint32_t>(whole.size() - 1))) return std::nullopt;
  auto body = whole.substr(protocol::k_header_size);
  std::string_view sql = body;
  if (tag == fe::Parse) {
    auto name_end = body.find('\0');
    if (name_end == std::string_view::npos) return std::nullopt;
    sql = body.substr(name_end + 1);
  }
  auto nul = sql.find('\0');
  if (nul != std::string_view::npos) sql = sql.substr(0, nul);
  if (tag == fe::Parse && sql == buf_->stateless_parse) return std::nullopt;
  auto reason = detect_session_state(sql);
  if (!reason) {
    if (tag == fe::Parse && sql.size() <= k_remembered_parse) buf_->stateless_parse.assign(sql);
    return std::nullopt;
  }
  if (pool_settings_->session_state == config::SessionState::pin) {
    pinned_ = true;
    env_.router.metrics().pinned_clients.with({*reason}).inc();
    log::info("client_pinned", {{"client_id", id_}, {"reason", *reason}});
    return std::nullopt;  // forwarded as it is; the server stays with this client
  }
  // session_state = error: the server answers with an error in the statement's place, in order.
  std::string raise = "DO $pgweir$BEGIN RAISE EXCEPTION USING ERRCODE = '0A000', MESSAGE = "
                      "'pgweir: this statement would leave session state (" + std::string(*reason) +
                      ") on a shared server connection; it is refused in transaction pooling mode "
                      "(pool.session_state = error)'; END$pgweir$";
  buf_->state_rewrite.clear();
  buf_->state_rewrite += tag;
  std::string msg_body;
  if (tag == fe::Parse) {
    msg_body.push_back('\0');  // unnamed: nothing of it is kept
    msg_body += raise;
    msg_body.push_back('\0');
    msg_body.append("\0\0", 2);  // no parameter types
  } else {
    msg_body = raise;
    msg_body.push_back('\0');
  }
  auto len = static_cast<std::uint32_t>(msg_body.size() + 4);
  buf_->state_rewrite += static_cast<char>(len >> 24);
  buf_->state_rewrite += static_cast<char>(len >> 16);
  buf_->state_rewrite += static_cast<char>(len >> 8);
  buf_->state_rewrite += static_cast<char>(len);
  buf_->state_rewrite += msg_body;
  prepared_->on_client_passthrough(tag);
  return net::Verdict::replace;
}

void Session::account_client_message(char tag) {
  switch (tag) {
    case fe::Query:
    case fe::FunctionCall: begin_query(); break;
    case fe::Sync:
      begin_query();
      unsynced_ = false;
      break;
    case fe::Parse:
    case fe::Bind:
    case fe::Execute:
    case fe::Describe:
    case fe::Close:
    case fe::Flush: unsynced_ = true; break;
    case fe::CopyDone:
    case fe::CopyFail: in_copy_ = false; break;
    default: break;
  }
}

void Session::begin_query() {
  if (pending_++ == 0) {
    query_started_ = buf_->input_at;
    info_->request_time_us.store(
        std::chrono::duration_cast<std::chrono::microseconds>(query_started_.time_since_epoch()).count(),
        std::memory_order_relaxed);
    query_cancelled_ = false;
    if (lease_ && lease_->transaction_status() == 'I') xact_started_ = query_started_;
  }
}

void Session::end_query(char status) {
  if (pending_ == 0) return;
  if (--pending_ > 0) return;
  auto now = net::Clock::now();
  buf_->answered_at = now;
  auto& st = pool_->stats();
  auto& cells = pool_->cells();
  auto query_time = std::chrono::duration_cast<std::chrono::microseconds>(now - query_started_);
  cells.queries.inc();
  cells.query_duration.observe(static_cast<double>(query_time.count()) / 1e6);
  st.query_time_us.fetch_add(static_cast<std::uint64_t>(query_time.count()), std::memory_order_relaxed);
  if (status == 'I') {
    auto xact_time = std::chrono::duration_cast<std::chrono::microseconds>(now - xact_started_);
    cells.transactions.inc();
    cells.transaction_duration.observe(static_cast<double>(xact_time.count()) / 1e6);
    st.xact_time_us.fetch_add(static_cast<std::uint64_t>(xact_time.count()), std::memory_order_relaxed);
  }
}

// Server -> client while a server is attached; between transactions it waits for pump_client to attach the next
// one. The per-server state lives in relay_server()'s frame, which exists only while a server is attached.
// It runs as a coroutine of its own beside relay()'s pump_client. Whichever pump ends first wakes the other: this
// one by cancelling what pump_client may be waiting on (its read from the client, a write to the server), which
// then sees relay_stopping(); relay() waits on buf_->wake for this one.
net::Task<void> Session::pump_server() {
  for (;;) {
    while (!lease_ && !end_ && client_pumping_) co_await buf_->server_pump_wake.wait();
    if (!lease_) break;
    bool released = co_await relay_server();
    if (!released) break;
  }
  server_pumping_ = false;
  if (client_pumping_) {
    client_.cancel();
    if (lease_) lease_->transport().cancel();
  } else {
    buf_->wake.cancel();
  }
}

// One server's answers, until it is given back (true) or the relay ends or leaves the release to relay() (false).
// Tracks ReadyForQuery and ParameterStatus; everything streams through. In transaction and statement mode, the
// server is released at the first idle ReadyForQuery with nothing outstanding.
net::Task<bool> Session::relay_server() {
  struct Hooks {
    Session& s;
    bool inspect(char tag, std::uint32_t length) {
      return tag == be::ReadyForQuery || tag == be::ParameterStatus || s.prepared_->wants_server(tag, length);
    }
    Verdict on_message(char tag, std::string_view whole) {
      auto body = whole.substr(protocol::k_header_size);
      if (tag != be::ReadyForQuery && tag != be::ParameterStatus) {
        return s.prepared_->on_server_message(tag, whole, *s.lease_);
      }
      Verdict verdict = Verdict::forward;
      if (tag == be::ReadyForQuery) {
        char status = 'E';
        if (auto st = protocol::parse_ready_for_query(body)) status = *st;
        verdict = s.prepared_->on_ready_for_query(status, whole, *s.lease_);
        if (verdict == Verdict::drop) return verdict;  // ends a segment pgweir sends again: the retry answers it
        s.lease_->set_transaction_status(status);
        s.end_query(status);
        s.in_copy_ = false;
        if (s.mode_ == config::PoolMode::statement && status != 'I' && s.pending_ == 0) {
          // The statement that opened a transaction is answered with the refusal instead of ReadyForQuery.
          s.stop(CloseReason::transaction_not_allowed);
          return Verdict::drop;
        }
      } else if (auto ps = protocol::parse_parameter_status(body)) {
        s.lease_->set_parameter(ps->name, ps->value);
        auto it = s.believed_->values.find(ps->name);
        if (it == s.believed_->values.end() || it->second != ps->value) {
          // Copied on write: the old set may be shared with other clients.
          auto changed = std::make_shared<server::ParameterSet>(*s.believed_);
          changed->values[std::string(ps->name)] = std::string(ps->value);
          if (server::is_tracked(ps->name)) changed->tracked = server::tracked_fingerprint(changed->values);
          s.believed_ = std::move(changed);
        }
      }
      return verdict;
    }
    std::string_view replacement() { return s.prepared_->server_replacement(); }
    void on_passthrough(char tag, std::uint32_t) {
      if (tag == be::CopyInResponse || tag == be::CopyOutResponse || tag == be::CopyBothResponse) s.in_copy_ = true;
      s.prepared_->on_server_passthrough(tag);
    }
  };
  Hooks hooks{*this};
  net::Chunk chunk;
  net::Segments out;
  auto& server = lease_->transport();
  for (;;) {
    chunk.acquire();
    net::ReadResult got;
    std::tuple<net::ErrorCode, std::size_t> read;
    if (server.reads_directly()) {
      co_await server.receive_into(chunk.data(), chunk.size(), got);
      read = got.take();
    } else {
      read = co_await server.receive(chunk.data(), chunk.size());
    }
    auto [ec, n] = read;
    if (ec) {
      if (relay_stopping()) co_return false;
      stop(killed_ ? CloseReason::admin_kill : CloseReason::server_closed);
      co_return false;
    }
    out.clear();
    if (const char* err = buf_->from_server.feed(std::string_view(chunk.data(), n), hooks, out)) {
      set_close_detail(std::string("server: ") + err);
      stop(CloseReason::server_closed);
      co_return false;
    }
    if (!prepared_->retry().empty() && !co_await send_retry()) {
      stop(CloseReason::server_closed);
      co_return false;
    }
    if (!out.empty()) {
      auto bytes = total_size(out);
      pool_->cells().bytes_sent.inc(bytes);
      net::ErrorCode wec;
      auto done = write_segments_now(client_, out, wec);
      if (!wec && done < bytes) wec = co_await write_segments(client_, out, done);
      if (wec) {
        stop(CloseReason::client_error);
        co_return false;
      }
    }
    chunk.reset();
    if (pending_ > 0 || !server_clean()) continue;
    char status = lease_->transaction_status();
    if (mode_ == config::PoolMode::statement && status != 'I') {
      stop(CloseReason::transaction_not_allowed);
      co_return false;
    }
    if (status != 'I') continue;
    if (shutdown_requested_) {
      stop(CloseReason::shutdown);
      co_return false;
    }
    if (mode_ != config::PoolMode::session && !pinned_) {
      release_requested_ = true;
      co_return detach_now();  // false: relay() finishes the release
    }
  }
}

// Its own coroutine, so that relay_server's frame, allocated per transaction, stays small enough for Asio to
// recycle it (1 020 bytes at most) without room for a second segment list.
net::Task<bool> Session::send_retry() {
  net::Segments retry;
  retry.push_back(prepared_->retry());
  net::ErrorCode failed;
  auto done = write_to_server_now(retry, failed);
  if (!failed && done < retry.front().size()) failed = co_await write_to_server(retry, done);
  prepared_->retry_sent();
  co_return !failed;
}

// Times out idle clients, idle transactions and long queries. Runs beside the relay when any is configured.
net::Task<void> Session::watchdog() {
  net::Timer timer(client_.executor());
  const auto client_idle = settings_->config->server.client_idle_timeout;
  const auto idle_tx = pool_settings_->idle_transaction_timeout;
  const auto query = pool_settings_->query_timeout;
  for (;;) {
    auto now = net::Clock::now();
    auto next = now + std::chrono::seconds(1);
    if (lease_ && pending_ > 0 && query.count() > 0 && !query_cancelled_) {
      auto deadline = query_started_ + query;
      if (now >= deadline) {
        query_cancelled_ = true;
        log::info("query_timeout", {{"client_id", id_}, {"server_id", lease_->id()}});
        if (auto target = cancel_target_->begin_cancel()) {
          asio::co_spawn(
              client_.executor(),
              [t = cancel_target_, dest = *target, ex = client_.executor()]() -> net::Task<void> {
                co_await server::send_cancel(dest.first, dest.second, ex);
                t->end_cancel();
              },
              asio::detached);
        }
      } else {
        next = std::min(next, deadline);
      }
    }
    if (pending_ == 0 && server_clean() && !attaching_) {
      bool in_tx = lease_ && lease_->transaction_status() != 'I';
      auto limit = in_tx ? idle_tx : client_idle;
      if (limit.count() > 0) {
        auto deadline = last_client_io_ + limit;
        if (now >= deadline) {
          stop(in_tx ? CloseReason::idle_transaction_timeout : CloseReason::client_idle_timeout);
          co_return;
        }
        next = std::min(next, deadline);
      }
    }
    timer.expires_at(next);
    co_await timer.async_wait(net::use_tuple);
  }
}

// The relay: both directions run for the whole session. In transaction and statement mode pump_client attaches a
// server when the client starts a transaction and pump_server gives it back at the boundary; only a release that
// must wait (a cancel on its way to the server) ends them, and relay() finishes it and starts them again.
// pump_client runs in this coroutine and pump_server in one of its own; they are joined by hand rather than with
// the || operator, whose parallel group an idle client would otherwise hold for its whole session (~2.5 KB).
net::Task<void> Session::relay() {
  // A cancellation from serve()'s watchdog must not turn the join below into an exception: the pumps look at end_.
  co_await asio::this_coro::throw_if_cancelled(false);
  for (;;) {
    client_pumping_ = server_pumping_ = true;
    asio::co_spawn(client_.executor(), pump_server(), asio::detached);
    co_await pump_client();
    client_pumping_ = false;
    // pump_client left with end_ or release_requested_ set (or for a park). pump_server may be waiting for a
    // server, reading from one or writing to the client. Without a server it can only be waiting on
    // server_pump_wake: waking it ends it as soon as it runs, which it does before this coroutine is resumed from
    // the queue behind it (no 50 ms timer to arm, which costs a timerfd_settime when it is the loop's earliest).
    if (server_pumping_ && !lease_) {
      buf_->server_pump_wake.notify();
      co_await asio::post(client_.executor(), net::use_awaitable);
    }
    // Otherwise, cancel its operations until it has ended (a write waiting for its turn starts after a cancel,
    // hence the repeat).
    while (server_pumping_) {
      buf_->server_pump_wake.notify();
      if (lease_) lease_->transport().cancel();
      client_.cancel();
      buf_->wake.expires_after(std::chrono::milliseconds(50));
      co_await buf_->wake.async_wait(net::use_tuple);
    }
    if (end_) {
      parked_ = false;
      co_return;
    }
    if (parked_) co_return;
    if (release_requested_) co_await detach();
  }
}

net::Task<CloseReason> Session::serve() {
  last_client_io_ = net::Clock::now();
  end_.reset();
  bool watch = settings_->config->server.client_idle_timeout.count() > 0 ||
               pool_settings_->idle_transaction_timeout.count() > 0 || pool_settings_->query_timeout.count() > 0;
  if (watch) {
    co_await (relay() || watchdog());
  } else {
    co_await relay();
  }
  co_return end_.value_or(CloseReason::client_error);
}

// Login: negotiation and authentication, bounded by client_login_timeout. The session is on its event loop's lot
// meanwhile, whose sweep ends a login that outlasts the timeout by cancelling its socket operations (check_login):
// cheaper than a timer raced against the login for every connection.
net::Task<bool> Session::log_in() {
  env_.registry.logging_in.fetch_add(1, std::memory_order_relaxed);
  bool bounded = lot_ && settings_->config->server.client_login_timeout.count() > 0;
  if (bounded) {
    logging_in_ = true;
    lot_->link(this);
  }
  bool logged_in = co_await negotiate() && co_await authenticate();
  if (!logged_in && login_->refused) co_await client_.write_all(login_->scratch);
  if (bounded) {
    lot_->unlink(this);
    logging_in_ = false;
  }
  if (!logged_in && login_expired_) {
    reason_ = CloseReason::login_timeout;
    set_close_detail("no login within client_login_timeout (" +
                     duration_text(settings_->config->server.client_login_timeout) + ")");
  }
  env_.registry.logging_in.fetch_sub(1, std::memory_order_relaxed);
  co_return logged_in;
}

void Session::check_login(net::TimePoint now) {
  if (now - started_ < settings_->config->server.client_login_timeout) return;
  // Again at every sweep until the login ends: an operation that completed just before this one was cancelled is
  // followed by another.
  login_expired_ = true;
  client_.cancel();
}

// Admission of a logged-in client: the client limit and, for a pool, the pool, the cancel key, the first server
// and the welcome. False when the client was refused (and told why) or could not be welcomed. A coroutine of its
// own, like log_in(), so that what only admission needs is not kept in a frame for the whole session.
net::Task<bool> Session::admit() {
  const auto& cfg = *settings_->config;
  // Admission: max_client_connections counts logged-in clients.
  int now = g_clients.fetch_add(1, std::memory_order_relaxed) + 1;
  counted_ = true;
  if (now > cfg.server.max_client_connections) {
    co_await fail(CloseReason::too_many_clients, "53300", "sorry, too many clients already");
    co_return false;
  }
  if (admin::is_console_database(database())) co_return true;
  if (env_.shutting_down.load()) {
    co_await fail(CloseReason::shutdown, "57P03", "pgweir is shutting down");
    co_return false;
  }
  pool_ = env_.router.pool_for(database(), user(), credentials());
  credentials() = {};  // only the pool's server logins needed it, and the pool keeps its own copy
  if (!pool_) {
    co_await fail(CloseReason::unknown_database, "3D000", "database \"" + database() + "\" does not exist");
    co_return false;
  }
  pool_settings_ = pool_->settings();
  make_tracker();
  buf_ = std::make_unique<RelayBuffers>(client_.executor());
  pool_->client_joined();
  joined_ = true;
  mode_ = pool_settings_->mode;
  key_ = env_.router.cancels().issue(cancel_target_);
  key_issued_ = true;
  welcome_info();
  id_ = env_.registry.add(this);
  if (log::enabled(log::Level::info)) {  // the fields are made before the call: not for nothing at every login
    log::info("client_login", {{"client_id", id_}, {"peer", peer()}, {"database", database()}, {"user", user()},
                               {"tls", client_.is_tls() ? "on" : "off"}});
  }
  auto statuses = welcome_from_pool();
  if (!statuses && !co_await attach(true)) co_return false;
  // Welcome, after authenticate()'s AuthenticationOk: the server's parameters, our own key for cancels, ready.
  if (statuses) {
    login_->scratch += *statuses;
  } else {
    for (const auto& [k, v] : believed_->values) protocol::append_parameter_status(login_->scratch, k, v);
  }
  protocol::append_backend_key_data(login_->scratch, key_.process_id, key_.secret_key);
  protocol::append_ready_for_query(login_->scratch, 'I');
  if (co_await client_.write_all(login_->scratch)) {
    reason_ = CloseReason::client_error;
    co_return false;
  }
  co_return true;
}

// A welcomed pool client, until it leaves or is told why pgweir ends its session.
net::Task<void> Session::serve_pool() {
  // What only the login needed is freed: an idle client should cost little memory.
  login_.reset();
  if (mode_ != config::PoolMode::session && lease_) {
    // The login's server (the pool's first, whose parameters welcomed the client) goes back at once: the client
    // gets one when it sends something.
    release_requested_ = true;
    co_await detach();
  }
  if (!lease_ && may_park() && !client_.has_unread()) {
    // A client that has just logged in is parked at once: many sit idle for long after connecting (an
    // application's pool opening its connections), and this way the relay's frames are not made for them until
    // they send something. The park's wait returns at once when the first query is already in the socket; one
    // the login read along with its last message is held by the transport, and the relay takes it from there.
    parked_ = true;
    co_return;
  }
  co_await keep_serving();
}

bool Session::may_park() const {
  const auto& server = settings_->config->server;
  // Parking is for plain connections (a TLS connection may hold decrypted input a socket wait would not see) in
  // transaction and statement mode, without a watchdog (whose timer would need a wait of its own).
  return lot_ && mode_ != config::PoolMode::session && !client_.is_tls() && server.client_park_after.count() > 0 &&
         server.client_idle_timeout.count() == 0 && pool_settings_->idle_transaction_timeout.count() == 0 &&
         pool_settings_->query_timeout.count() == 0;
}

void Session::make_tracker() {
  prepared_ = std::make_unique<PreparedTracker>();
  if (pool_settings_->mode != config::PoolMode::session && pool_settings_->max_prepared_statements > 0)
    prepared_->enable(pool_.get(), static_cast<std::size_t>(pool_settings_->max_prepared_statements));
}

net::Task<void> Session::keep_serving() {
  // What the relay needs, made again after a park.
  if (!prepared_) make_tracker();
  if (!buf_) buf_ = std::make_unique<RelayBuffers>(client_.executor());
  if (may_park()) lot_->link(this);
  auto reason = co_await serve();
  if (lot_) lot_->unlink(this);
  if (parked_) co_return;
  reason_ = reason;
  if (auto notice = closing_message(reason_)) {
    std::string out;
    protocol::append_error(out, "FATAL", notice->first, notice->second);
    co_await client_.write_all(out);
  }
}

void Session::try_park(net::TimePoint now) {
  if (!idle_reading_ || park_requested_ || lease_ || attaching_ || end_ || release_requested_ || killed_ ||
      shutdown_requested_)
    return;
  if (now - last_client_io_ < settings_->config->server.client_park_after) return;
  park_requested_ = true;
  client_.cancel();  // pump_client's idle read ends with operation_aborted and sees the request
}

void Session::resume(std::unique_ptr<Session> self) {
  auto ex = self->client_.executor();
  asio::co_spawn(ex, unpark(std::move(self)), asio::detached);
}

void Session::park(std::unique_ptr<Session> self) {
  Session& s = *self;
  if (s.killed_ || s.shutdown_requested_) {
    // A kill or shutdown that came while the relay unwound (or during the login) found no read to cancel, and
    // would not end this wait either: the session goes back at once and pump_client sees it.
    resume(std::move(self));
    return;
  }
  s.env_.router.metrics().parks.inc();
  if (s.lot_) ++s.lot_->parked_since_trim_;
  // What an idle client does not need; keep_serving() makes it again. A pool waiter is made at the next wait.
  s.waiter_.reset();
  s.buf_.reset();  // at a boundary, the inbox empty: the park came from a read that took nothing
  if (s.prepared_->holds_nothing()) s.prepared_.reset();
  // The wait owns the session until it completes (park_woken). Input that arrived since the cancelled read
  // completes it at once (see ReadinessWait::start).
  self.release()->park_wait_.start(s.client_);
}

void Session::park_woken(void* context, bool destroyed) {
  std::unique_ptr<Session> self(static_cast<Session*>(context));
  if (destroyed) return;  // the event loop is being destroyed: the session goes with it
  resume(std::move(self));
}

// A parked session's way back: input, EOF, or a cancel (kill, shutdown) ended its wait. The relay starts again and
// pump_client's read finds what woke it.
net::Task<void> Session::unpark(std::unique_ptr<Session> self) {
  self->parked_ = false;
  self->park_requested_ = false;
  co_await self->keep_serving();
  if (self->parked_) {
    park(std::move(self));
    co_return;
  }
  co_await self->wind_up();
}

void Session::count_login(bool logged_in) {
  auto& metrics = env_.router.metrics();
  if (logged_in) {
    metrics.logins_ok.inc();
  } else if (reason_ == CloseReason::auth_failed) {
    metrics.logins_auth_failed.inc();
  } else if (reason_ != CloseReason::cancel_request && reason_ != CloseReason::client_eof) {
    metrics.logins_rejected.inc();
  }
}

// The session's frame chain stays small while it serves: log_in() and admit() are done with by then.
net::Task<void> Session::run() {
  settings_ = env_.router.settings();
  bool logged_in = co_await log_in();
  count_login(logged_in);
  if (logged_in && co_await admit()) {
    if (pool_) {
      co_await serve_pool();
      if (parked_) co_return;  // run_session() parks it
    } else {
      co_await serve_console();
    }
  }
  co_await wind_up();
}

net::Task<void> Session::wind_up() {
  if (key_issued_) {  // joined a pool
    // The server (if any) goes back clean or is closed.
    release_requested_ = false;
    co_await detach();
  }
  finish();
}

void Session::finish() {
  env_.router.metrics().client_disconnect(static_cast<std::size_t>(reason_), to_string(reason_)).inc();
  if (log::enabled(log::Level::info)) {  // as at login: the fields are made before the call
    const std::string detail = close_detail_ ? *close_detail_ : std::string();
    auto duration = std::chrono::duration_cast<std::chrono::milliseconds>(net::Clock::now() - started_);
    if (id_ != 0) {
      log::info("client_logout", {{"client_id", id_}, {"peer", peer()}, {"database", database()}, {"user", user()},
                                  {"duration_ms", duration.count()}, {"reason", to_string(reason_)},
                                  {"detail", detail}});
    } else if (reason_ != CloseReason::cancel_request && reason_ != CloseReason::client_eof) {
      log::info("client_rejected", {{"peer", peer()}, {"database", database()}, {"user", user()},
                                    {"reason", to_string(reason_)}, {"detail", detail}});
    }
  }
  client_.close();
}

net::Task<void> run_session(net::Socket socket, net::PeerAddress peer, SessionEnv& env) {
  net::tune_socket(socket, peer.port != 0);  // TCP peers have a port; unix socket peers do not
  auto session = std::make_unique<Session>(net::Transport(std::move(socket)), std::move(peer), env);
  co_await session->run();
  if (session->parked()) Session::park(std::move(session));
}

}  // namespace pgweir::client
