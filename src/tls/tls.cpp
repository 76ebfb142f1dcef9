// Building SSL_CTX objects for both legs, and the TLS facts that depend on certificates.
#include "pgweir/tls/tls.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <cstdlib>
#include <cstring>
#include <filesystem>

namespace pgweir::tls {
namespace {

constexpr unsigned char k_alpn_postgresql[] = {10, 'p', 'o', 's', 't', 'g', 'r', 'e', 's', 'q', 'l'};

int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned int inlen,
                void*) {
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, k_alpn_postgresql, sizeof k_alpn_postgresql, in, inlen) ==
      OPENSSL_NPN_NEGOTIATED) {
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
  }
  // A client that offers ALPN but not "postgresql" is refused; one that offers none is not asked.
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

Error ssl_error(std::string what) { return make_error(what + ": " + last_error()); }

}  // namespace

std::string last_error() {
  std::string text;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!text.empty()) text += "; ";
    text += buf;
  }
  return text.empty() ? "unknown TLS error" : text;
}

std::string end_point_hash(X509* cert) {
  int md_nid = NID_undef;
  int pk_nid = NID_undef;
  if (!OBJ_find_sigid_algs(X509_get_signature_nid(cert), &md_nid, &pk_nid)) return {};
  const EVP_MD* md = nullptr;
  if (md_nid == NID_md5 || md_nid == NID_sha1) {
    md = EVP_sha256();
  } else {
    md = EVP_get_digestbynid(md_nid);
  }
  if (!md) return {};
  unsigned char hash[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!X509_digest(cert, md, hash, &len)) return {};
  return std::string(reinterpret_cast<char*>(hash), len);
}

Expected<std::shared_ptr<const Context>> make_server_context(const config::TlsSection& settings) {
  SSL_CTX* raw = SSL_CTX_new(TLS_server_method());
  if (!raw) return ssl_error("cannot create TLS context");
  auto ctx = std::make_shared<Context>(raw);
  SSL_CTX_set_mode(raw, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // One recv for all the records the socket holds, instead of one for each record's 5-byte header and one for its
  // body. What is read ahead stays in OpenSSL's buffer: net::Transport asks SSL_has_pending, not SSL_pending,
  // before it waits on the socket.
  SSL_CTX_set_read_ahead(raw, 1);
  SSL_CTX_set_options(raw, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_min_proto_version(raw,
                                settings.min_protocol == config::TlsVersion::tls1_3 ? TLS1_3_VERSION : TLS1_2_VERSION);
  if (!settings.ciphers.empty() && SSL_CTX_set_cipher_list(raw, settings.ciphers.c_str()) != 1)
    return ssl_error("tls.ciphers \"" + settings.ciphers + "\" selects no cipher");
  if (SSL_CTX_use_certificate_chain_file(raw, settings.cert_file.c_str()) != 1)
    return ssl_error("cannot load tls.cert_file " + settings.cert_file);
  if (SSL_CTX_use_PrivateKey_file(raw, settings.key_file.c_str(), SSL_FILETYPE_PEM) != 1)
    return ssl_error("cannot load tls.key_file " + settings.key_file);
  if (SSL_CTX_check_private_key(raw) != 1) return ssl_error("tls.key_file does not match tls.cert_file");
  if (!settings.ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(raw, settings.ca_file.c_str(), nullptr) != 1)
      return ssl_error("cannot load tls.ca_file " + settings.ca_file);
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(settings.ca_file.c_str());
    if (names) SSL_CTX_set_client_CA_list(raw, names);
    // Ask for a client certificate; whether one is required is decided per mode and auth method after the
    // handshake.
    SSL_CTX_set_verify(raw, SSL_VERIFY_PEER, nullptr);
  }
  SSL_CTX_set_alpn_select_cb(raw, select_alpn, nullptr);
  SSL_CTX_set_session_cache_mode(raw, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(raw, 0);
  if (X509* cert = SSL_CTX_get0_certificate(raw)) ctx->set_end_point_hash(end_point_hash(cert));
  return std::shared_ptr<const Context>(ctx);
}

Expected<ServerSslMode> parse_ssl_mode(std::string_view text) {
  if (text.empty() || text == "prefer") return ServerSslMode::prefer;
  if (text == "disable") return ServerSslMode::disable;
  if (text == "allow") return ServerSslMode::allow;
  if (text == "require") return ServerSslMode::require;
  if (text == "verify-ca") return ServerSslMode::verify_ca;
  if (text == "verify-full") return ServerSslMode::verify_full;
  return make_error("invalid sslmode \"" + std::string(text) + "\"");
}

Expected<std::shared_ptr<const Context>> make_client_context(const pq::Dsn& dsn) {
  auto mode = parse_ssl_mode(dsn.sslmode);
  if (!mode) return mode.error();
  if (*mode == ServerSslMode::disable) return std::shared_ptr<const Context>();
  SSL_CTX* raw = SSL_CTX_new(TLS_client_method());
  if (!raw) return ssl_error("cannot create TLS context");
  auto ctx = std::make_shared<Context>(raw);
  SSL_CTX_set_mode(raw, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_read_ahead(raw, 1);  // as for clients (make_server_context)
  SSL_CTX_set_options(raw, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_min_proto_version(raw, TLS1_2_VERSION);

  // As libpq: the root certificate file is sslrootcert, else ~/.postgresql/root.crt; "system" means the default
  // trust store. verify-ca/verify-full need one; with "require", an explicitly given one turns on verify-ca.
  std::string root = dsn.sslrootcert;
  bool explicit_root = !root.empty();
  if (root.empty()) {
    if (const char* home = std::getenv("HOME")) root = std::string(home) + "/.postgresql/root.crt";
  }
  bool verify = *mode == ServerSslMode::verify_ca || *mode == ServerSslMode::verify_full;
  bool have_root = false;
  if (root == "system") {
    have_root = SSL_CTX_set_default_verify_paths(raw) == 1;
  } else if (std::error_code ec; !root.empty() && std::filesystem::exists(root, ec)) {
    if (SSL_CTX_load_verify_locations(raw, root.c_str(), nullptr) != 1)
      return ssl_error("cannot load sslrootcert " + root);
    have_root = true;
  }
  if (verify && !have_root)
    return make_error("root certificate file \"" + root + "\" does not exist; either provide the file, use the " +
                      "system's trusted roots with sslrootcert=system, or change sslmode to disable server " +
                      "certificate verification");
  if (verify || (*mode == ServerSslMode::require && explicit_root && have_root)) {
    SSL_CTX_set_verify(raw, SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(raw, SSL_VERIFY_NONE, nullptr);
  }
  if (!dsn.sslcert.empty() || !dsn.sslkey.empty()) {
    if (dsn.sslcert.empty() || dsn.sslkey.empty()) return make_error("sslcert and sslkey must be given together");
    if (SSL_CTX_use_certificate_chain_file(raw, dsn.sslcert.c_str()) != 1)
      return ssl_error("cannot load sslcert " + dsn.sslcert);
    if (SSL_CTX_use_PrivateKey_file(raw, dsn.sslkey.c_str(), SSL_FILETYPE_PEM) != 1)
      return ssl_error("cannot load sslkey " + dsn.sslkey);
  }
  return std::shared_ptr<const Context>(ctx);
}

SSL* new_client_ssl(const Context& ctx, ServerSslMode mode, const std::string& host) {
  SSL* ssl = SSL_new(ctx.get());
  if (!ssl) return nullptr;
  in6_addr addr6{};
  in_addr addr4{};
  bool is_ip = ::inet_pton(AF_INET, host.c_str(), &addr4) == 1 || ::inet_pton(AF_INET6, host.c_str(), &addr6) == 1;
  if (!is_ip && !host.empty() && host[0] != '/') SSL_set_tlsext_host_name(ssl, host.c_str());
  if (mode == ServerSslMode::verify_full) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (is_ip) {
      X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
    } else {
      X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0);
    }
  }
  return ssl;
}

}  // namespace pgweir::tls
