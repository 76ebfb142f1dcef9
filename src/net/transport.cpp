// Transport: reads that wait in the reactor (TLS: readiness-driven) and gathered writes, with MSG_DONTWAIT.
#include "pgweir/net/transport.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include <boost/asio/error.hpp>
#include <boost/asio/recycling_allocator.hpp>

#include "plain_syscalls.hpp"
#include "reactor_read.hpp"
#include "pgweir/core/log.hpp"
#include "pgweir/net/readiness_wait.hpp"

namespace pgweir::net {
namespace {

ErrorCode errno_code(int e) { return ErrorCode(e, boost::system::system_category()); }
ErrorCode eof_code() { return asio::error::eof; }
ErrorCode tls_error_code() { return boost::system::errc::make_error_code(boost::system::errc::protocol_error); }

constexpr std::size_t k_max_iov = 64;

// One gathered write of `count` buffers, retried on EINTR: send for one buffer (cheaper for the kernel than
// sendmsg's iovec import), sendmsg for more. Returns what the kernel returned; errno is set when it is negative.
ssize_t send_gathered(int fd, iovec* iov, std::size_t count) {
  for (;;) {
    ssize_t n;
    if (count == 1) {
      n = detail::plain_send(fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL | MSG_DONTWAIT);
    } else {
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = count;
      n = detail::plain_sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    if (n >= 0 || errno != EINTR) return n;
  }
}
// TLS records hold at most 16 KiB of plaintext; small buffers are coalesced to one record.
constexpr std::size_t k_tls_coalesce = 16 * 1024;

// A request in the loop's ring whose completion resumes a coroutine through `Handler` (net/resume.hpp), called
// with the result `Deliver` makes of the kernel's. Allocated with Asio's per-thread recycling, as its own
// operations are.
template <class Handler, class Deliver>
struct RingCall : RingOp {
  explicit RingCall(Handler h) : RingOp(&RingCall::done), handler(std::move(h)) {}
  Handler handler;
  using Allocator = asio::recycling_allocator<RingCall>;
  static RingCall* make(Handler h) {
    Allocator alloc;
    return new (alloc.allocate(1)) RingCall(std::move(h));
  }
  static void done(RingOp* base, int result, bool destroyed) {
    auto* op = static_cast<RingCall*>(base);
    Handler handler(std::move(op->handler));
    op->~RingCall();
    Allocator().deallocate(op, 1);
    if (destroyed) return;  // the loop is going: the coroutine goes with the handler
    Deliver{}(handler, result);
  }
};

ErrorCode ring_error(int result) {
  if (result == -ECANCELED) return asio::error::operation_aborted;
  return errno_code(-result);
}

struct DeliverRead {
  template <class Handler>
  void operator()(Handler& handler, int result) {
    if (result > 0) {
      handler(ErrorCode{}, static_cast<std::size_t>(result));
    } else if (result == 0) {
      handler(eof_code(), std::size_t{0});
    } else {
      handler(ring_error(result), std::size_t{0});
    }
  }
};

struct DeliverWait {
  template <class Handler>
  void operator()(Handler& handler, int result) {
    handler(result < 0 ? ring_error(result) : ErrorCode{});
  }
};

// The coroutine's cancellation (relay() || watchdog() ends the loser with it) cancels the request. The handler
// clears the slot when it is called, before the request's memory can be reused.
struct RingCancellation {
  Ring* ring;
  RingOp* op;
  void operator()(asio::cancellation_type_t type) {
    if (type != asio::cancellation_type::none) ring->cancel(op);
  }
};

template <class Handler>
void hook_cancellation(Handler& handler, Ring& ring, RingOp* op) {
  auto slot = asio::get_associated_cancellation_slot(handler);
  if (slot.is_connected()) slot.template emplace<RingCancellation>(RingCancellation{&ring, op});
}

// How long a send the ring still has in flight when its connection is closed may take to finish (a peer that
// stopped reading): then it is cancelled and the fd closed.
constexpr std::chrono::milliseconds k_orphan_deadline{5'000};

}  // namespace

// A send in the loop's ring: bytes copied from the writers' buffers, sent from `offset` on. One per connection at a
// time, so that the bytes go out in order; what is written meanwhile waits in send_queue_. When the transport is
// closed with a send in flight, the send finishes on its own (it owns the fd then, and closes it), within
// k_orphan_deadline.
struct Transport::RingSend : RingOp {
  RingSend(Ring& r, int f, Transport* t) : RingOp(&RingSend::done), ring(&r), fd(f), transport(t) {}
  Ring* ring;
  int fd;
  Transport* transport;  // null once the transport let go of it
  std::string bytes;
  std::size_t offset = 0;
  std::string follow;  // an orphan's last queued bytes, sent after `bytes`
  bool owns_fd = false;
  bool in_flight = false;
  bool deadline_armed = false;
  struct Deadline : RingOp {
    explicit Deadline(RingSend* s) : RingOp(&Deadline::done), send(s) {}
    RingSend* send;
    static void done(RingOp* op, int, bool) {
      auto* s = static_cast<Deadline*>(op)->send;
      s->deadline_armed = false;
      if (s->in_flight) s->ring->cancel(s);
      s->release();
    }
  } deadline{this};

  void start() {
    in_flight = true;
    ring->send(fd, bytes.data() + offset, bytes.size() - offset, this);
  }
  void release() {
    if (in_flight || deadline_armed) return;
    if (owns_fd) ::close(fd);
    delete this;
  }
  static void done(RingOp* base, int result, bool destroyed);
};

void Transport::RingSend::done(RingOp* base, int result, bool destroyed) {
  auto* s = static_cast<RingSend*>(base);
  s->in_flight = false;
  Transport* t = s->transport;
  if (destroyed) {
    // The loop is going: so is whatever waits for this send.
    if (t) {
      t->send_op_ = nullptr;
      t->send_error_ = asio::error::operation_aborted;
      t->wake_flushed(t->send_error_, true);
    }
    s->release();
    return;
  }
  bool failed = result < 0;
  if (!failed) s->offset += static_cast<std::size_t>(result);
  if (!failed && s->offset < s->bytes.size()) return s->start();  // the rest
  if (!t) {
    // Closed meanwhile: what was queued last goes too, then the fd is closed.
    if (!failed && !s->follow.empty()) {
      s->bytes = std::move(s->follow);
      s->follow.clear();
      s->offset = 0;
      return s->start();
    }
    if (s->deadline_armed) s->ring->cancel(&s->deadline);
    return s->release();
  }
  if (failed) {
    t->send_error_ = ring_error(result);
    t->send_queue_.clear();
    // A read pending on the connection ends too: the session sees the failure there as well as at its next write.
    ::shutdown(s->fd, SHUT_RDWR);
  } else if (!t->send_queue_.empty()) {
    s->bytes.swap(t->send_queue_);
    t->send_queue_.clear();
    s->offset = 0;
    return s->start();
  }
  t->send_op_ = nullptr;
  s->release();
  t->wake_flushed(t->send_error_, false);
}

void Transport::ring_enqueue(std::span<const asio::const_buffer> buffers, std::size_t skip) {
  std::string* to = &send_queue_;
  RingSend* fresh = nullptr;
  if (!send_op_) {
    fresh = new RingSend(*ring_, socket_.native_handle(), this);
    to = &fresh->bytes;
  }
  for (const auto& b : buffers) {
    auto p = static_cast<const char*>(b.data());
    std::size_t n = b.size();
    if (skip >= n) {
      skip -= n;
      continue;
    }
    to->append(p + skip, n - skip);
    skip = 0;
  }
  if (fresh) {
    send_op_ = fresh;
    fresh->start();
  }
}

// Resumes flush()'s waiters with `ec`: right here from the ring's completion, or through the loop's queue when
// called from inside a transport operation (cancel, close), which must return first.
void Transport::wake_flushed(ErrorCode ec, bool posted) {
  if (flush_waiters_.empty()) return;
  auto waiters = std::move(flush_waiters_);
  flush_waiters_.clear();
  for (auto& waiter : waiters) {
    if (posted) {
      asio::post(socket_.get_executor(), [waiter = std::move(waiter), ec]() mutable { waiter(ec); });
    } else {
      waiter(ec);
    }
  }
}

Task<ErrorCode> Transport::flush() {
  if (!send_op_) co_return send_error_;
  WaitResult got;
  co_await suspend_into([this, &got](CoroutineFrame* frame) { flush_waiters_.push_back(make_wait_resumer(frame, got)); });
  co_return got.take();
}

Transport::Transport(Socket socket) : socket_(std::move(socket)) {
  detail::mark_sole_owner(socket_);
  if (!socket_.is_open()) return;
  ring_ = Ring::of(socket_.get_executor());
  if (ring_ && detail::is_registered(socket_)) leave_reactor();  // a server connection Asio connected
}

Transport::Transport(Transport&& o) noexcept
    : socket_(std::move(o.socket_)),
      ssl_(std::exchange(o.ssl_, nullptr)),
      reactor_(std::exchange(o.reactor_, nullptr)),
      unread_(std::move(o.unread_)) {
  adopt_ops(o);
}

Transport& Transport::operator=(Transport&& o) noexcept {
  if (this != &o) {
    close();
    socket_ = std::move(o.socket_);
    ssl_ = std::exchange(o.ssl_, nullptr);
    reactor_ = std::exchange(o.reactor_, nullptr);
    unread_ = std::move(o.unread_);
    adopt_ops(o);
  }
  return *this;
}

Transport::~Transport() { close(); }

void Transport::adopt_ops(Transport& from) {
  ring_ = std::exchange(from.ring_, nullptr);
  read_op_ = std::exchange(from.read_op_, nullptr);
  write_op_ = std::exchange(from.write_op_, nullptr);
  if (read_op_) read_op_->owner = &read_op_;
  if (write_op_) write_op_->owner = &write_op_;
  send_op_ = std::exchange(from.send_op_, nullptr);
  if (send_op_) send_op_->transport = this;
  send_queue_ = std::move(from.send_queue_);
  send_error_ = std::exchange(from.send_error_, ErrorCode{});
  flush_waiters_ = std::move(from.flush_waiters_);
}

void Transport::cancel() {
  ErrorCode ignored;
  socket_.cancel(ignored);
  if (read_op_) ring_->cancel(read_op_);
  if (write_op_) ring_->cancel(write_op_);
  wake_flushed(asio::error::operation_aborted, true);  // the send itself goes on
}

// The requests pending in the ring end with operation_aborted; the kernel lets go of the connection when the
// cancellation reaches it (with the loop's next submission), the fd being closed already.
void Transport::abandon_ops() {
  for (RingOp** slot : {&read_op_, &write_op_}) {
    if (RingOp* op = *slot) {
      op->owner = nullptr;
      op->abandoned = true;
      ring_->cancel(op);
      *slot = nullptr;
    }
  }
  if (RingSend* s = std::exchange(send_op_, nullptr)) {
    // The bytes written before the close still go out (an error the session sends before closing, say): the
    // send keeps the fd and closes it when done.
    s->transport = nullptr;
    s->follow = std::move(send_queue_);
    send_queue_.clear();
    ErrorCode ignored;
    s->fd = socket_.release(ignored);  // registered nowhere: no system call
    s->owns_fd = s->fd >= 0;
    if (!ring_->closed()) {
      s->deadline_armed = true;
      ring_->timeout(k_orphan_deadline, &s->deadline);  // also submits the send, if it is still queued
    }
  }
  wake_flushed(asio::error::operation_aborted, true);
}

void Transport::leave_reactor() {
  auto [state, protocol] = detail::socket_kind(socket_);
  auto executor = socket_.get_executor();
  ErrorCode ignored;
  int fd = socket_.release(ignored);  // out of the epoll set
  Socket bare(executor);
  detail::adopt_unregistered(bare, fd, state, protocol);
  socket_ = std::move(bare);
}

void Transport::enter_reactor() {
  auto [state, protocol] = detail::socket_kind(socket_);
  auto executor = socket_.get_executor();
  ErrorCode ignored;
  int fd = socket_.release(ignored);  // registered nowhere: nothing to undo
  Socket moved(executor);
  auto& reactor = asio::use_service<detail::ad::epoll_reactor>(executor.context());
  ring_ = nullptr;
  if (auto ec = detail::register_idle(moved, reactor, fd, state, protocol)) {
    log::warn("socket_register_failed", {{"error", ec.message()}});
    ::close(fd);
    socket_ = std::move(moved);
    return;
  }
  socket_ = std::move(moved);
  reactor_ = &reactor;
}

void Transport::close() {
  abandon_ops();
  if (ssl_) {
    SSL_free(ssl_);
    ssl_ = nullptr;
  }
  if (socket_.is_open()) {
    boost::system::error_code ignored;
    socket_.close(ignored);
  }
}

Task<ErrorCode> Transport::wait(bool for_write) {
  if (ring_) {
    WaitResult got;
    co_await suspend_into([this, for_write, &got](CoroutineFrame* frame) {
      auto* op = RingCall<WaitResult::Resumer, DeliverWait>::make(make_wait_resumer(frame, got));
      hook_cancellation(op->handler, *ring_, op);
      RingOp*& slot = for_write ? write_op_ : read_op_;
      op->owner = &slot;
      slot = op;
      ring_->poll(socket_.native_handle(), for_write ? POLLOUT : POLLIN | POLLRDHUP, op);
    });
    co_return got.take();
  }
  auto [ec] = co_await socket_.async_wait(for_write ? Socket::wait_write : Socket::wait_read, use_tuple);
  co_return ec;
}

bool Transport::has_buffered_input() {
  if (holds_input()) return true;
  char probe;
  return ::recv(socket_.native_handle(), &probe, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

bool Transport::idle_and_open() {
  if (!socket_.is_open()) return false;
  if (holds_input()) return false;
  char probe;
  ssize_t n = ::recv(socket_.native_handle(), &probe, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

Task<ErrorCode> Transport::wait_readable() {
  if (holds_input()) co_return ErrorCode{};
  co_return co_await wait(false);
}

void Transport::unread(std::string_view bytes) {
  if (bytes.empty()) return;
  if (!unread_) {
    unread_ = std::make_unique<std::string>(bytes);
  } else {
    unread_->insert(0, bytes);
  }
}

std::size_t Transport::take_unread(char* data, std::size_t size) {
  std::size_t n = std::min(size, unread_->size());
  std::memcpy(data, unread_->data(), n);
  if (n == unread_->size()) {
    unread_.reset();
  } else {
    unread_->erase(0, n);
  }
  return n;
}

std::pair<ErrorCode, std::size_t> Transport::try_read(char* data, std::size_t size, bool& want_write) {
  want_write = false;
  if (unread_) return {{}, take_unread(data, size)};
  if (ssl_) {
    ERR_clear_error();
    std::size_t n = 0;
    if (SSL_read_ex(ssl_, data, size, &n) == 1) return {{}, n};
    switch (SSL_get_error(ssl_, 0)) {
      case SSL_ERROR_WANT_READ: return {ErrorCode(asio::error::would_block), 0};
      case SSL_ERROR_WANT_WRITE: want_write = true; return {ErrorCode(asio::error::would_block), 0};
      case SSL_ERROR_ZERO_RETURN: return {eof_code(), 0};
      case SSL_ERROR_SYSCALL: return {errno != 0 ? errno_code(errno) : eof_code(), 0};
      default: return {tls_error_code(), 0};
    }
  }
  for (;;) {
    ssize_t n = detail::plain_recv(socket_.native_handle(), data, size, MSG_DONTWAIT);
    if (n > 0) return {{}, static_cast<std::size_t>(n)};
    if (n == 0) return {eof_code(), 0};
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return {ErrorCode(asio::error::would_block), 0};
    return {errno_code(errno), 0};
  }
}

Task<std::tuple<ErrorCode, std::size_t>> Transport::read_some(char* data, std::size_t size) {
  for (;;) {
    bool want_write = false;
    auto [ec, n] = try_read(data, size, want_write);
    if (ec != asio::error::would_block) co_return std::tuple{ec, n};
    if (ssl_ && !want_write) {
      // OpenSSL's read found the socket empty: with SSL_MODE_AUTO_RETRY (OpenSSL's default, which pgweir keeps)
      // WANT_READ only follows a recv that returned EAGAIN. Wait for the next edge without re-arming the fd
      // (src/net/reactor_read.hpp). Plain reads go through receive().
      auto [wec] = co_await detail::async_wait_after_empty_read(socket_, reactor(), use_tuple);
      if (wec) co_return std::tuple{wec, std::size_t{0}};
      continue;
    }
    if (auto wec = co_await wait(want_write)) co_return std::tuple{wec, std::size_t{0}};
  }
}

namespace {

Task<std::tuple<ErrorCode, std::size_t>> done_read(std::size_t n) { co_return std::tuple{ErrorCode{}, n}; }

}  // namespace

Task<std::tuple<ErrorCode, std::size_t>> Transport::ring_receive(char* data, std::size_t size) {
  ReadResult got;
  co_await receive_into(data, size, got);
  co_return got.take();
}

// Not a coroutine itself: on a plain connection the caller awaits the reactor read directly.
Task<std::tuple<ErrorCode, std::size_t>> Transport::receive(char* data, std::size_t size) {
  if (unread_) return done_read(take_unread(data, size));
  if (ssl_) return read_some(data, size);
  if (ring_) return ring_receive(data, size);
  return detail::async_draining_read(socket_, reactor(), data, size, use_tuple);
}

void Transport::start_receive(char* data, std::size_t size, ReadResult::Resumer handler) {
  if (ring_) {
    auto* op = RingCall<ReadResult::Resumer, DeliverRead>::make(std::move(handler));
    hook_cancellation(op->handler, *ring_, op);
    op->owner = &read_op_;
    read_op_ = op;
    ring_->recv(socket_.native_handle(), data, size, op);
    return;
  }
  detail::start_draining_read(socket_, reactor(), data, size, std::move(handler));
}

asio::detail::epoll_reactor& Transport::reactor() {
  if (!reactor_) {
    reactor_ = &asio::use_service<asio::detail::epoll_reactor>(asio::query(socket_.get_executor(), asio::execution::context));
    detail::watch_peer_shutdown(socket_, *reactor_);
  }
  return *reactor_;
}

Task<ErrorCode> Transport::read_exact(char* data, std::size_t size) {
  while (size > 0) {
    auto [ec, n] = co_await receive(data, size);
    if (ec) co_return ec;
    data += n;
    size -= n;
  }
  co_return ErrorCode{};
}

std::size_t Transport::write_now(std::span<const asio::const_buffer> buffers, ErrorCode& ec) {
  ec = {};
  if (ring_) {
    if (send_error_) {
      ec = send_error_;
      return 0;
    }
    std::size_t total = 0;
    for (const auto& b : buffers) total += b.size();
    if (send_op_ && send_queue_.size() + total > k_ring_send_backlog) return 0;
    ring_enqueue(buffers, 0);
    return total;
  }
  if (ssl_ || buffers.empty() || buffers.size() > k_max_iov) return 0;
  std::array<iovec, k_max_iov> iov;
  for (std::size_t i = 0; i < buffers.size(); ++i) {
    iov[i].iov_base = const_cast<void*>(buffers[i].data());
    iov[i].iov_len = buffers[i].size();
  }
  ssize_t n = send_gathered(socket_.native_handle(), iov.data(), buffers.size());
  if (n >= 0) return static_cast<std::size_t>(n);
  if (errno != EAGAIN && errno != EWOULDBLOCK) ec = errno_code(errno);
  return 0;
}

namespace {

// A Task already done with `ec`: for the functions that return a wait's Task or, without waiting, a result.
Task<ErrorCode> done_with(ErrorCode ec) { co_return ec; }

}  // namespace

// After an OpenSSL call on this connection failed with `result` (SSL_write_ex's and SSL_do_handshake's alike):
// waits for what OpenSSL needs, the socket readable or writable, and returns no error for the call to be made
// again; or returns the failure. Not a coroutine: the wait is the caller's to await.
Task<ErrorCode> Transport::wait_for_tls(int result) {
  switch (SSL_get_error(ssl_, result)) {
    case SSL_ERROR_WANT_READ: return wait(false);
    case SSL_ERROR_WANT_WRITE: return wait(true);
    case SSL_ERROR_SYSCALL: return done_with(errno != 0 ? errno_code(errno) : eof_code());
    default: return done_with(tls_error_code());
  }
}

// Neither write_all is a coroutine on a ring: the bytes are copied to the send queue before it returns, and only
// flush() is waited for. A login waits in write_all for every answer it sends; the epoll and TLS writes keep
// their iovec array and staging in frames of their own instead of in every login's.
Task<ErrorCode> Transport::write_all(std::string_view bytes) {
  asio::const_buffer b(bytes.data(), bytes.size());
  if (ring_) return write_all(std::span<const asio::const_buffer>(&b, 1));
  return write_one(bytes);
}

Task<ErrorCode> Transport::write_one(std::string_view bytes) {
  asio::const_buffer b(bytes.data(), bytes.size());
  co_return co_await write_all(std::span<const asio::const_buffer>(&b, 1));
}

Task<ErrorCode> Transport::write_all(std::span<const asio::const_buffer> buffers) {
  if (ring_) {
    if (send_error_) return done_with(send_error_);
    ring_enqueue(buffers, 0);
    return flush();
  }
  if (ssl_) return write_tls(buffers);
  return write_gathered(buffers);
}

Task<ErrorCode> Transport::write_tls(std::span<const asio::const_buffer> buffers) {
  // Coalesce into records of up to 16 KiB; larger buffers go out directly.
  std::string staging;
  auto flush = [&](const char* p, std::size_t n) -> Task<ErrorCode> {
    while (n > 0) {
      ERR_clear_error();
      std::size_t written = 0;
      if (SSL_write_ex(ssl_, p, n, &written) == 1) {
        p += written;
        n -= written;
        continue;
      }
      if (auto ec = co_await wait_for_tls(0)) co_return ec;
    }
    co_return ErrorCode{};
  };
  for (const auto& b : buffers) {
    auto p = static_cast<const char*>(b.data());
    if (staging.size() + b.size() <= k_tls_coalesce) {
      staging.append(p, b.size());
      continue;
    }
    if (!staging.empty()) {
      if (auto ec = co_await flush(staging.data(), staging.size())) co_return ec;
      staging.clear();
    }
    if (b.size() <= k_tls_coalesce) {
      staging.append(p, b.size());
    } else if (auto ec = co_await flush(p, b.size())) {
      co_return ec;
    }
  }
  if (!staging.empty()) co_return co_await flush(staging.data(), staging.size());
  co_return ErrorCode{};
}

Task<ErrorCode> Transport::write_gathered(std::span<const asio::const_buffer> buffers) {
  std::array<iovec, k_max_iov> iov;
  std::size_t count = 0;
  std::size_t index = 0;     // next buffer not yet in iov
  std::size_t offset = 0;    // bytes of buffers[first] already written
  std::size_t first = 0;
  while (first < buffers.size()) {
    count = 0;
    for (index = first; index < buffers.size() && count < k_max_iov; ++index) {
      const auto& b = buffers[index];
      std::size_t skip = index == first ? offset : 0;
      if (b.size() == skip) continue;
      iov[count].iov_base = const_cast<char*>(static_cast<const char*>(b.data()) + skip);
      iov[count].iov_len = b.size() - skip;
      ++count;
    }
    if (count == 0) break;
    ssize_t n = send_gathered(socket_.native_handle(), iov.data(), count);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        if (auto ec = co_await wait(true)) co_return ec;
        continue;
      }
      co_return errno_code(errno);
    }
    auto left = static_cast<std::size_t>(n);
    while (first < buffers.size()) {
      std::size_t avail = buffers[first].size() - offset;
      if (left < avail) {
        offset += left;
        break;
      }
      left -= avail;
      ++first;
      offset = 0;
    }
  }
  co_return ErrorCode{};
}

Task<ErrorCode> Transport::tls_handshake(SSL* ssl, bool server) {
  // Held bytes came before the handshake, in the clear: they must not be taken for part of it.
  if (unread_) {
    SSL_free(ssl);
    co_return tls_error_code();
  }
  if (ssl_) SSL_free(ssl_);
  ssl_ = ssl;
  if (ring_) enter_reactor();  // OpenSSL reads and writes the fd itself; its waits are Asio's
  // OpenSSL reads and writes the fd itself, without MSG_DONTWAIT: it must be in non-blocking mode.
  ErrorCode blocking_ec;
  socket_.non_blocking(true, blocking_ec);
  if (blocking_ec) co_return blocking_ec;
  if (SSL_set_fd(ssl_, socket_.native_handle()) != 1) co_return tls_error_code();
  if (server) {
    SSL_set_accept_state(ssl_);
  } else {
    SSL_set_connect_state(ssl_);
  }
  for (;;) {
    ERR_clear_error();
    int r = SSL_do_handshake(ssl_);
    if (r == 1) co_return ErrorCode{};
    if (auto ec = co_await wait_for_tls(r)) co_return ec;
  }
}

void Transport::rehome(const Executor& executor) {
  if (socket_.get_executor() == executor) return;
  // The protocol and state bits the socket was opened or assigned with, as the socket keeps them: asking the
  // kernel (local_endpoint()) cost a getsockname per move. The fd is this socket's alone (see mark_sole_owner).
  auto [state, protocol] = detail::socket_kind(socket_);
  int fd = socket_.release();  // out of the old loop's epoll set, if it was in one
  if (Ring* ring = ssl_ ? nullptr : Ring::of(executor)) {
    Socket moved(executor);
    detail::adopt_unregistered(moved, fd, state, protocol);
    socket_ = std::move(moved);
    reactor_ = nullptr;
    ring_ = ring;
    return;
  }
  ring_ = nullptr;
  auto& reactor = asio::use_service<detail::ad::epoll_reactor>(executor.context());
  Socket moved(executor);
  if (auto ec = detail::register_idle(moved, reactor, fd, state, protocol)) {
    // The kernel would not take it (out of memory): the connection is lost, and the next write or read says so.
    log::warn("server_move_failed", {{"error", ec.message()}});
    ::close(fd);
    socket_ = std::move(moved);
    reactor_ = nullptr;
    return;
  }
  socket_ = std::move(moved);
  reactor_ = &reactor;  // EPOLLRDHUP is registered already
}

Task<ErrorCode> wait_acceptable(Acceptor& acceptor) {
  auto& reactor = asio::use_service<detail::ad::reactor>(acceptor.get_executor().context());
  auto [ec] = co_await detail::async_wait_after_empty_read(acceptor, reactor, use_tuple);
  co_return ec;
}

ErrorCode assign_accepted(Socket& socket, const asio::generic::stream_protocol& protocol, int fd) {
  ErrorCode ec;
  if (Ring::of(socket.get_executor())) {
    detail::adopt_unregistered(socket, fd, detail::ad::socket_ops::stream_oriented, protocol);
  } else {
    socket.assign(protocol, fd, ec);
  }
  return ec;
}

void tune_socket(Socket& socket, bool tcp) {
  if (!tcp) return;
  int fd = socket.native_handle();
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
}

PeerAddress peer_address(const Endpoint& peer) {
  const sockaddr* sa = peer.data();
  char host[INET6_ADDRSTRLEN] = {};
  if (sa->sa_family == AF_INET && peer.size() >= sizeof(sockaddr_in)) {
    // By hand: glibc's inet_ntop formats IPv4 through sprintf, a thousand instructions for every login.
    auto* a = reinterpret_cast<const sockaddr_in*>(sa);
    auto bytes = reinterpret_cast<const unsigned char*>(&a->sin_addr);
    char* p = host;
    for (int i = 0; i < 4; ++i) {
      if (i > 0) *p++ = '.';
      unsigned b = bytes[i];
      if (b >= 100) *p++ = static_cast<char>('0' + b / 100);
      if (b >= 10) *p++ = static_cast<char>('0' + b / 10 % 10);
      *p++ = static_cast<char>('0' + b % 10);
    }
    return {std::string(host, p), ntohs(a->sin_port)};
  }
  if (sa->sa_family == AF_INET6 && peer.size() >= sizeof(sockaddr_in6)) {
    auto* a = reinterpret_cast<const sockaddr_in6*>(sa);
    ::inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
    return {host, ntohs(a->sin6_port)};
  }
  if (sa->sa_family == AF_UNIX) return {"[local]", 0};
  return {"unknown", 0};
}

std::string PeerAddress::to_string() const {
  if (port == 0) return host;
  auto p = std::to_string(port);
  return host.find(':') != std::string::npos ? "[" + host + "]:" + p : host + ":" + p;
}

ReadinessWait::ReadinessWait(Callback callback, void* context)
    : reactor_op(ErrorCode(), &ReadinessWait::perform, &ReadinessWait::complete), callback_(callback), context_(context) {}

void ReadinessWait::start(Transport& transport) {
  if (Ring* ring = transport.ring()) {
    RingOp*& slot = transport.ring_read_slot();
    in_ring_.owner = &slot;
    slot = &in_ring_;
    ring->poll(transport.native_handle(), POLLIN | POLLRDHUP, &in_ring_);
    return;
  }
  auto& impl = detail::SocketAccess::implementation(transport.socket());
  ec_ = ErrorCode();
  fd_ = impl.socket_;
  // Speculative: when the reactor has seen an edge since the socket's last draining read (or none was ever made),
  // perform() peeks at once; otherwise, or when the peek finds nothing, the wait is queued for the next edge
  // without re-arming the descriptor (the fd is registered edge-triggered).
  starting_ = true;
  transport.reactor().start_op(asio::detail::reactor::read_op, impl.socket_, impl.reactor_data_, this, false, true);
  starting_ = false;  // completed or queued: a completion is posted, never run inside start_op
}

asio::detail::reactor_op::status ReadinessWait::perform(reactor_op* base) {
  auto* wait = static_cast<ReadinessWait*>(base);
  if (!wait->starting_) return done;
  for (;;) {
    char probe;
    if (::recv(wait->fd_, &probe, 1, MSG_PEEK | MSG_DONTWAIT) >= 0) return done;  // input, or end of stream
    if (errno == EINTR) continue;
    return errno == EAGAIN || errno == EWOULDBLOCK ? not_done : done;  // an error is for the reader to see
  }
}

void ReadinessWait::InRing::done(RingOp* op, int, bool destroyed) {
  auto* wait = static_cast<InRing*>(op)->wait;
  wait->callback_(wait->context_, destroyed);
}

void ReadinessWait::complete(void* owner, asio::detail::operation* base, const ErrorCode&, std::size_t) {
  auto* wait = static_cast<ReadinessWait*>(base);
  // The callback may destroy the wait's owner: nothing of the wait is touched after it.
  wait->callback_(wait->context_, owner == nullptr);
}

}  // namespace pgweir::net
