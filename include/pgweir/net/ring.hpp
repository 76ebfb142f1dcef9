// An io_uring beside a worker's Asio loop (server.io = "io_uring"): the plain sockets' reads and waits go through
// it, and the worker sleeps in io_uring_enter instead of epoll_wait.
//
// With epoll, a relay read costs an epoll_wait (shared by what it reports) and a recv of its own. Here a read is a
// queued request; the worker submits everything it queued and waits for the next completions in one system call,
// so a turn of the loop that completes reads costs one io_uring_enter in all (bench/RESULTS.md, workload h). The
// ring is created with IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN: its completions are delivered when
// the worker enters the kernel to wait for them, never by interrupting it.
//
// Asio keeps everything else: accepts, timers, TLS sockets, posted work. Its epoll descriptor is watched by a
// multishot poll in the ring; when it is readable, or when Asio has handlers queued, the ring's pump (itself a
// handler of the loop) returns so that Asio takes its turn, and is posted again behind it. A handler posted from
// another thread reaches a worker asleep in the ring through Asio's own interrupter, which the pump re-enables before
// it sleeps. This reaches into Asio 1.81's scheduler (boost/asio/detail), as src/net/reactor_read.hpp does into its
// reactor.
//
// Plain sockets of a loop with a ring are not registered with its epoll set at all (an arrival there would wake
// the loop twice). A socket that turns to TLS is registered then, and is Asio's from there on.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/execution_context.hpp>
#include <boost/intrusive/list.hpp>

#include "pgweir/net/asio.hpp"

namespace pgweir::net {

// One request in the ring. The ring does not own it: `complete` is called once with the kernel's result (a byte
// count or -errno), or with `destroyed` when the ring goes with the request pending (the loop is being destroyed),
// and decides what becomes of the object.
struct RingOp {
  using Complete = void (*)(RingOp* op, int result, bool destroyed);
  explicit RingOp(Complete c) : complete(c) {}
  RingOp(const RingOp&) = delete;
  RingOp& operator=(const RingOp&) = delete;

  Complete complete;
  // The slot of the Transport that names this request (to cancel it), cleared when the request completes or when
  // the transport lets go of it.
  RingOp** owner = nullptr;
  // A cancellation of it is queued (cancel() is asked once).
  bool cancel_sent = false;
  // Its transport was closed: completes as operation_aborted whatever the kernel reports, so that a read that took
  // data just as the connection was closed does not hand that data on. (A cancel() alone leaves the result as it
  // is: data a read took is never dropped.)
  bool abandoned = false;
  // Counts the requests made with this object, and goes into the request's user_data beside its address, so that a
  // cancellation meant for an earlier request made with the same object (ops are recycled) never matches this one.
  // Submission order already keeps them apart (a cancellation queued before a request is submitted before it);
  // this does not depend on the kernel taking them in that order.
  std::uint16_t generation = 0;
  boost::intrusive::list_member_hook<boost::intrusive::link_mode<boost::intrusive::normal_link>> hook;
};

class Ring : public asio::execution_context::service {
 public:
  using key_type = Ring;
  static inline asio::execution_context::id id;

  // Makes the ring of `io`'s loop (created on the thread that will run the loop, before it runs). On failure
  // (the kernel has no io_uring, or it is disabled, or pgweir was built without liburing) returns the reason and
  // adds nothing.
  static std::string create(asio::io_context& io);
  // The ring of the loop `executor` belongs to, or null when that loop has none.
  static Ring* of(const Executor& executor);
  // Whether this build and this kernel can make a ring (makes one and closes it).
  static std::string probe();

  explicit Ring(asio::execution_context& context);
  ~Ring() override;

  // Queues a recv of at most `size` bytes into `data`, a poll for `events` (POLLIN, POLLOUT...), or the
  // cancellation of a pending request. Submitted with the loop's next wait (just before it, with the sends, when a
  // send is queued too).
  void recv(int fd, char* data, std::size_t size, RingOp* op);
  // Queues a send. Sends are submitted on their own before the loop waits (see Ring::pump).
  void send(int fd, const char* data, std::size_t size, RingOp* op);
  void poll(int fd, unsigned events, RingOp* op);
  // Completes `op` after `after` (or when cancelled, with -ECANCELED).
  void timeout(std::chrono::milliseconds after, RingOp* op);
  void cancel(RingOp* op);
  // Hands what is queued to the kernel now, rather than with the loop's next wait.
  void submit();
  // Shut down with its loop, or called off the loop's thread: requests are refused (completed at once as
  // destroyed), cancellations and submissions skipped.
  bool closed() const;

 private:
  struct State;
  void shutdown() override;
  void start(asio::io_context& io);
  void pump();
  void reap();
  void watch_reactor();
  bool asio_has_work();
  bool refuse(RingOp* op);
  bool refusing() const;
  void* next_sqe();
  void* begin(RingOp* op);
  void submitted();
  std::unique_ptr<State> state_;
};

}  // namespace pgweir::net
