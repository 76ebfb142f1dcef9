// TLS contexts: the only place that builds OpenSSL objects. Client-facing (pgweir is the TLS server) and
// server-facing (pgweir is a TLS client of PostgreSQL, with libpq's sslmode semantics).
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>

#include "pgweir/config/config.hpp"
#include "pgweir/core/result.hpp"
#include "pgweir/pq/dsn.hpp"

namespace pgweir::tls {

class Context {
 public:
  explicit Context(SSL_CTX* ctx) : ctx_(ctx) {}
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;
  ~Context() { SSL_CTX_free(ctx_); }
  SSL_CTX* get() const { return ctx_; }

  // tls-server-end-point channel binding data of this context's certificate (client-facing contexts only).
  const std::string& end_point_hash() const { return end_point_hash_; }
  void set_end_point_hash(std::string h) { end_point_hash_ = std::move(h); }

 private:
  SSL_CTX* ctx_;
  std::string end_point_hash_;
};

// Client-facing context from [tls]: certificate, key, CA for client certificates (verify-ca/verify-full/cert
// auth), min_protocol, ciphers, ALPN "postgresql" for direct TLS. Release buffers of idle connections.
Expected<std::shared_ptr<const Context>> make_server_context(const config::TlsSection& settings);
inline bool tls_offered(config::TlsMode mode) { return mode != config::TlsMode::disable; }
inline bool tls_required(config::TlsMode mode) {
  return mode == config::TlsMode::require || mode == config::TlsMode::verify_ca ||
         mode == config::TlsMode::verify_full;
}

// How pgweir reaches one PostgreSQL server, from its DSN.
enum class ServerSslMode { disable, allow, prefer, require, verify_ca, verify_full };
Expected<ServerSslMode> parse_ssl_mode(std::string_view text);

// Server-facing context for a DSN; null when sslmode = disable.
Expected<std::shared_ptr<const Context>> make_client_context(const pq::Dsn& dsn);

// A new SSL for connecting to `host` (SNI; and the name checked under verify-full).
SSL* new_client_ssl(const Context& ctx, ServerSslMode mode, const std::string& host);

// The hash of a certificate as tls-server-end-point defines it (SHA-256 for MD5/SHA-1 signatures).
std::string end_point_hash(X509* cert);

// The last OpenSSL error as text (queue cleared).
std::string last_error();

}  // namespace pgweir::tls
