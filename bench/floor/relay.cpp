// A bare TCP relay for measuring the kernel's floor under a proxy (bench/floor.sh). Not part of pgweir.
//
// Each accepted client gets its own connection to the target (session pairing, no pooling, no protocol): bytes
// read on one side are written to the other. What is left is the least any proxy on this machine can spend per
// transaction with a given event mechanism:
//
//   epoll   level-triggered epoll_wait, one recv per readable socket, one send to its peer (the shape of an
//           libevent proxy: recv, send and epoll_wait per message);
//   uring   io_uring, one ring on the one thread, created with SINGLE_ISSUER | DEFER_TASKRUN (so completions are
//           run only when the thread asks for them). A completed recv queues a send to the peer linked to the
//           next recv on the same socket (the send's success posts no completion); every SQE prepared in one
//           wake-up is submitted by the io_uring_enter that also waits for the next completions.
//   hybrid  uring's ring and operations, but the thread sleeps in epoll_wait, on an eventfd registered with the
//           ring: what an io_uring data path inside an epoll event loop (Asio's) would cost. Per wake-up, one
//           epoll_wait, then io_uring_enter calls that run the completions and submit what they queued, until one
//           finds nothing more.
//
// Usage: relay epoll|uring|hybrid LISTEN_PORT TARGET_PORT      (127.0.0.1 on both sides; runs until killed)
#include <arpa/inet.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string_view>
#include <vector>

namespace {

constexpr std::size_t k_buffer = 64 * 1024;

[[noreturn]] void fail(const char* what, int err) {
  std::fprintf(stderr, "relay: %s: %s\n", what, std::strerror(err));
  std::exit(1);
}

sockaddr_in loopback(int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

int listen_on(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  auto a = loopback(port);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) fail("bind", errno);
  if (::listen(fd, 4096) != 0) fail("listen", errno);
  return fd;
}

void no_delay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// The target side, connected before the client's first byte is read (a blocking connect: set-up is not measured).
int connect_target(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  auto a = loopback(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  no_delay(fd);
  return fd;
}

struct Side {
  int fd = -1;
  int peer = -1;
  bool open = false;  // uring: false once shut down, closed when its last recv completes
  std::unique_ptr<char[]> buffer;
};

// Sides indexed by descriptor.
class Sides {
 public:
  Side& operator[](int fd) {
    if (static_cast<std::size_t>(fd) >= sides_.size()) sides_.resize(static_cast<std::size_t>(fd) + 1);
    return sides_[static_cast<std::size_t>(fd)];
  }
  void pair(int a, int b) {
    for (auto [x, y] : {std::pair{a, b}, std::pair{b, a}}) {
      auto& s = (*this)[x];
      s.fd = x;
      s.peer = y;
      s.open = true;
      if (!s.buffer) s.buffer = std::make_unique<char[]>(k_buffer);
    }
  }
  void unpair(int fd) {
    auto& s = (*this)[fd];
    if (s.fd < 0) return;
    int peer = s.peer;
    s.fd = s.peer = -1;
    (*this)[peer].fd = (*this)[peer].peer = -1;
    ::close(fd);
    ::close(peer);
  }
  // io_uring: a side with a recv in flight cannot be closed yet (a new connection could take its number before
  // that recv's completion arrives). Both are shut down, which ends the recvs; each is closed on its completion.
  void shut(int fd) {
    auto& s = (*this)[fd];
    for (int x : {fd, s.peer}) {
      if (x < 0) continue;
      auto& side = (*this)[x];
      if (!side.open) continue;
      side.open = false;
      ::shutdown(x, SHUT_RDWR);
    }
  }
  void close_shut(int fd) {
    auto& s = (*this)[fd];
    if (s.peer >= 0 && (*this)[s.peer].peer == fd) (*this)[s.peer].peer = -1;  // its number may be reused now
    s.fd = s.peer = -1;
    ::close(fd);
  }

 private:
  std::vector<Side> sides_;
};

// Writes all of it; a loopback peer with room takes it at once, and a full one is waited for.
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

int run_epoll(int listener, int target) {
  Sides sides;
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{EPOLLIN, {.fd = listener}};
  ::epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
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
        int s = connect_target(target);
        if (s < 0) {
          ::close(c);
          continue;
        }
        no_delay(c);
        sides.pair(c, s);
        for (int x : {c, s}) {
          epoll_event e{EPOLLIN, {.fd = x}};
          ::epoll_ctl(ep, EPOLL_CTL_ADD, x, &e);
        }
        continue;
      }
      auto& side = sides[fd];
      if (side.fd < 0) continue;
      ssize_t r = ::recv(fd, side.buffer.get(), k_buffer, 0);
      if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (r <= 0 || !send_all(side.peer, side.buffer.get(), static_cast<std::size_t>(r))) sides.unpair(fd);
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

// Handles the completions posted so far and queues what they call for; returns how many there were.
unsigned complete(io_uring& ring, Sides& sides, int listener, int target) {
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
        if (res < 0) break;
        int s = connect_target(target);
        if (s < 0) {
          ::close(res);
          break;
        }
        no_delay(res);
        sides.pair(res, s);
        arm_recv(ring, sides[res]);
        arm_recv(ring, sides[s]);
        break;
      }
      case k_recv: {
        auto& side = sides[fd];
        if (!side.open || res <= 0) {
          sides.shut(fd);
          sides.close_shut(fd);
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
      case k_send:  // only a failed send posts a completion; its linked recv is cancelled, and closes the side
        sides.shut(fd);
        break;
    }
  }
  io_uring_cq_advance(&ring, seen);
  return seen;
}

int run_uring(int listener, int target) {
  io_uring ring;
  init_ring(ring);
  Sides sides;
  arm_accept(ring, listener);
  for (;;) {
    int rc = io_uring_submit_and_wait(&ring, 1);
    if (rc < 0 && rc != -EINTR && rc != -ETIME) fail("io_uring_submit_and_wait", -rc);
    complete(ring, sides, listener, target);
  }
}

int run_hybrid(int listener, int target) {
  io_uring ring;
  init_ring(ring);
  int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (int rc = io_uring_register_eventfd(&ring, efd); rc < 0) fail("io_uring_register_eventfd", -rc);
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{EPOLLIN | EPOLLET, {.fd = efd}};  // edge-triggered: each signal wakes, the counter is never read
  ::epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev);
  Sides sides;
  arm_accept(ring, listener);
  io_uring_submit(&ring);
  epoll_event events[4];
  for (;;) {
    int n = ::epoll_wait(ep, events, 4, -1);
    if (n < 0 && errno != EINTR) fail("epoll_wait", errno);
    for (;;) {
      int rc = io_uring_submit_and_get_events(&ring);
      if (rc < 0 && rc != -EINTR) fail("io_uring_submit_and_get_events", -rc);
      if (complete(ring, sides, listener, target) == 0) break;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string_view mode = argc == 4 ? argv[1] : "";
  if (mode != "epoll" && mode != "uring" && mode != "hybrid") {
    std::fprintf(stderr, "usage: relay epoll|uring|hybrid LISTEN_PORT TARGET_PORT\n");
    return 2;
  }
  int listener = listen_on(std::atoi(argv[2]));
  int target = std::atoi(argv[3]);
  if (mode == "epoll") return run_epoll(listener, target);
  return mode == "uring" ? run_uring(listener, target) : run_hybrid(listener, target);
}
