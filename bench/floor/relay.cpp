// A bare relay for measuring the floor under a proxy (bench/run.sh, workload h). Not part of pgweir.
//
// A session pooler reduced to what the kernel has to do. Each client is paired with one PostgreSQL backend for as
// long as it stays, and bytes are copied both ways, unparsed. A backend outlives its client and waits for the next
// one, so the backends stay warm from run to run as a pooler's do. The login is the only protocol spoken: the relay
// answers a client's startup packet itself (as a trust login, with the parameters of the backend it gets), and a
// client's Terminate is not forwarded. What is left is the least a proxy on this machine can spend per transaction
// with a given event mechanism:
//
//   epoll   level-triggered epoll_wait, one recv per readable socket, one send to its peer (what an epoll proxy
//           does per message);
//   uring   io_uring, one ring on the one thread, created with SINGLE_ISSUER | DEFER_TASKRUN (so completions are
//           run only when the thread asks for them). A completed recv queues a send to the peer linked to the
//           next recv on the same socket (the send's success posts no completion); every SQE prepared in one
//           wake-up is submitted by the io_uring_enter that also waits for the next completions.
//   hybrid  uring's ring and operations, but the thread sleeps in epoll_wait, on an eventfd registered with the
//           ring: what an io_uring data path inside an epoll event loop (Asio's) would cost. Per wake-up, one
//           epoll_wait, then io_uring_enter calls that run the completions and submit what they queued, until one
//           finds nothing more.
//
// Usage: relay epoll|uring|hybrid LISTEN_PORT CONNINFO
//   Listens on 127.0.0.1:LISTEN_PORT, logs in its backends with libpq's CONNINFO, runs until killed. Every client
//   is let in: the relay is for a benchmark on the loopback, not for use.
#include <arpa/inet.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr std::size_t k_buffer = 64 * 1024;

[[noreturn]] void fail(const char* what, int err) {
  std::fprintf(stderr, "relay: %s: %s\n", what, std::strerror(err));
  std::exit(1);
}

int listen_on(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) fail("bind", errno);
  if (::listen(fd, 4096) != 0) fail("listen", errno);
  return fd;
}

void no_delay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

bool send_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

bool recv_all(int fd, char* p, std::size_t n) {
  while (n > 0) {
    ssize_t r = ::recv(fd, p, n, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

std::uint32_t be32(const char* p) {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return ntohl(v);
}

void put32(std::string& out, std::uint32_t v) {
  v = htonl(v);
  out.append(reinterpret_cast<const char*>(&v), 4);
}

// The client's Terminate, sent by itself as libpq does: the backend is kept instead.
bool is_terminate(const char* p, std::size_t n) { return n == 5 && std::memcmp(p, "X\0\0\0\4", 5) == 0; }

struct Side {
  int fd = -1;
  int peer = -1;            // a backend's while it waits for a client: -1
  bool open = false;        // false once shut down (uring: closed when its recv completes)
  bool armed = false;       // uring: a recv is in flight (a backend's stays armed while it waits); epoll: watched
  PGconn* conn = nullptr;   // a backend's libpq connection, which logged it in and owns its fd
  std::unique_ptr<char[]> buffer;

  void clear() { *this = Side{-1, -1, false, false, nullptr, std::move(buffer)}; }  // keeps the buffer for reuse
};

class Relay {
 public:
  explicit Relay(std::string conninfo) : conninfo_(std::move(conninfo)) {}

  Side& operator[](int fd) {
    if (static_cast<std::size_t>(fd) >= sides_.size()) sides_.resize(static_cast<std::size_t>(fd) + 1);
    return sides_[static_cast<std::size_t>(fd)];
  }

  // A client just accepted, logged in here (blocking: logins are not what is measured) and paired with a backend,
  // one waiting or a new one. Returns the backend's fd, or -1 when the client was turned away (and closed).
  int admit(int client) {
    if (!read_startup(client)) {
      ::close(client);
      return -1;
    }
    int backend = take_backend();
    if (backend < 0) {
      ::close(client);
      return -1;
    }
    std::string reply;
    reply += 'R';
    put32(reply, 8);
    put32(reply, 0);  // AuthenticationOk
    for (const char* name : {"server_version", "server_encoding", "client_encoding", "application_name",
                             "default_transaction_read_only", "in_hot_standby", "is_superuser",
                             "session_authorization", "DateStyle", "IntervalStyle", "TimeZone", "integer_datetimes",
                             "standard_conforming_strings"}) {
      const char* value = PQparameterStatus((*this)[backend].conn, name);
      if (value == nullptr) continue;
      reply += 'S';
      put32(reply, static_cast<std::uint32_t>(4 + std::strlen(name) + 1 + std::strlen(value) + 1));
      reply.append(name).append(1, '\0').append(value).append(1, '\0');
    }
    reply += 'K';
    put32(reply, 12);
    put32(reply, static_cast<std::uint32_t>(PQbackendPID((*this)[backend].conn)));
    put32(reply, 0);
    reply += 'Z';
    put32(reply, 5);
    reply += 'I';
    if (!send_all(client, reply.data(), reply.size())) {
      ::close(client);
      idle_.push_back(backend);
      return -1;
    }
    no_delay(client);
    open_side(client, backend, nullptr);
    (*this)[backend].peer = client;
    return backend;
  }

  // The client has gone (Terminate, end of file, an error): it is closed, and its backend waits for the next one.
  // uring: only once nothing is in flight on the client.
  void release(int client) {
    auto& c = (*this)[client];
    int backend = c.peer;
    c.clear();
    ::close(client);
    if (backend < 0) return;
    auto& b = (*this)[backend];
    if (b.peer == client) b.peer = -1;
    if (b.open) idle_.push_back(backend);
  }

  // A backend that failed, or spoke while it waited: logged out and closed. uring: only once nothing is in flight on
  // it (its recv has completed).
  void drop_backend(int backend) {
    auto& b = (*this)[backend];
    idle_.erase(std::remove(idle_.begin(), idle_.end(), backend), idle_.end());
    if (b.peer >= 0 && (*this)[b.peer].peer == backend) (*this)[b.peer].peer = -1;
    PQfinish(b.conn);
    b.clear();
  }

 private:
  // Reads the startup packet, declining SSL and GSS encryption first. False for anything else (a cancel request).
  static bool read_startup(int client) {
    for (;;) {
      char head[8];
      if (!recv_all(client, head, 8)) return false;
      std::uint32_t length = be32(head), code = be32(head + 4);
      if (length < 8 || length > 10000) return false;
      std::string rest(length - 8, '\0');
      if (!recv_all(client, rest.data(), rest.size())) return false;
      if (code == 80877103 || code == 80877104) {  // SSLRequest, GSSENCRequest
        if (!send_all(client, "N", 1)) return false;
        continue;
      }
      return code == 196608;  // protocol 3.0
    }
  }

  int take_backend() {
    while (!idle_.empty()) {
      int fd = idle_.back();
      idle_.pop_back();
      if ((*this)[fd].open) return fd;
    }
    PGconn* conn = PQconnectdb(conninfo_.c_str());
    if (PQstatus(conn) != CONNECTION_OK) {
      std::fprintf(stderr, "relay: backend login failed: %s", PQerrorMessage(conn));
      PQfinish(conn);
      return -1;
    }
    int fd = PQsocket(conn);
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);  // libpq left it non-blocking
    no_delay(fd);
    open_side(fd, -1, conn);
    return fd;
  }

  void open_side(int fd, int peer, PGconn* conn) {
    auto& side = (*this)[fd];
    std::unique_ptr<char[]> buffer = std::move(side.buffer);
    side = Side{fd, peer, true, false, conn, buffer ? std::move(buffer) : std::make_unique<char[]>(k_buffer)};
  }

  std::string conninfo_;
  std::vector<Side> sides_;
  std::vector<int> idle_;  // backends waiting for a client, most recently used last
};

int run_epoll(int listener, Relay& relay) {
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  auto watch = [ep](int fd) {
    epoll_event e{EPOLLIN, {.fd = fd}};
    ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
  };
  watch(listener);
  epoll_event events[256];
  for (;;) {
    int n = ::epoll_wait(ep, events, 256, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("epoll_wait", errno);
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == listener) {
        int c = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) continue;
        int b = relay.admit(c);
        if (b < 0) continue;
        watch(c);
        if (!relay[b].armed) {
          watch(b);
          relay[b].armed = true;
        }
        continue;
      }
      auto& side = relay[fd];
      if (side.fd < 0) continue;  // closed earlier in this batch
      bool backend = side.conn != nullptr;
      if (backend && side.peer < 0) {  // spoke, or closed, while waiting for a client
        relay.drop_backend(fd);
        continue;
      }
      // MSG_DONTWAIT: an event of this batch may name a descriptor closed and reused since (a new client's).
      ssize_t r = ::recv(fd, side.buffer.get(), k_buffer, MSG_DONTWAIT);
      if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (!backend && (r <= 0 || is_terminate(side.buffer.get(), static_cast<std::size_t>(r)))) {
        relay.release(fd);
        continue;
      }
      if (r > 0 && send_all(side.peer, side.buffer.get(), static_cast<std::size_t>(r))) continue;
      // A backend that failed, or a write that did: the pair ends, and the backend with it (it may be mid-result).
      int client = backend ? side.peer : fd;
      relay.drop_backend(backend ? fd : side.peer);
      relay.release(client);
    }
  }
}

enum Op : std::uint64_t { k_accept = 1, k_recv = 2, k_send = 3 };

std::uint64_t tag(Op op, int fd) { return (static_cast<std::uint64_t>(fd) << 8) | op; }

io_uring_sqe* next_sqe(io_uring& ring) {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring);
  if (sqe == nullptr) {
    io_uring_submit(&ring);
    sqe = io_uring_get_sqe(&ring);
  }
  return sqe;
}

void arm_recv(io_uring& ring, Side& side, unsigned flags = 0) {
  io_uring_sqe* sqe = next_sqe(ring);
  io_uring_prep_recv(sqe, side.fd, side.buffer.get(), k_buffer, 0);
  sqe->flags |= flags;
  io_uring_sqe_set_data64(sqe, tag(k_recv, side.fd));
  side.armed = true;
}

void arm_accept(io_uring& ring, int listener) {
  io_uring_sqe* sqe = next_sqe(ring);
  io_uring_prep_accept(sqe, listener, nullptr, nullptr, SOCK_CLOEXEC);
  io_uring_sqe_set_data64(sqe, tag(k_accept, listener));
}

void init_ring(io_uring& ring) {
  io_uring_params params{};
  params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  if (int rc = io_uring_queue_init_params(4096, &ring, &params); rc < 0) fail("io_uring_queue_init_params", -rc);
}

// Ends a pair from the uring side: each side still armed is shut down (its recv then completes, and the side is
// released or dropped there); a side with nothing in flight is released or dropped now.
void end_pair(Relay& relay, int fd) {
  int peer = relay[fd].peer;
  for (int x : {fd, peer}) {
    if (x < 0) continue;
    auto& side = relay[x];
    if (side.armed) {
      if (side.open) ::shutdown(x, SHUT_RDWR);
      side.open = false;
    } else if (side.conn != nullptr) {
      relay.drop_backend(x);
    } else {
      relay.release(x);
    }
  }
}

// Handles the completions posted so far and queues what they call for; returns how many there were.
unsigned complete(io_uring& ring, Relay& relay, int listener) {
  io_uring_cqe* cqe = nullptr;
  unsigned head = 0, seen = 0;
  io_uring_for_each_cqe(&ring, head, cqe) {
    ++seen;
    auto data = io_uring_cqe_get_data64(cqe);
    int fd = static_cast<int>(data >> 8);
    int res = cqe->res;
    switch (static_cast<Op>(data & 0xff)) {
      case k_accept: {
        arm_accept(ring, listener);
        int b = res < 0 ? -1 : relay.admit(res);
        if (b < 0) break;
        arm_recv(ring, relay[res]);
        if (!relay[b].armed) arm_recv(ring, relay[b]);
        break;
      }
      case k_recv: {
        auto& side = relay[fd];
        side.armed = false;
        bool backend = side.conn != nullptr;
        if (!side.open || res <= 0 || (backend && side.peer < 0)) {
          end_pair(relay, fd);
          break;
        }
        if (!backend && is_terminate(side.buffer.get(), static_cast<std::size_t>(res))) {
          relay.release(fd);  // its backend's recv stays armed, for the next client
          break;
        }
        // The send to the peer, then (once it has gone) the next recv into the same buffer.
        io_uring_sqe* send = next_sqe(ring);
        io_uring_prep_send(send, side.peer, side.buffer.get(), static_cast<std::size_t>(res), MSG_NOSIGNAL | MSG_WAITALL);
        send->flags |= IOSQE_IO_LINK | IOSQE_CQE_SKIP_SUCCESS;
        io_uring_sqe_set_data64(send, tag(k_send, fd));
        arm_recv(ring, side);
        break;
      }
      case k_send:  // only a failed send posts a completion; its linked recv is cancelled, and ends the pair
        break;
    }
  }
  io_uring_cq_advance(&ring, seen);
  return seen;
}

int run_uring(int listener, Relay& relay) {
  io_uring ring;
  init_ring(ring);
  arm_accept(ring, listener);
  for (;;) {
    int rc = io_uring_submit_and_wait(&ring, 1);
    if (rc < 0 && rc != -EINTR && rc != -ETIME) fail("io_uring_submit_and_wait", -rc);
    complete(ring, relay, listener);
  }
}

int run_hybrid(int listener, Relay& relay) {
  io_uring ring;
  init_ring(ring);
  int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (int rc = io_uring_register_eventfd(&ring, efd); rc < 0) fail("io_uring_register_eventfd", -rc);
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{EPOLLIN | EPOLLET, {.fd = efd}};  // edge-triggered: each signal wakes, the counter is never read
  ::epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev);
  arm_accept(ring, listener);
  io_uring_submit(&ring);
  epoll_event events[4];
  for (;;) {
    int n = ::epoll_wait(ep, events, 4, -1);
    if (n < 0 && errno != EINTR) fail("epoll_wait", errno);
    for (;;) {
      int rc = io_uring_submit_and_get_events(&ring);
      if (rc < 0 && rc != -EINTR) fail("io_uring_submit_and_get_events", -rc);
      if (complete(ring, relay, listener) == 0) break;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string_view mode = argc == 4 ? argv[1] : "";
  if (mode != "epoll" && mode != "uring" && mode != "hybrid") {
    std::fprintf(stderr, "usage: relay epoll|uring|hybrid LISTEN_PORT CONNINFO\n");
    return 2;
  }
  int listener = listen_on(std::atoi(argv[2]));
  Relay relay(argv[3]);
  if (mode == "epoll") return run_epoll(listener, relay);
  return mode == "uring" ? run_uring(listener, relay) : run_hybrid(listener, relay);
}
