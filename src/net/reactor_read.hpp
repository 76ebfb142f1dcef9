// A socket read that waits inside Asio's epoll reactor and, after a read that drained the socket, lets the next
// one wait without a speculative recv.
//
// Asio 1.81's async_read_some tries a recv before it waits whenever the descriptor's `try_speculative_` flag is
// set, and the flag stays set after every ordinary read: so each wait for the next message costs a recv that
// returns EAGAIN (its async_wait costs an epoll_ctl(EPOLL_CTL_MOD) instead). This read reports a short read as
// "done and exhausted", which clears the flag at the moment of the recv, inside the reactor. The fd is registered
// edge-triggered, and Linux raises an edge for every arrival, so anything that arrives after that recv sets the
// flag again (or completes a queued read).
//
// A short read alone cannot tell whether the peer's FIN came with the data: the FIN then raises no edge of its
// own, and a read queued without trying would wait for ever. So the fd is also registered for EPOLLRDHUP, and a
// short read counts as draining only when the events the reactor last harvested for it carry no EPOLLRDHUP,
// EPOLLHUP or EPOLLERR. A FIN that arrives after that harvest raises an edge of its own.
//
// This uses Asio's reactor internals (boost/asio/detail), pinned to Boost 1.81 on Debian 12 and checked below;
// the transport uses it only for plain sockets.
#pragma once

#include <sys/epoll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstddef>
#include <memory>
#include <type_traits>
#include <utility>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/detail/handler_alloc_helpers.hpp>
#include <boost/asio/detail/handler_work.hpp>
#include <boost/asio/detail/reactive_socket_service_base.hpp>
#include <boost/asio/detail/reactor.hpp>
#include <boost/asio/detail/reactor_op.hpp>
#include <boost/asio/detail/reactive_wait_op.hpp>
#include <boost/version.hpp>

#include "pgweir/net/asio.hpp"
#include "plain_syscalls.hpp"

namespace pgweir::net::detail {

namespace ad = boost::asio::detail;

static_assert(std::is_same_v<ad::reactor, ad::epoll_reactor>, "the relay read is written for Asio's epoll reactor");
static_assert(BOOST_VERSION / 100 == 1081, "the relay read uses Asio 1.81's reactor internals: review it");

// Names two protected parts of Asio's socket types: the socket's implementation, and the per-operation
// cancellation hook the reactive socket service installs. Never instantiated.
struct SocketAccess : Socket {
  static auto& implementation(Socket& s) { return (s.*(&SocketAccess::impl_)).get_implementation(); }
};
struct CancellationAccess : ad::reactive_socket_service_base {
  using Cancellation = reactor_op_cancellation;
};

// The reactor's per-descriptor state is private. An explicit instantiation may name a private member (access is
// not checked there) and hands a pointer to it out through a friend function.
template <auto Member, class Tag>
struct ExposeMember {
  friend constexpr auto exposed(Tag) { return Member; }
};
// Each tag, then the member it names.
struct EpollFd { friend constexpr auto exposed(EpollFd); };
template struct ExposeMember<&ad::epoll_reactor::epoll_fd_, EpollFd>;
struct AllocateState { friend constexpr auto exposed(AllocateState); };
template struct ExposeMember<&ad::epoll_reactor::allocate_descriptor_state, AllocateState>;
struct TaskResult { friend constexpr auto exposed(TaskResult); };  // the events harvested, in the base operation
template struct ExposeMember<&ad::scheduler_operation::task_result_, TaskResult>;
struct StateReactor { friend constexpr auto exposed(StateReactor); };
template struct ExposeMember<&ad::epoll_reactor::descriptor_state::reactor_, StateReactor>;
struct StateFd { friend constexpr auto exposed(StateFd); };
template struct ExposeMember<&ad::epoll_reactor::descriptor_state::descriptor_, StateFd>;
struct RegisteredEvents { friend constexpr auto exposed(RegisteredEvents); };
template struct ExposeMember<&ad::epoll_reactor::descriptor_state::registered_events_, RegisteredEvents>;
struct TrySpeculative { friend constexpr auto exposed(TrySpeculative); };
template struct ExposeMember<&ad::epoll_reactor::descriptor_state::try_speculative_, TrySpeculative>;
struct StateShutdown { friend constexpr auto exposed(StateShutdown); };
template struct ExposeMember<&ad::epoll_reactor::descriptor_state::shutdown_, StateShutdown>;
struct AcceptorImpl { friend constexpr auto exposed(AcceptorImpl); };
template struct ExposeMember<&Acceptor::impl_, AcceptorImpl>;  // private in basic_socket_acceptor

inline auto& implementation(Socket& s) { return SocketAccess::implementation(s); }
inline auto& implementation(Acceptor& a) { return (a.*exposed(AcceptorImpl{})).get_implementation(); }

// Tells Asio that the socket's fd is its own, not shared with a duplicate: closing it then takes it out of the epoll
// set, and the reactor does not remove it first. Asio assumes that an fd given to assign() (an accepted socket, or
// one moved from another loop's reactor) may have a duplicate, and removes it with an EPOLL_CTL_DEL before the
// close: a syscall per connection.
inline void mark_sole_owner(Socket& socket) {
  SocketAccess::implementation(socket).state_ &= static_cast<ad::socket_ops::state_type>(~ad::socket_ops::possible_dup);
}

using Descriptor = ad::epoll_reactor::per_descriptor_data;

// The epoll events last harvested for the descriptor (the reactor keeps them in the operation it queues for the
// descriptor). The C-style cast reaches descriptor_state's private base.
inline unsigned harvested_events(Descriptor d) { return ((ad::scheduler_operation*)d)->*exposed(TaskResult{}); }

// Adds EPOLLRDHUP to the socket's registration. Runs on the socket's event loop thread, like everything else that
// touches the descriptor; a socket the reactor does not poll is left alone.
inline void watch_peer_shutdown(Socket& socket, ad::epoll_reactor& reactor) {
  auto& impl = SocketAccess::implementation(socket);
  Descriptor d = impl.reactor_data_;
  if (!d) return;
  auto& registered = d->*exposed(RegisteredEvents{});
  if (registered == 0 || (registered & EPOLLRDHUP) != 0) return;
  epoll_event ev{};
  ev.events = registered | EPOLLRDHUP;
  ev.data.ptr = d;
  if (::epoll_ctl(reactor.*exposed(EpollFd{}), EPOLL_CTL_MOD, impl.socket_, &ev) != 0) return;
  registered = ev.events;
  // The events last harvested for the descriptor may be another socket's: Asio reuses descriptor states, and does
  // not clear them. An EPOLLRDHUP left by the connection that last had the state made every first short read here
  // look undrained (a recv that returns EAGAIN per login). Nothing is lost by clearing them: EPOLL_CTL_MOD re-arms
  // the fd, so whatever is true of it now is reported again at the next epoll_wait.
  ((ad::scheduler_operation*)d)->*exposed(TaskResult{}) = 0;
}

// Gives `socket` (not open, on `reactor`'s event loop) the open fd `fd` of an idle connection that no reactor polls
// any more (a server connection moved from another loop's reactor), with the state bits and protocol it had there.
// What Asio's assign() does, less two system calls per move:
// - EPOLLRDHUP is in the registration from the start, where watch_peer_shutdown() would add it with an
//   EPOLL_CTL_MOD at the first read;
// - the first read does not try a recv before it waits (Asio's registration sets the speculative flag, and that
//   recv finds the idle socket empty). Nothing can be missed: EPOLL_CTL_ADD checks the fd's readiness, so what is
//   already in the socket is reported at the next epoll_wait, like anything that arrives later.
// Runs on the reactor's thread. On failure (the kernel refused the registration) the fd is left to the caller.
inline ErrorCode register_idle(Socket& socket, ad::epoll_reactor& reactor, int fd, ad::socket_ops::state_type state,
                               const Socket::protocol_type& protocol) {
  Descriptor d = (reactor.*exposed(AllocateState{}))();
  d->*exposed(StateReactor{}) = &reactor;
  d->*exposed(StateFd{}) = fd;
  d->*exposed(StateShutdown{}) = false;
  auto& speculative = d->*exposed(TrySpeculative{});
  for (auto& flag : speculative) flag = true;
  speculative[ad::reactor::read_op] = false;
  ((ad::scheduler_operation*)d)->*exposed(TaskResult{}) = 0;  // what the state's last user had harvested
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLPRI | EPOLLET | EPOLLRDHUP;
  ev.data.ptr = d;
  d->*exposed(RegisteredEvents{}) = ev.events;
  if (::epoll_ctl(reactor.*exposed(EpollFd{}), EPOLL_CTL_ADD, fd, &ev) != 0) {
    ErrorCode ec(errno, boost::system::system_category());
    reactor.cleanup_descriptor_data(d);
    return ec;
  }
  auto& impl = SocketAccess::implementation(socket);
  impl.socket_ = fd;
  impl.state_ = state;
  impl.reactor_data_ = d;
  impl.protocol_ = protocol;
  return {};
}

// Gives `socket` (not open) the open fd `fd` without registering it with any reactor: for a loop whose plain
// sockets wait in its io_uring (include/pgweir/net/ring.hpp). Asio's operations on such a socket are never started;
// its cancel and close find no registration and skip it.
inline void adopt_unregistered(Socket& socket, int fd, ad::socket_ops::state_type state,
                               const Socket::protocol_type& protocol) {
  auto& impl = SocketAccess::implementation(socket);
  impl.socket_ = fd;
  impl.state_ = state;
  impl.reactor_data_ = nullptr;
  impl.protocol_ = protocol;
}

// The state bits and protocol a socket was opened or assigned with, as the socket keeps them (asking the kernel,
// local_endpoint(), costs a getsockname); the fd is the socket's alone (see mark_sole_owner).
inline std::pair<ad::socket_ops::state_type, Socket::protocol_type> socket_kind(Socket& socket) {
  auto& impl = SocketAccess::implementation(socket);
  return {static_cast<ad::socket_ops::state_type>(impl.state_ & ~ad::socket_ops::possible_dup), impl.protocol_};
}

inline bool is_registered(Socket& socket) { return SocketAccess::implementation(socket).reactor_data_ != nullptr; }

// The read itself, shared by the two operations below: what they differ in is how they complete.
class DrainingRecvBase : public ad::reactor_op {
 protected:
  DrainingRecvBase(int fd, Descriptor descriptor, char* data, std::size_t size, ad::operation::func_type complete)
      : ad::reactor_op(ErrorCode(), &DrainingRecvBase::do_perform, complete),
        fd_(fd),
        descriptor_(descriptor),
        data_(data),
        size_(size) {}

  static status do_perform(ad::reactor_op* base) {
    auto* o = static_cast<DrainingRecvBase*>(base);
    for (;;) {
      ssize_t n = plain_recv(o->fd_, o->data_, o->size_, MSG_DONTWAIT);
      if (n > 0) {
        o->bytes_transferred_ = static_cast<std::size_t>(n);
        // Fewer bytes than asked for: the socket held no more data, and unless the peer's FIN or an error was
        // harvested with them, nothing is left that will not raise an edge of its own.
        if (o->bytes_transferred_ < o->size_ && (o->descriptor_->*exposed(RegisteredEvents{}) & EPOLLRDHUP) != 0 &&
            (harvested_events(o->descriptor_) & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) == 0)
          return done_and_exhausted;
        return done;
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

 private:
  int fd_;
  Descriptor descriptor_;
  char* data_;
  std::size_t size_;
};

// For any handler: completes through the handler's executor, as Asio's own operations do.
template <class Handler, class IoExecutor>
class DrainingRecvOp : public DrainingRecvBase {
 public:
  BOOST_ASIO_DEFINE_HANDLER_PTR(DrainingRecvOp);

  DrainingRecvOp(int fd, Descriptor descriptor, char* data, std::size_t size, Handler& handler,
                 const IoExecutor& io_ex)
      : DrainingRecvBase(fd, descriptor, data, size, &DrainingRecvOp::do_complete),
        handler_(std::move(handler)),
        work_(handler_, io_ex) {}

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
  Handler handler_;
  ad::handler_work<Handler, IoExecutor> work_;
};

// For a handler whose executor is the socket's own event loop: the reactor completes operations on that loop's
// thread, so the handler is called right there. Asio's handler_work would count the handler as outstanding work
// (two atomic updates), then look up the thread's call stack and fence memory before calling it in the same place.
template <class Handler>
class LocalRecvOp : public DrainingRecvBase {
 public:
  BOOST_ASIO_DEFINE_HANDLER_PTR(LocalRecvOp);

  LocalRecvOp(int fd, Descriptor descriptor, char* data, std::size_t size, Handler& handler)
      : DrainingRecvBase(fd, descriptor, data, size, &LocalRecvOp::do_complete), handler_(std::move(handler)) {}

  static void do_complete(void* owner, ad::operation* base, const ErrorCode&, std::size_t) {
    auto* o = static_cast<LocalRecvOp*>(base);
    ptr p = {std::addressof(o->handler_), o, o};
    Handler handler(std::move(o->handler_));
    ErrorCode ec = o->ec_;
    std::size_t bytes = o->bytes_transferred_;
    p.h = std::addressof(handler);
    p.reset();
    if (owner) handler(ec, bytes);
  }

 private:
  Handler handler_;
};

// Allocates an Op (constructed from `args`), hooks it to the handler's cancellation slot and queues it as a read
// on the reactor for the I/O object whose implementation is `impl`.
template <class Op, class Impl, class Handler, class... Args>
void queue_read_op(Impl& impl, ad::reactor& reactor, Handler& handler, Args&&... args) {
  auto slot = asio::get_associated_cancellation_slot(handler);
  typename Op::ptr p = {std::addressof(handler), Op::ptr::allocate(handler), nullptr};
  p.p = new (p.v) Op(std::forward<Args>(args)...);
  if (slot.is_connected()) {
    p.p->cancellation_key_ = &slot.template emplace<CancellationAccess::Cancellation>(
        &reactor, &impl.reactor_data_, impl.socket_, ad::reactor::read_op);
  }
  reactor.start_op(ad::reactor::read_op, impl.socket_, impl.reactor_data_, p.p, false, true);
  p.v = p.p = nullptr;
}

// Starts a read of at most `size` bytes into `data` on the plain socket `socket` (read with MSG_DONTWAIT), whose
// executor's reactor is `reactor`; `handler` is called with (error, bytes), eof being asio::error::eof.
// When the handler's executor is the socket's, the handler is called from the reactor's completion directly.
// The reactor tries the read at once unless the last one drained the socket.
template <class Handler>
void start_draining_read(Socket& socket, ad::reactor& reactor, char* data, std::size_t size, Handler handler) {
  auto& impl = SocketAccess::implementation(socket);
  if constexpr (std::is_same_v<asio::associated_executor_t<Handler>, Socket::executor_type>) {
    if (asio::get_associated_executor(handler) == socket.get_executor()) {
      queue_read_op<LocalRecvOp<Handler>>(impl, reactor, handler, impl.socket_, impl.reactor_data_, data, size,
                                          handler);
      return;
    }
  }
  queue_read_op<DrainingRecvOp<Handler, Socket::executor_type>>(impl, reactor, handler, impl.socket_,
                                                                 impl.reactor_data_, data, size, handler,
                                                                 socket.get_executor());
}

// The same read, for any completion token.
template <class Token>
auto async_draining_read(Socket& socket, ad::reactor& reactor, char* data, std::size_t size, Token&& token) {
  return asio::async_initiate<Token, void(ErrorCode, std::size_t)>(
      [](auto handler, Socket* s, ad::reactor* r, char* buf, std::size_t len) {
        start_draining_read(*s, *r, buf, len, std::move(handler));
      },
      token, &socket, &reactor, data, size);
}

// Waits until the socket has input again, after a read that found it empty (a TLS read that ended in
// SSL_ERROR_WANT_READ: OpenSSL's last recv returned EAGAIN), or until a listening socket has a connection queued
// after an accept that found none. socket.async_wait would re-arm the fd with
// EPOLL_CTL_MOD, so that readiness the reactor already harvested is reported again. That cannot be needed here:
// the read just emptied the socket, and anything arriving after it raises an edge of its own. So the wait is
// queued as it is, without a speculative check and without re-arming the fd. Runs on the socket's event loop thread,
// like the reactor, which is what makes clearing the descriptor's speculative flag safe.
template <class IoObject, class Token>
auto async_wait_after_empty_read(IoObject& socket, ad::reactor& reactor, Token&& token) {
  return asio::async_initiate<Token, void(ErrorCode)>(
      [](auto handler, IoObject* s, ad::reactor* r) {
        using Handler = std::decay_t<decltype(handler)>;
        auto& impl = implementation(*s);
        if (Descriptor d = impl.reactor_data_) (d->*exposed(TrySpeculative{}))[ad::reactor::read_op] = false;
        queue_read_op<ad::reactive_wait_op<Handler, typename IoObject::executor_type>>(impl, *r, handler, ErrorCode(),
                                                                                      handler, s->get_executor());
      },
      token, &socket, &reactor);
}

}  // namespace pgweir::net::detail
