// Client login: SSL/GSS negotiation, direct TLS, CancelRequest, StartupMessage, and authentication
// (trust, md5, SCRAM-SHA-256 with channel binding) against users_file.
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <netinet/in.h>
#include <sys/socket.h>

#include "pgweir/auth/scram.hpp"
#include "pgweir/core/limits.hpp"
#include "pgweir/core/log.hpp"
#include "pgweir/net/message_io.hpp"
#include "pgweir/server/server_connection.hpp"
#include "session_impl.hpp"

namespace pgweir::client {
namespace {

constexpr unsigned char k_tls_handshake_record = 0x16;
// Negotiation packets (SSLRequest, GSSENCRequest) one connection may send before its StartupMessage.
constexpr int k_max_negotiation_packets = 2;

std::string auth_failed_message(std::string_view user) {
  return "password authentication failed for user \"" + std::string(user) + "\"";
}

// Clients of one application mostly send the same startup parameters: their sessions share one copy, interned per
// event loop (no lock), instead of each keeping its own vector and strings for as long as it is connected.
std::shared_ptr<const ServerStartup> intern_server_startup(server::StartupParams params) {
  struct Table {
    std::map<server::StartupParams, std::weak_ptr<const ServerStartup>> entries;
    std::size_t sweep_at = 64;
  };
  thread_local Table table;
  auto it = table.entries.find(params);
  if (it != table.entries.end()) {
    if (auto shared = it->second.lock()) return shared;
  }
  if (table.entries.size() >= table.sweep_at) {
    // Clients with parameters of their own (a unique application_name each, say) leave entries nobody holds.
    std::erase_if(table.entries, [](const auto& entry) { return entry.second.expired(); });
    table.sweep_at = std::max<std::size_t>(64, 2 * table.entries.size());
  }
  auto signature = server::make_signature(params);
  auto made = std::make_shared<const ServerStartup>(ServerStartup{params, std::move(signature)});
  table.entries.insert_or_assign(std::move(params), made);
  return made;
}

}  // namespace

net::Task<void> Session::fail(CloseReason reason, std::string_view sqlstate, std::string message) {
  reason_ = reason;
  set_close_detail(message);
  if (login_expired_) co_return;  // a refusal caused by the timeout's cancel: the client is not waited for
  std::string out;
  protocol::append_error(out, "FATAL", sqlstate, message);
  co_await client_.write_all(out);
}

bool Session::refuse(CloseReason reason, std::string_view sqlstate, std::string message) {
  reason_ = reason;
  login_->scratch.clear();
  // A refusal caused by the timeout's cancel: the client is not waited for.
  login_->refused = !login_expired_;
  if (login_->refused) protocol::append_error(login_->scratch, "FATAL", sqlstate, message);
  set_close_detail(std::move(message));
  return false;
}

net::Task<bool> Session::start_tls(bool direct) {
  SSL* ssl = SSL_new(settings_->client_tls->get());
  if (!ssl) {
    reason_ = CloseReason::tls_failed;
    co_return false;
  }
  if (auto ec = co_await client_.tls_handshake(ssl, true)) {
    reason_ = CloseReason::tls_failed;
    set_close_detail(ec == boost::system::errc::protocol_error ? tls::last_error() : ec.message());
    co_return false;
  }
  if (direct) {
    // Direct TLS must have negotiated ALPN "postgresql", so a TLS client of another protocol is not mistaken.
    const unsigned char* alpn = nullptr;
    unsigned int len = 0;
    SSL_get0_alpn_selected(client_.ssl(), &alpn, &len);
    if (len == 0) {
      co_return refuse(CloseReason::protocol_violation, "08P01",
                       "received direct SSL connection request without ALPN protocol negotiation extension");
    }
  }
  co_return true;
}

net::Task<void> Session::handle_cancel(const protocol::CancelRequest& req) {
  reason_ = CloseReason::cancel_request;
  auto target = env_.router.cancels().find({req.process_id, req.secret_key});
  if (!target) co_return;
  auto current = target->begin_cancel();
  if (!current) co_return;  // that client holds no server: nothing to cancel
  co_await server::send_cancel(current->first, current->second, client_.executor());
  target->end_cancel();
}

net::Task<bool> Session::negotiate() {
  // Direct TLS: the first byte is a TLS handshake record instead of a packet length. It is looked at without
  // being read, for OpenSSL reads it from the socket. Without TLS configured such a client fails below, its first
  // bytes taken for a startup packet of an invalid length.
  if (settings_->client_tls) {
    if (auto ec = co_await client_.wait_readable()) {
      reason_ = CloseReason::client_eof;
      co_return false;
    }
    unsigned char first = 0;
    if (::recv(client_.native_handle(), &first, 1, MSG_PEEK | MSG_DONTWAIT) == 1 && first == k_tls_handshake_record &&
        !co_await start_tls(true))
      co_return false;
  }

  std::string buffer;
  int negotiations = 0;
  for (;;) {
    auto step = take_packet(co_await net::read_startup_packet(client_, buffer), buffer, negotiations);
    if (step == PacketStep::startup) break;
    if (step == PacketStep::cancel) {
      co_await handle_cancel(login_->cancel);
      co_return false;
    }
    if (step == PacketStep::stop) co_return false;
    char answer = step == PacketStep::accept_tls ? 'S' : 'N';
    if (auto ec = co_await client_.write_all(std::string_view(&answer, 1))) {
      reason_ = CloseReason::client_error;
      co_return false;
    }
    if (answer == 'S' && !co_await start_tls(false)) co_return false;
  }
  if (!accept_startup()) co_return false;
  if (!login_->scratch.empty()) co_await client_.write_all(login_->scratch);  // NegotiateProtocolVersion
  co_return forward_startup();
}

// negotiate()'s steps between its waits are functions of their own: what they use in passing stays out of the
// coroutine's frame, which every login in flight holds.
Session::PacketStep Session::take_packet(const Expected<std::string_view>& packet, std::string_view buffer,
                                         int& negotiations) {
  if (!packet) {
    if (packet.error().message == "connection closed") {
      reason_ = CloseReason::client_eof;
      return PacketStep::stop;
    }
    // The read-ahead buffer holds what was read before the length was refused (zeros if nothing was).
    if (negotiations == 0 && !client_.is_tls() && static_cast<unsigned char>(buffer[0]) == k_tls_handshake_record) {
      reason_ = CloseReason::tls_failed;  // not answered: the client speaks TLS, and this is not a TLS message
      set_close_detail("direct TLS while tls.mode = disable");
      return PacketStep::stop;
    }
    refuse(CloseReason::protocol_violation, "08P01", "invalid startup packet: " + packet.error().message);
    return PacketStep::stop;
  }
  auto parsed = protocol::parse_startup_packet(*packet);
  if (!parsed) {
    refuse(CloseReason::protocol_violation, "08P01", parsed.error().message);
    return PacketStep::stop;
  }
  if (auto* cancel = std::get_if<protocol::CancelRequest>(&*parsed)) {
    login_->cancel = *cancel;
    return PacketStep::cancel;
  }
  if (std::holds_alternative<protocol::SSLRequest>(*parsed) ||
      std::holds_alternative<protocol::GSSENCRequest>(*parsed)) {
    if (client_.is_tls() || ++negotiations > k_max_negotiation_packets) {
      refuse(CloseReason::protocol_violation, "08P01", "unexpected encryption request");
      return PacketStep::stop;
    }
    bool accept = std::holds_alternative<protocol::SSLRequest>(*parsed) && settings_->client_tls;
    // Bytes sent along with the request, before our answer, would be read as if they came over TLS.
    if (accept && client_.has_buffered_input()) {
      reason_ = CloseReason::protocol_violation;
      set_close_detail("received unencrypted data after SSL request");
      return PacketStep::stop;
    }
    return accept ? PacketStep::accept_tls : PacketStep::decline_encryption;
  }
  login_->startup = std::move(std::get<protocol::StartupMessage>(*parsed));
  return PacketStep::startup;
}

bool Session::accept_startup() {
  if (tls::tls_required(settings_->config->tls.mode) && !client_.is_tls()) {
    return refuse(CloseReason::tls_required, "28000",
                  "TLS is required for connections to pgweir (tls.mode = " +
                      std::string(config::to_string(settings_->config->tls.mode)) + ")");
  }
  if (const auto* u = login_->startup.find("user"); u && !u->empty()) {
    info_->user = *u;
  } else {
    return refuse(CloseReason::protocol_violation, "28000", "no PostgreSQL user name specified in startup packet");
  }
  const auto* db = login_->startup.find("database");
  info_->database = db && !db->empty() ? *db : info_->user;

  // Protocol 3.x with x > 0, or _pq_ options: answer with what we speak (3.0) and no options.
  login_->scratch.clear();
  std::vector<std::string_view> unsupported;
  for (const auto& [k, v] : login_->startup.parameters) {
    if (k.starts_with("_pq_.")) unsupported.push_back(k);
  }
  if ((login_->startup.protocol_version & 0xffff) != 0 || !unsupported.empty()) {
    protocol::append_negotiate_protocol_version(login_->scratch, 0, unsupported);
  }
  return true;
}

bool Session::forward_startup() {
  // Startup parameters for server connections: everything the client sent but user, database and protocol
  // options, which pgweir answers itself.
  server::StartupParams params;
  for (const auto& [k, v] : login_->startup.parameters) {
    if (k == "user" || k == "database" || k.starts_with("_pq_.") || k == "replication") continue;
    params.emplace_back(k, v);
  }
  server_startup_ = intern_server_startup(std::move(params));
  if (const auto* r = login_->startup.find("replication"); r && *r != "false" && *r != "0" && *r != "off") {
    return refuse(CloseReason::protocol_violation, "08P01", "replication connections are not supported by pgweir");
  }
  return true;
}

net::Task<Expected<net::Message>> Session::read_auth_message(std::string& buffer) {
  return net::read_message(client_, buffer, limits::k_max_auth_message, net::k_client_read_ahead);
}

std::optional<std::string_view> Session::auth_response(const Expected<net::Message>& msg) {
  if (!msg) {
    reason_ = msg.error().message == "connection closed" ? CloseReason::client_eof : CloseReason::protocol_violation;
    return std::nullopt;
  }
  if (msg->tag != protocol::frontend::PasswordMessage) {
    if (msg->tag == protocol::frontend::Terminate) {
      reason_ = CloseReason::client_terminate;
    } else {
      refuse(CloseReason::protocol_violation, "08P01",
             std::string("expected password response, got message type ") + msg->tag);
    }
    return std::nullopt;
  }
  return msg->body;
}

net::Task<bool> Session::auth_md5(const auth::UserSecret* secret) {
  std::array<std::uint8_t, 4> salt{};
  RAND_bytes(salt.data(), salt.size());
  login_->scratch.clear();
  protocol::append_authentication_md5(login_->scratch, salt);
  if (co_await client_.write_all(login_->scratch)) {
    reason_ = CloseReason::client_error;
    co_return false;
  }
  login_->scratch.clear();
  std::string buffer;
  auto body = auth_response(co_await read_auth_message(buffer));
  if (!body) co_return false;
  auto response = protocol::parse_password_message(*body);
  if (!response) co_return refuse(CloseReason::protocol_violation, "08P01", "invalid password packet");
  if (!secret || !secret->md5 || !auth::verify_md5_response(*secret->md5, salt, *response)) {
    co_return refuse(CloseReason::auth_failed, "28P01", auth_failed_message(user()));
  }
  co_return true;
}

// auth_scram's steps between its waits are functions of their own: what they use in passing stays out of the
// coroutine's frame, which every SCRAM login in flight holds.
auth::ScramServerExchange Session::start_scram(const auth::UserSecret* secret) {
  std::optional<auth::ChannelBinding> binding;
  std::vector<std::string_view> mechanisms;
  if (client_.is_tls() && settings_->client_tls && !settings_->client_tls->end_point_hash().empty()) {
    binding = auth::ChannelBinding{"tls-server-end-point", settings_->client_tls->end_point_hash()};
    mechanisms.push_back("SCRAM-SHA-256-PLUS");
  }
  mechanisms.push_back("SCRAM-SHA-256");
  login_->scratch.clear();
  protocol::append_authentication_sasl(login_->scratch, mechanisms);
  // An unknown user, or one with no SCRAM secret, runs the whole exchange against a mock verifier and fails at
  // the end, exactly like a wrong password.
  return auth::ScramServerExchange(secret && secret->scram ? *secret->scram : auth::mock_scram_secret(user()),
                                   std::move(binding));
}

bool Session::scram_first(auth::ScramServerExchange& exchange, std::string_view message) {
  auto initial = protocol::parse_sasl_initial_response(message);
  if (!initial || !initial->data) return refuse(CloseReason::protocol_violation, "08P01", "malformed SASL message");
  auto server_first = exchange.handle_client_first(initial->mechanism, *initial->data);
  if (!server_first) return refuse(CloseReason::auth_failed, "28P01", auth_failed_message(user()));
  login_->scratch.clear();
  protocol::append_authentication_sasl_continue(login_->scratch, *server_first);
  return true;
}

bool Session::scram_final(auth::ScramServerExchange& exchange, std::string_view message,
                          const auth::UserSecret* secret) {
  auto server_final = exchange.handle_client_final(message);
  if (!server_final || !secret || !secret->scram) {
    return refuse(CloseReason::auth_failed, "28P01", auth_failed_message(user()));
  }
  if (exchange.client_key()) credentials().scram_keys.emplace(*exchange.client_key(), secret->scram->server_key);
  // Sent with AuthenticationOk and the welcome (see authenticate()).
  login_->scratch.clear();
  protocol::append_authentication_sasl_final(login_->scratch, *server_final);
  return true;
}

net::Task<bool> Session::auth_scram(const auth::UserSecret* secret) {
  auth::ScramServerExchange exchange = start_scram(secret);
  if (co_await client_.write_all(login_->scratch)) {
    reason_ = CloseReason::client_error;
    co_return false;
  }
  std::string buffer;
  auto first = auth_response(co_await read_auth_message(buffer));
  if (!first || !scram_first(exchange, *first)) co_return false;
  if (co_await client_.write_all(login_->scratch)) {
    reason_ = CloseReason::client_error;
    co_return false;
  }
  auto final_msg = auth_response(co_await read_auth_message(buffer));
  co_return final_msg && scram_final(exchange, *final_msg, secret);
}

std::optional<std::string> Session::verified_certificate_cn() {
  if (!client_.is_tls()) return std::nullopt;
  X509* cert = SSL_get0_peer_certificate(client_.ssl());
  if (!cert || SSL_get_verify_result(client_.ssl()) != X509_V_OK) return std::nullopt;
  char cn[256] = {};
  int len = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
  if (len < 0) return std::string();
  // A CN with an embedded NUL could pass for another name; treat it as no name.
  if (static_cast<std::size_t>(len) != std::strlen(cn)) return std::string();
  return std::string(cn, static_cast<std::size_t>(len));
}

bool Session::check_client_certificate(bool cn_must_match) {
  auto cn = verified_certificate_cn();
  if (!cn) {
    return refuse(CloseReason::auth_failed, "28000", "connection requires a valid client certificate");
  }
  if (cn_must_match && *cn != user()) {
    return refuse(CloseReason::auth_failed, "28000", "certificate authentication failed for user \"" + user() + "\"");
  }
  return true;
}

// The client's address as the HBA rules see it.
static hba::ClientInfo hba_client(net::Transport& t, const std::string& database, const std::string& user) {
  hba::ClientInfo c;
  c.is_tls = t.is_tls();
  c.database = database;
  c.user = user;
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getpeername(t.native_handle(), reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
    if (ss.ss_family == AF_INET) {
      std::array<std::uint8_t, 4> b{};
      std::memcpy(b.data(), &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr, 4);
      c.address = hba::IpAddress::v4(b);
    } else if (ss.ss_family == AF_INET6) {
      std::array<std::uint8_t, 16> b{};
      std::memcpy(b.data(), &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr, 16);
      c.address = hba::IpAddress::v6(b);
    } else {
      c.is_unix = true;
    }
  }
  return c;
}

net::Task<bool> Session::auth_hba(const auth::UserSecret* secret) {
  std::string where = "host \"" + info_->addr + "\", user \"" + user() + "\", database \"" +
                      database() + "\", " + (client_.is_tls() ? "SSL encryption" : "no encryption");
  const hba::Rule* rule = settings_->hba ? hba::match(*settings_->hba, hba_client(client_, database(), user())) : nullptr;
  if (!rule) {
    co_return refuse(CloseReason::auth_failed, "28000", "no pg_hba.conf entry for " + where);
  }
  if (rule->client_cert != hba::ClientCert::none &&
      !check_client_certificate(rule->client_cert == hba::ClientCert::verify_full))
    co_return false;
  switch (rule->method) {
    case hba::Method::trust:
      // As auth.method = "trust": with a users_file, only the users it lists.
      if (settings_->users && !secret) {
        co_return refuse(CloseReason::auth_failed, "28P01", auth_failed_message(user()));
      }
      co_return true;
    case hba::Method::reject:
      co_return refuse(CloseReason::auth_failed, "28000", "pg_hba.conf rejects connection for " + where);
    case hba::Method::md5:
      if (secret && !secret->md5 && secret->scram) co_return co_await auth_scram(secret);
      co_return co_await auth_md5(secret);
    case hba::Method::scram_sha_256: co_return co_await auth_scram(secret);
    case hba::Method::cert: co_return check_client_certificate(true);
  }
  co_return false;
}

net::Task<bool> Session::authenticate() {
  const auto& cfg = *settings_->config;
  login_->scratch.clear();
  // tls.mode verify-ca/verify-full: a verified client certificate is required whatever the method; verify-full
  // also binds it to the user name.
  if (cfg.tls.mode == config::TlsMode::verify_ca || cfg.tls.mode == config::TlsMode::verify_full) {
    if (!check_client_certificate(cfg.tls.mode == config::TlsMode::verify_full)) co_return false;
  }
  const auth::UserSecret* secret = settings_->users ? settings_->users->find(user()) : nullptr;
  if (secret) {
    if (secret->is_plain()) credentials().password = secret->text;
    credentials().md5_secret = secret->md5;
  }
  bool ok = false;
  switch (cfg.auth.method) {
    case config::AuthMethod::trust:
      // With a users_file, trust still only admits the users it lists.
      ok = !settings_->users || secret != nullptr;
      if (!ok) refuse(CloseReason::auth_failed, "28P01", auth_failed_message(user()));
      break;
    case config::AuthMethod::md5:
      // As PostgreSQL: md5 accepts a user whose only secret is a SCRAM verifier through SCRAM.
      if (secret && !secret->md5 && secret->scram) {
        ok = co_await auth_scram(secret);
      } else {
        ok = co_await auth_md5(secret);
      }
      break;
    case config::AuthMethod::scram_sha_256:
      ok = co_await auth_scram(secret);
      break;
    case config::AuthMethod::cert:
      ok = check_client_certificate(true);
      break;
    case config::AuthMethod::hba:
      ok = co_await auth_hba(secret);
      break;
  }
  if (!ok) co_return false;
  // Not sent yet: AuthenticationOk (after SCRAM's final message, which auth_scram left here) goes out with the
  // welcome, in one write (admit(), serve_console()). A refusal before that replaces it (refuse()).
  protocol::append_authentication_ok(login_->scratch);
  co_return true;
}

}  // namespace pgweir::client
