// TLS test support: the test PKI (openssl CLI), TLS on the shared PostgreSQL, a raw direct-TLS client built on
// OpenSSL, hand-made startup packets and a scripted fake server for the server-side SSLRequest exchange.
#include "tls_support.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <poll.h>
#include <random>
#include <sstream>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support/postgres_cluster.hpp"
#include "support/pq.hpp"

namespace pgweir::test {

namespace {

constexpr std::uint32_t k_protocol_3_0 = 196608;
constexpr std::uint32_t k_ssl_request_code = 80877103;
// Bounds every blocking call, so a daemon that never answers fails a test instead of hanging it.
constexpr int k_socket_timeout_seconds = 30;

void put_u32(std::string& out, std::uint32_t v) {
  out += static_cast<char>((v >> 24) & 0xff);
  out += static_cast<char>((v >> 16) & 0xff);
  out += static_cast<char>((v >> 8) & 0xff);
  out += static_cast<char>(v & 0xff);
}

std::uint32_t get_u32(std::string_view in, std::size_t at) {
  auto b = [&](std::size_t i) { return static_cast<std::uint32_t>(static_cast<unsigned char>(in[at + i])); };
  return (b(0) << 24) | (b(1) << 16) | (b(2) << 8) | b(3);
}

std::string openssl_errors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

void set_timeouts(int fd) {
  timeval tv{k_socket_timeout_seconds, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

int connect_loopback(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket: " + std::string(std::strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int err = errno;
    close(fd);
    throw std::runtime_error("cannot connect to 127.0.0.1:" + std::to_string(port) + ": " + std::strerror(err));
  }
  set_timeouts(fd);
  return fd;
}

// Waits for `fd` to become readable (or writable); false at the deadline.
bool wait_fd(int fd, short events, std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, events, 0};
    int r = poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    return r > 0;
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------------- PKI

TestPki::TestPki() {
  // The postgres user reads its certificate and key from here.
  ::chmod(dir().c_str(), 0755);
  auto make_ca = [&](const std::string& name, const std::string& cn) {
    auto cnf = dir_.write(name + ".cnf",
                          "[req]\ndistinguished_name = dn\n[dn]\n"
                          "[v3_ca]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\n"
                          "subjectKeyIdentifier = hash\n");
    openssl({"req", "-x509", "-new", "-config", cnf, "-extensions", "v3_ca", "-nodes", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-keyout", dir_.file(name + ".key"), "-out", dir_.file(name + ".crt"),
             "-days", "3650", "-subj", "/CN=" + cn});
    ::chmod(dir_.file(name + ".key").c_str(), 0600);
    ::chmod(dir_.file(name + ".crt").c_str(), 0644);
  };
  make_ca("ca", "pgweir test CA");
  make_ca("wrong_ca", "unrelated test CA");
  ca_cert = dir_.file("ca.crt");
  ca_key_ = dir_.file("ca.key");
  wrong_ca_cert = dir_.file("wrong_ca.crt");
  wrong_ca_key_ = dir_.file("wrong_ca.key");

  const std::string server_ext =
      "basicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature,keyEncipherment\n"
      "extendedKeyUsage = serverAuth\nsubjectAltName = DNS:localhost,IP:127.0.0.1\n";
  pgweir_server = issue("pgweir_server", "localhost", server_ext, false);
  postgres_server = issue("postgres_server", "localhost", server_ext, false);
  // PostgreSQL refuses a key file that is not 0600 and owned by the server's user (or 0640 and root's).
  give_to_postgres_user(postgres_server.key);
  give_to_postgres_user(postgres_server.cert);
}

CertPair TestPki::client(const std::string& cn, bool by_wrong_ca) {
  auto name = std::string(by_wrong_ca ? "wrongca_client_" : "client_") + cn;
  if (::access(dir_.file(name + ".crt").c_str(), R_OK) == 0)
    return {dir_.file(name + ".crt"), dir_.file(name + ".key")};
  return issue(name, cn,
               "basicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature,keyEncipherment\n"
               "extendedKeyUsage = clientAuth\n",
               by_wrong_ca);
}

CertPair TestPki::issue(const std::string& name, const std::string& cn, const std::string& extensions,
                        bool by_wrong_ca) {
  static std::mt19937_64 random{std::random_device{}()};
  auto cnf = dir_.write(name + ".req.cnf", "[req]\ndistinguished_name = dn\n[dn]\n");
  auto ext = dir_.write(name + ".ext", extensions);
  CertPair out{dir_.file(name + ".crt"), dir_.file(name + ".key")};
  auto csr = dir_.file(name + ".csr");
  openssl({"req", "-new", "-config", cnf, "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
           "-keyout", out.key, "-out", csr, "-subj", "/CN=" + cn});
  char serial[32];
  std::snprintf(serial, sizeof serial, "0x%016llx", static_cast<unsigned long long>(random() >> 1));
  openssl({"x509", "-req", "-in", csr, "-CA", by_wrong_ca ? wrong_ca_cert : ca_cert, "-CAkey",
           by_wrong_ca ? wrong_ca_key_ : ca_key_, "-set_serial", serial, "-days", "3650", "-out", out.cert,
           "-extfile", ext});
  ::chmod(out.key.c_str(), 0600);
  ::chmod(out.cert.c_str(), 0644);
  return out;
}

void TestPki::openssl(const std::vector<std::string>& args) {
  std::vector<std::string> argv{"openssl"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = run(argv, {}, 60s);
  if (r.exit_code != 0)
    throw std::runtime_error("test PKI: `" + describe(argv) + "` exited " + std::to_string(r.exit_code) + ":\n" +
                             r.output);
}

TestPki& shared_pki() {
  static TestPki pki;
  return pki;
}

void enable_postgres_tls() {
  static bool done = false;
  if (done) return;
  auto& pg = shared_cluster();
  auto& pki = shared_pki();
  // The harness's postgresql.auto.conf includes a file whose generation number PostgresCluster::hba() bumps to
  // know a reload took effect. ALTER SYSTEM rewrites postgresql.auto.conf with that include expanded in place,
  // which would freeze the generation; put the include back afterwards.
  auto include = pg.exec("SELECT sourcefile FROM pg_file_settings WHERE name = 'pgweir_test.generation'");
  auto auto_conf = pg.exec("SHOW data_directory") + "/postgresql.auto.conf";
  // ALTER SYSTEM cannot run in a transaction block, so one statement per call.
  pg.exec("ALTER SYSTEM SET ssl_cert_file = '" + pki.postgres_server.cert + "'");
  pg.exec("ALTER SYSTEM SET ssl_key_file = '" + pki.postgres_server.key + "'");
  pg.exec("ALTER SYSTEM SET ssl = on");
  if (!include.empty() && include != auto_conf) {
    std::string kept;
    std::istringstream lines(read_file(auto_conf));
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind("pgweir_test.generation", 0) != 0) kept += line + "\n";
    }
    std::ofstream out(auto_conf, std::ios::trunc);  // keeps the postgres user's ownership and mode
    out << kept << "include_if_exists = '" << include << "'\n";
    if (!out) throw std::runtime_error("cannot rewrite " + auto_conf);
  }
  pg.exec("SELECT pg_reload_conf()");
  auto conninfo = "host=localhost port=" + std::to_string(pg.port()) +
                  " dbname=postgres user=postgres sslmode=verify-full sslrootcert=" + conninfo_quote(pki.ca_cert);
  auto deadline = std::chrono::steady_clock::now() + 15s;
  std::string last;
  while (std::chrono::steady_clock::now() < deadline) {
    PgConn c(conninfo, 5s);
    if (c.ok()) {
      done = true;
      return;
    }
    last = c.error_text();
    std::this_thread::sleep_for(50ms);
  }
  throw std::runtime_error("PostgreSQL did not accept a verify-full TLS connection after ALTER SYSTEM SET ssl = on: " +
                           last + "\nlog:\n" + pg.log_text());
}

// ---------------------------------------------------------------------------------------------------- packets

std::string ssl_request() {
  std::string out;
  put_u32(out, 8);
  put_u32(out, k_ssl_request_code);
  return out;
}

std::string startup_message(const std::string& user, const std::string& database) {
  std::string body;
  put_u32(body, k_protocol_3_0);
  for (const auto& [k, v] : {std::pair{"user", user}, std::pair{"database", database}}) {
    body += k;
    body += '\0';
    body += v;
    body += '\0';
  }
  body += '\0';
  std::string out;
  put_u32(out, static_cast<std::uint32_t>(body.size() + 4));
  return out + body;
}

std::string message_types(std::string_view bytes) {
  std::string types;
  std::size_t at = 0;
  while (bytes.size() - at >= 5) {
    auto len = get_u32(bytes, at + 1);
    if (len < 4 || len > (1u << 24) || bytes.size() - at - 1 < len) break;
    types += bytes[at];
    at += 1 + len;
  }
  return types;
}

// ---------------------------------------------------------------------------------------------------- TlsClient

TlsClient::TlsClient(int port, const TlsClientOptions& options) : fd_(connect_loopback(port)) {
  // OpenSSL writes with write(2): a peer that has already closed must give EPIPE, not kill the test process.
  std::signal(SIGPIPE, SIG_IGN);
  ctx_ = SSL_CTX_new(TLS_client_method());
  if (!ctx_) throw std::runtime_error("SSL_CTX_new: " + openssl_errors());
  SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
  if (!options.ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx_, options.ca_file.c_str(), nullptr) != 1)
      throw std::runtime_error("cannot load " + options.ca_file + ": " + openssl_errors());
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
  }
  if (!options.alpn.empty()) {
    std::string wire(1, static_cast<char>(options.alpn.size()));
    wire += options.alpn;
    if (SSL_CTX_set_alpn_protos(ctx_, reinterpret_cast<const unsigned char*>(wire.data()),
                                static_cast<unsigned>(wire.size())) != 0)
      throw std::runtime_error("SSL_CTX_set_alpn_protos: " + openssl_errors());
  }
  ssl_ = SSL_new(ctx_);
  if (!ssl_) throw std::runtime_error("SSL_new: " + openssl_errors());
  if (!options.sni.empty()) SSL_set_tlsext_host_name(ssl_, options.sni.c_str());
  SSL_set_fd(ssl_, fd_);
  ERR_clear_error();
  int r = SSL_connect(ssl_);
  if (r == 1) {
    ok_ = true;
    // Reads after the handshake poll with their own timeouts.
    fcntl(fd_, F_SETFL, fcntl(fd_, F_GETFL) | O_NONBLOCK);
    return;
  }
  int code = SSL_get_error(ssl_, r);
  error_ = "SSL_connect failed (SSL_get_error " + std::to_string(code) + ")";
  auto queue = openssl_errors();
  if (!queue.empty()) error_ += ": " + queue;
  long verify = SSL_get_verify_result(ssl_);
  if (verify != X509_V_OK) error_ += "; certificate verify: " + std::string(X509_verify_cert_error_string(verify));
  if (code == SSL_ERROR_SYSCALL && errno != 0) error_ += "; " + std::string(std::strerror(errno));
}

TlsClient::~TlsClient() {
  if (ssl_) SSL_free(ssl_);
  if (ctx_) SSL_CTX_free(ctx_);
  if (fd_ >= 0) close(fd_);
}

std::string TlsClient::alpn_selected() const {
  const unsigned char* p = nullptr;
  unsigned len = 0;
  if (ssl_) SSL_get0_alpn_selected(ssl_, &p, &len);
  return p ? std::string(reinterpret_cast<const char*>(p), len) : std::string();
}

bool TlsClient::send(std::string_view bytes) {
  if (!ok_) return false;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(k_socket_timeout_seconds);
  while (!bytes.empty()) {
    ERR_clear_error();
    int n = SSL_write(ssl_, bytes.data(), static_cast<int>(bytes.size()));
    if (n > 0) {
      bytes.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    int code = SSL_get_error(ssl_, n);
    short events = code == SSL_ERROR_WANT_READ ? POLLIN : code == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
    if (events == 0 || !wait_fd(fd_, events, deadline)) return false;
  }
  return true;
}

std::string TlsClient::read_until_closed(std::chrono::milliseconds timeout, bool* closed) {
  std::string out;
  if (closed) *closed = false;
  if (!ok_) {
    if (closed) *closed = true;
    return out;
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[8192];
  for (;;) {
    ERR_clear_error();
    int n = SSL_read(ssl_, buf, sizeof buf);
    if (n > 0) {
      out.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    int code = SSL_get_error(ssl_, n);
    if (code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE) {
      if (!wait_fd(fd_, code == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline)) return out;
      continue;
    }
    // close_notify, EOF, reset or a fatal alert: the connection is over either way.
    if (closed) *closed = true;
    return out;
  }
}

std::string TlsClient::read_message(std::chrono::milliseconds timeout) {
  std::string out;
  if (!ok_) return out;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[8192];
  while (message_types(out).empty()) {
    ERR_clear_error();
    int n = SSL_read(ssl_, buf, sizeof buf);
    if (n > 0) {
      out.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    int code = SSL_get_error(ssl_, n);
    if (code != SSL_ERROR_WANT_READ && code != SSL_ERROR_WANT_WRITE) break;
    if (!wait_fd(fd_, code == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline)) break;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------- FakeServer

FakeServer::FakeServer(std::string reply) : reply_(std::move(reply)) {
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) throw std::runtime_error("socket: " + std::string(std::strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;  // bound here and now, so no other process can take it in between
  socklen_t len = sizeof addr;
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(listen_fd_, 16) != 0 ||
      getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    int err = errno;
    close(listen_fd_);
    throw std::runtime_error("fake server: cannot listen on 127.0.0.1: " + std::string(std::strerror(err)));
  }
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { serve(); });
}

FakeServer::~FakeServer() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (listen_fd_ >= 0) close(listen_fd_);
}

void FakeServer::serve() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    ++connections_;
    handle(fd);
    close(fd);
  }
}

void FakeServer::handle(int fd) {
  // Each wait is bounded and checks stop_, so the destructor never waits long for a stuck peer.
  auto deadline = std::chrono::steady_clock::now() + 10s;
  std::string in;
  char buf[4096];
  while (in.size() < 8 && !stop_ && std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return;
    in.append(buf, static_cast<std::size_t>(n));
  }
  if (in.substr(0, 8) != ssl_request()) return;
  ++ssl_requests_;
  // One write: the SSL response and whatever follows it arrive together, as a man-in-the-middle would send them.
  if (::send(fd, reply_.data(), reply_.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(reply_.size())) return;
  while (!stop_ && std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    if (recv(fd, buf, sizeof buf, 0) <= 0) return;
  }
}

}  // namespace pgweir::test
