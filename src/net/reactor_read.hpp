// A socket read that waits inside Asio's epoll reactor and tells the reactor when it drained the socket.
//
// Asio 1.81's own async_read_some keeps trying a speculative recv before it waits, even when the previous read
// emptied the socket, so every wait for the next message costs a recv that returns EAGAIN; its async_wait costs
// an epoll_ctl(EPOLL_CTL_MOD) instead. This read reports a short read as "done and exhausted", which is what
// the reactor keys its speculation on: the next read on a drained socket is queued without any syscall and is
// performed by the reactor when the edge-triggered readiness event arrives. Data that arrives in between
// raises an edge with no read queued, which re-enables speculation, so nothing is ever missed.
//
// It uses Asio's reactor interface (boost/asio/detail), which pgweir pins to Boost 1.81 on Debian 12; the
// transport falls back to async_read_some where this does not apply (TLS, a blocking socket, another backend).
#pragma once

#include <sys/socket.h>

#include <cerrno>
#include <cstddef>
#include <memory>

#include <boost/asio/async_result.hpp>
#include <boost/asio/detail/handler_alloc_helpers.hpp>
#include <boost/asio/detail/handler_work.hpp>
#include <boost/asio/detail/reactive_socket_service_base.hpp>
#include <boost/asio/detail/reactor.hpp>
#include <boost/asio/detail/reactor_op.hpp>

#include "pgweir/net/asio.hpp"

namespace pgweir::net::detail {

namespace ad = boost::asio::detail;

// Names two protected parts of Asio's socket types: the socket's implementation, and the per-operation
// cancellation hook the reactive socket service installs. Never instantiated.
struct SocketAccess : Socket {
  static auto& implementation(Socket& s) { return (s.*(&SocketAccess::impl_)).get_implementation(); }
};
struct CancellationAccess : ad::reactive_socket_service_base {
  using Cancellation = reactor_op_cancellation;
};

template <class Handler, class IoExecutor>
class DrainingRecvOp : public ad::reactor_op {
 public:
  BOOST_ASIO_DEFINE_HANDLER_PTR(DrainingRecvOp);

  DrainingRecvOp(int fd, char* data, std::size_t size, Handler& handler, const IoExecutor& io_ex)
      : ad::reactor_op(ErrorCode(), &DrainingRecvOp::do_perform, &DrainingRecvOp::do_complete),
        fd_(fd),
        data_(data),
        size_(size),
        handler_(std::move(handler)),
        work_(handler_, io_ex) {}

  static status do_perform(ad::reactor_op* base) {
    auto* o = static_cast<DrainingRecvOp*>(base);
    for (;;) {
      ssize_t n = ::recv(o->fd_, o->data_, o->size_, 0);
      if (n > 0) {
        o->bytes_transferred_ = static_cast<std::size_t>(n);
        // Fewer bytes than asked for: the socket is empty now.
        return o->bytes_transferred_ < o->size_ ? done_and_exhausted : done;
      }
      if (n == 0) {
        o->ec_ = asio::error::eof;
        return done_and_exhausted;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return not_done;
      o->ec_ = ErrorCode(errno, boost::system::system_category());
      return done;
    }
  }

  static void do_complete(void* owner, ad::operation* base, const ErrorCode&, std::size_t) {
    auto* o = static_cast<DrainingRecvOp*>(base);
    ptr p = {std::addressof(o->handler_), o, o};
    ad::handler_work<Handler, IoExecutor> w(std::move(o->work_));
    // The handler is moved out so the operation's memory is freed before the upcall.
    ad::binder2<Handler, ErrorCode, std::size_t> handler(o->handler_, o->ec_, o->bytes_transferred_);
    p.h = std::addressof(handler.handler_);
    p.reset();
    if (owner) w.complete(handler, handler.handler_);
  }

 private:
  int fd_;
  char* data_;
  std::size_t size_;
  Handler handler_;
  ad::handler_work<Handler, IoExecutor> work_;
};

// Starts a read of at most `size` bytes into `data` on the non-blocking plain socket `socket`, whose executor's
// reactor is `reactor`. Completes with (error, bytes); eof is asio::error::eof.
template <class Token>
auto async_draining_read(Socket& socket, ad::reactor& reactor, char* data, std::size_t size, Token&& token) {
  return asio::async_initiate<Token, void(ErrorCode, std::size_t)>(
      [](auto handler, Socket* s, ad::reactor* r, char* buf, std::size_t len) {
        using Handler = std::decay_t<decltype(handler)>;
        using Op = DrainingRecvOp<Handler, Socket::executor_type>;
        auto& impl = SocketAccess::implementation(*s);
        auto slot = asio::get_associated_cancellation_slot(handler);
        typename Op::ptr p = {std::addressof(handler), Op::ptr::allocate(handler), nullptr};
        p.p = new (p.v) Op(impl.socket_, buf, len, handler, s->get_executor());
        if (slot.is_connected()) {
          p.p->cancellation_key_ = &slot.template emplace<CancellationAccess::Cancellation>(
              r, &impl.reactor_data_, impl.socket_, ad::reactor::read_op);
        }
        r->start_op(ad::reactor::read_op, impl.socket_, impl.reactor_data_, p.p, false, true);
        p.v = p.p = nullptr;
      },
      token, &socket, &reactor, data, size);
}

}  // namespace pgweir::net::detail
