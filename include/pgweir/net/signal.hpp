// A wake-up for one coroutine, from code on the same event loop: what a steady_timer kept at max() and cancelled
// does, without the timer queue, its lock and an operation allocated per wait. The relay's server pump waits on
// one for its next server once per transaction.
#pragma once

#include <optional>
#include <utility>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "pgweir/net/asio.hpp"

namespace pgweir::net {

class Signal {
 public:
  Signal() = default;
  Signal(const Signal&) = delete;
  Signal& operator=(const Signal&) = delete;

  // Completes at the next notify(). One waiter at a time; a notify() that finds none is not remembered, so the
  // waiter looks at what it waits for before waiting.
  Task<void> wait() {
    return asio::async_initiate<const asio::use_awaitable_t<Executor>&, void()>(
        [this](Handler handler) { waiter_.emplace(std::move(handler)); }, use_awaitable);
  }

  // Resumes the waiter, if any, through its event loop's queue (never from inside this call).
  void notify() {
    if (auto handler = take()) asio::post(std::move(*handler));
  }

  // Resumes the waiter, if any, inside this call when called on its event loop (otherwise as notify()): it runs
  // until it next waits, then this returns. For a caller whose state is settled at this point. It saves the trip
  // through the queue, which, with the reactor's turn ahead in it, cost an epoll_wait that finds nothing.
  void notify_here() {
    if (auto handler = take()) asio::dispatch(std::move(*handler));
  }

 private:
  using Handler = asio::async_result<asio::use_awaitable_t<Executor>, void()>::handler_type;
  std::optional<Handler> take() { return std::exchange(waiter_, std::nullopt); }
  // Destroyed with the signal if never notified: the waiting coroutine is then destroyed too (as a timer's pending
  // wait is when its loop goes away).
  std::optional<Handler> waiter_;
};

}  // namespace pgweir::net
