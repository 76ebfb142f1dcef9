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

class Signal;

// The waits on signals of one event loop that nothing else holds: a coroutine suspended on a Signal is held by the
// signal alone, and not by anything the io_context destroys, where a timer's pending wait is destroyed with its
// loop. A signal made `held_by_loop` joins the list of the loop it is waited on while a wait is pending, so that
// the loop's owner can let go of those coroutines before the io_context goes (a pool client still waiting for a
// server when the process exits, say). One list per event loop thread, bound on it; used on that thread, or after
// it has ended.
class SignalList {
 public:
  static void bind(SignalList* list) { current_ = list; }
  static SignalList* current() { return current_; }
  // Destroys the pending waits' handlers, and with them the waiting coroutines (their unwinding is posted to their
  // executor, as Asio does for any coroutine it drops). For a loop that no longer runs and whose io_context is
  // still there, to be destroyed after this.
  void abandon();

 private:
  friend class Signal;
  static inline thread_local SignalList* current_ = nullptr;
  Signal* head_ = nullptr;
};

class Signal {
 public:
  Signal() = default;
  explicit Signal(bool held_by_loop) : held_by_loop_(held_by_loop) {}
  Signal(const Signal&) = delete;
  Signal& operator=(const Signal&) = delete;
  ~Signal() { unlink(); }

  // Completes at the next notify(). One waiter at a time; a notify() that finds none is not remembered, so the
  // waiter looks at what it waits for before waiting.
  Task<void> wait() {
    return asio::async_initiate<const asio::use_awaitable_t<Executor>&, void()>(
        [this](Handler handler) {
          waiter_.emplace(std::move(handler));
          if (held_by_loop_) link(SignalList::current());
        },
        use_awaitable);
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
  friend class SignalList;
  using Handler = asio::async_result<asio::use_awaitable_t<Executor>, void()>::handler_type;
  std::optional<Handler> take() {
    unlink();
    return std::exchange(waiter_, std::nullopt);
  }
  void link(SignalList* list) {
    if (!list) return;
    list_ = list;
    next_ = list->head_;
    if (next_) next_->prev_ = this;
    list->head_ = this;
  }
  void unlink() {
    if (!list_) return;
    if (prev_) {
      prev_->next_ = next_;
    } else {
      list_->head_ = next_;
    }
    if (next_) next_->prev_ = prev_;
    list_ = nullptr;
    prev_ = next_ = nullptr;
  }
  // Destroyed with the signal if never notified: the waiting coroutine is then destroyed too (as a timer's pending
  // wait is when its loop goes away).
  std::optional<Handler> waiter_;
  bool held_by_loop_ = false;
  SignalList* list_ = nullptr;  // while a wait of a held_by_loop signal is pending
  Signal* prev_ = nullptr;
  Signal* next_ = nullptr;
};

inline void SignalList::abandon() {
  // Dropping one waiter may end others (its coroutine's frames own them): take the head again each time.
  while (head_) static_cast<void>(head_->take());
}

}  // namespace pgweir::net
