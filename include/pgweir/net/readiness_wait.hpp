// A wait for a plain socket to become readable whose operation is an object of the caller's: the parked session
// keeps one as a member, so a park allocates nothing and the wait costs under 100 bytes instead of the 200 of
// socket.async_wait's operation (which carries two type-erased executors). Like the relay read, it uses Asio
// 1.81's reactor internals (src/net/reactor_read.hpp); it is for plain sockets on Asio's epoll reactor.
#pragma once

#include <cstddef>

#include <boost/asio/detail/reactor_op.hpp>

#include "pgweir/net/asio.hpp"
#include "pgweir/net/ring.hpp"

namespace pgweir::net {

class Transport;

class ReadinessWait : private boost::asio::detail::reactor_op {
 public:
  // Called once per start(), on the socket's event loop; `destroyed` when the loop is being destroyed with the
  // wait pending. The wait may be started again from the callback, or its owner destroyed there.
  using Callback = void (*)(void* context, bool destroyed);
  ReadinessWait(Callback callback, void* context);
  ReadinessWait(const ReadinessWait&) = delete;
  ReadinessWait& operator=(const ReadinessWait&) = delete;

  // Completes when the plain `transport` has input (or already had it), has hung up or failed, or when its
  // operations are cancelled (Transport::cancel()). Costs no system call when its last read drained it and nothing
  // has arrived since (Transport::receive); otherwise one peek. Completing on the reactor's report of input costs
  // none either: the reader's recv is the first. On a loop with a ring it is a poll request there, submitted with
  // the loop's next wait.
  void start(Transport& transport);

 private:
  // Whether the socket has input, has hung up or failed: at start, a non-blocking one-byte peek; afterwards the
  // reactor calls it only for input, hang-up or error events (epoll's EPOLLIN, EPOLLHUP, EPOLLERR), and each of
  // those is something for the reader to see. An event the reactor harvested before a draining read took the
  // data it announced can still reach a wait started after that read: the client then resumes, finds nothing to
  // read and waits again, as a client that was never parked does.
  static status perform(reactor_op* base);
  static void complete(void* owner, boost::asio::detail::operation* base, const ErrorCode&, std::size_t);
  Callback callback_;
  void* context_;
  int fd_ = -1;
  bool starting_ = false;  // perform() called from start(): peek
  // On a loop with a ring (net/ring.hpp): the wait is a poll request there, completed by the ring's pump.
  struct InRing : RingOp {
    explicit InRing(ReadinessWait* w) : RingOp(&InRing::done), wait(w) {}
    static void done(RingOp* op, int result, bool destroyed);
    ReadinessWait* wait;
  };
  InRing in_ring_{this};
};

}  // namespace pgweir::net
