// One backend connection to PostgreSQL: connect (TCP or unix socket, TLS per sslmode), log in (SCRAM, md5,
// cleartext), and the small control exchanges pgweir runs itself (reset, parameter sync, ping).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/intrusive/list.hpp>

#include "pgweir/auth/scram.hpp"
#include "pgweir/core/result.hpp"
#include "pgweir/net/transport.hpp"
#include "pgweir/protocol/messages.hpp"
#include "pgweir/server/prepared.hpp"
#include "pgweir/tls/tls.hpp"

namespace pgweir::server {

using ParamMap = std::map<std::string, std::string, std::less<>>;
using StartupParams = std::vector<std::pair<std::string, std::string>>;

// Parameters the server reports that pgweir keeps in step for each client (re-applied on another server).
inline constexpr std::string_view k_tracked_parameters[] = {
    "client_encoding", "DateStyle", "TimeZone", "IntervalStyle", "standard_conforming_strings", "application_name",
    "search_path",
};
bool is_tracked(std::string_view name);
// Parameter values as the clients were told them. Immutable, so the many clients of a pool that were told the
// same values share one (Pool::shared_parameters); a client whose values change gets its own copy.
struct ParameterSet {
  ParamMap values;
  std::string tracked;  // tracked_fingerprint(values)
};
// The tracked parameters' values in one string (absent ones marked as such): two maps with equal fingerprints
// agree on every tracked parameter, so a client whose fingerprint matches its server's needs no SET.
std::string tracked_fingerprint(const ParamMap& parameters);

struct Endpoint {
  std::string host;  // starting with '/': a unix socket directory
  std::uint16_t port = 5432;
  bool is_unix() const { return !host.empty() && host[0] == '/'; }
  std::string to_string() const;
  bool operator==(const Endpoint&) const = default;
};

// Everything needed to open a server connection for one pool.
struct LoginSpec {
  std::vector<Endpoint> endpoints;   // tried in order
  tls::ServerSslMode ssl_mode = tls::ServerSslMode::prefer;
  std::shared_ptr<const tls::Context> tls;  // null when ssl_mode = disable
  std::string user;
  std::string database;
  std::optional<std::string> password;
  // Without a password: the client's md5 secret ("md5…", for md5 challenges when the server user is the client)
  // or the ClientKey/ServerKey of its SCRAM exchange (when the server has the same verifier).
  std::optional<std::string> md5_secret;
  std::optional<std::pair<auth::Key, auth::Key>> scram_keys;
  StartupParams parameters;          // besides user and database
  std::chrono::milliseconds connect_timeout{10'000};
};

// Why a connect failed, for the client's error and the metrics label.
enum class ConnectFailure { none, unreachable, timeout, tls, auth, server_error, protocol };
std::string_view to_string(ConnectFailure);

struct ConnectError {
  ConnectFailure kind = ConnectFailure::protocol;
  std::string message;                           // for logs and for the client
  std::optional<protocol::ErrorFields> server;   // the server's own ErrorResponse, when it sent one
};

class ServerConnection {
 public:
  ServerConnection(net::Transport transport, Endpoint endpoint);

  net::Transport& transport() { return transport_; }
  const Endpoint& endpoint() const { return endpoint_; }
  std::uint64_t id() const { return id_; }
  const ParamMap& parameters() const { return parameters_; }
  void set_parameter(std::string_view name, std::string_view value);
  const std::string& tracked() const { return tracked_; }  // tracked_fingerprint(parameters())
  const protocol::BackendKeyData& backend_key() const { return key_; }
  void set_backend_key(protocol::BackendKeyData key) { key_ = key; }
  char transaction_status() const { return tx_status_; }
  void set_transaction_status(char s) { tx_status_ = s; }

  net::TimePoint created_at() const { return created_at_; }
  net::TimePoint idle_since() const { return idle_since_; }
  void mark_idle(net::TimePoint now = net::Clock::now()) { idle_since_ = now; }

  // The startup parameters it logged in with, besides user and database, in canonical form.
  const std::string& signature() const { return signature_; }
  void set_signature(std::string s) { signature_ = std::move(s); }

  // Named statements pgweir has prepared on this connection (transaction mode).
  PreparedCache& prepared() { return prepared_; }

  // Generation of the pool settings it was opened under; a reload that changes the DSN bumps it.
  std::uint64_t generation() const { return generation_; }
  void set_generation(std::uint64_t g) { generation_ = g; }

  // Runs `sql` with the simple protocol and reads everything up to ReadyForQuery. ParameterStatus updates are
  // recorded; an ErrorResponse makes the result an error (the connection stays usable if RFQ arrived).
  net::Task<Expected<void>> run_control_query(std::string_view sql, std::chrono::milliseconds timeout);

  // Sends Terminate (best effort, without waiting) and closes.
  void terminate();

  // Membership of its pool's list of connections lent to clients (pool::Pool, under the pool's mutex): linking
  // and unlinking allocate nothing, and a connection unlinks itself when it is destroyed.
  using LentHook = boost::intrusive::list_member_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>>;
  LentHook lent_hook;

 private:
  net::Transport transport_;
  Endpoint endpoint_;
  std::uint64_t id_;
  ParamMap parameters_;
  std::string tracked_;
  protocol::BackendKeyData key_;
  char tx_status_ = 'I';
  net::TimePoint created_at_;
  net::TimePoint idle_since_;
  std::string signature_;
  std::uint64_t generation_ = 0;
  PreparedCache prepared_;
};

// Canonical form of startup parameters (sorted name=value pairs, application_name left out) used to match clients
// with connections.
std::string make_signature(const StartupParams& parameters);

using ConnectResult = std::variant<std::unique_ptr<ServerConnection>, ConnectError>;

// Opens and logs in a server connection on `executor`, bounded by spec.connect_timeout.
net::Task<ConnectResult> connect(const LoginSpec& spec, net::Executor executor);

// Sends a CancelRequest for `key` to `endpoint` over a new connection (TLS not used for cancel, as libpq).
net::Task<void> send_cancel(Endpoint endpoint, protocol::BackendKeyData key, net::Executor executor);

}  // namespace pgweir::server
