// TLS test support: a throwaway PKI made with the openssl CLI, a raw TLS client (direct TLS, ALPN, SNI),
// hand-built startup packets, and a scripted fake PostgreSQL server for server-side negotiation tests.
#pragma once

#include <atomic>
#include <chrono>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "support/process.hpp"

typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;

namespace pgweir::test {

using namespace std::chrono_literals;

struct CertPair {
  std::string cert;  // PEM certificate
  std::string key;   // PEM private key, mode 0600
};

// A CA and certificates signed by it, plus an unrelated second CA, in a temp dir readable by the postgres user.
// Created once per test executable (the openssl CLI is slow enough to matter).
class TestPki {
 public:
  TestPki();  // throws with openssl's output if any step fails
  TestPki(const TestPki&) = delete;
  TestPki& operator=(const TestPki&) = delete;

  const std::string& dir() const { return dir_.path(); }
  std::string ca_cert;            // the CA everything below is signed by
  std::string wrong_ca_cert;      // an unrelated CA
  CertPair pgweir_server;         // CN=localhost, SAN DNS:localhost, IP:127.0.0.1
  CertPair postgres_server;       // the same names; key owned by the postgres user, mode 0600

  // A client certificate with CN = `cn`, signed by the CA (or by the unrelated CA); made on first use.
  CertPair client(const std::string& cn, bool by_wrong_ca = false);

 private:
  CertPair issue(const std::string& name, const std::string& cn, const std::string& extensions, bool by_wrong_ca);
  void openssl(const std::vector<std::string>& args);

  TempDir dir_{"pgweir-pki"};
  std::string ca_key_, wrong_ca_key_;
};

TestPki& shared_pki();

// Turns TLS on in the shared PostgreSQL cluster (ALTER SYSTEM ssl, ssl_cert_file, ssl_key_file; reload) and
// waits until a direct sslmode=verify-full connection succeeds. Idempotent.
void enable_postgres_tls();

// Wire bytes a client sends before authentication.
std::string ssl_request();
std::string startup_message(const std::string& user, const std::string& database);

// Backend message types in `bytes`, in order, as far as they parse as complete messages (type + int32 length).
std::string message_types(std::string_view bytes);

struct TlsClientOptions {
  std::string alpn = "postgresql";  // "" offers no ALPN extension
  std::string sni = "localhost";    // "" sends no server name
  std::string ca_file;              // if set, the server certificate must verify against it
};

// A blocking TLS client over TCP to 127.0.0.1:port that starts TLS at once (PostgreSQL 17 direct TLS).
// Never throws on a failed handshake: check handshake_ok().
class TlsClient {
 public:
  TlsClient(int port, const TlsClientOptions& options);
  ~TlsClient();
  TlsClient(const TlsClient&) = delete;
  TlsClient& operator=(const TlsClient&) = delete;

  bool handshake_ok() const { return ok_; }
  const std::string& error() const { return error_; }  // why the handshake failed (OpenSSL's text)
  std::string alpn_selected() const;

  bool send(std::string_view bytes);
  // Decrypted bytes until the peer closes the connection or `timeout` passes; `closed` says which.
  std::string read_until_closed(std::chrono::milliseconds timeout, bool* closed = nullptr);
  // Decrypted bytes until at least one complete backend message has arrived, the peer closes, or `timeout`.
  std::string read_message(std::chrono::milliseconds timeout);

 private:
  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  bool ok_ = false;
  std::string error_;
};

// A fake PostgreSQL server on 127.0.0.1 (a thread and a listening socket): to each connection whose first
// packet is an SSLRequest it writes `reply` in one write, then reads until the peer hangs up.
class FakeServer {
 public:
  explicit FakeServer(std::string reply);
  ~FakeServer();
  FakeServer(const FakeServer&) = delete;
  FakeServer& operator=(const FakeServer&) = delete;

  int port() const { return port_; }
  int ssl_requests() const { return ssl_requests_; }  // connections that opened with an SSLRequest
  int connections() const { return connections_; }

 private:
  void serve();
  void handle(int fd);

  std::string reply_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> ssl_requests_{0};
  std::atomic<int> connections_{0};
  std::thread thread_;
};

}  // namespace pgweir::test
