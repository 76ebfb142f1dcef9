// A wake-up for one coroutine, from code on the same event loop: what a steady_timer kept at max() and cancelled
// does, without the timer queue, its lock and an operation allocated per wait. The relay's server pump waits on
// one for its next server once per transaction, and a pool client waiting for a server on its pool::Waiter's.
#pragma once

#include <optional>
#include <utility>

#include <boost/asio/post.hpp>
#include <boost/intrusive/list.hpp>

#include "pgweir/net/asio.hpp"
#include "pgweir/net/resume.hpp"

namespace pgweir::net {

// A wake-up for one coroutine (see the top of this file). A signal made `held_by_loop` is, while a wait is
// pending, on the SignalList of the event loop it is waited on (below).
class Signal {
 public:
  Signal() = default;
  explicit Signal(bool held_by_loop) : held_by_loop_(held_by_loop) {}
  Signal(const Signal&) = delete;
  Signal& operator=(const Signal&) = delete;

  // `co_await signal.wait()` completes at the next notify(). One waiter at a time; a notify() that finds none is
  // not remembered, so the waiter looks at what it waits for before waiting. The waiting Task is resumed by the
  // handler itself (net/resume.hpp), without a coroutine frame of Asio's per wait.
  auto wait() {
    return suspend_into([this](CoroutineFrame* frame) { hold(frame); });
  }

  // Resumes the waiter, if any, through its event loop's queue (never from inside this call).
  void notify() {
    if (auto handler = take()) asio::post(std::move(*handler));
  }

  // Resumes the waiter, if any, inside this call when called on its event loop (otherwise as notify()): it runs
  // until it next waits, then this returns. For a caller whose state is settled at this point. It saves the trip
  // through the queue, which, with the reactor's turn ahead in it, cost an epoll_wait that finds nothing.
  void notify_here() {
    if (auto handler = take()) {
      // What asio::dispatch would do, without its memory fence and second look at the thread.
      if (handler->get_executor().running_in_this_thread()) {
        (*handler)();
      } else {
        asio::post(std::move(*handler));
      }
    }
  }

 private:
  friend class SignalList;
  using Handler = Resumer;
  using Hook = boost::intrusive::list_member_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>>;
  void hold(CoroutineFrame* frame);
  std::optional<Handler> take() {
    hook_.unlink();
    return std::exchange(waiter_, std::nullopt);
  }
  // Destroyed with the signal if never notified: the waiting coroutine is then destroyed too (as a timer's pending
  // wait is when its loop goes away).
  std::optional<Handler> waiter_;
  bool held_by_loop_ = false;
  Hook hook_;  // on the loop's SignalList while a wait of a held_by_loop signal is pending
};

// The waits on signals of one event loop that nothing else holds: a coroutine suspended on a Signal is held by the
// signal alone, and not by anything the io_context destroys, where a timer's pending wait is destroyed with its
// loop. So that the loop's owner can let go of those coroutines before the io_context goes (a pool client still
// waiting for a server when the process exits, say), a `held_by_loop` signal's pending wait is on this list. One
// list per event loop thread, bound on it; used on that thread, or after it has ended.
class SignalList {
 public:
  static void bind(SignalList* list) { current_ = list; }
  static SignalList* current() { return current_; }
  // Destroys the pending waits' handlers, and with them the waiting coroutines (their unwinding is posted to their
  // executor, as Asio does for any coroutine it drops). For a loop that no longer runs and whose io_context is
  // still there, to be destroyed after this. Dropping one wait may end others: the front is taken each time.
  void abandon() {
    while (!waits_.empty()) static_cast<void>(waits_.front().take());
  }

 private:
  friend class Signal;
  static inline thread_local SignalList* current_ = nullptr;
  boost::intrusive::list<Signal, boost::intrusive::member_hook<Signal, Signal::Hook, &Signal::hook_>,
                         boost::intrusive::constant_time_size<false>>
      waits_;
};

inline void Signal::hold(CoroutineFrame* frame) {
  waiter_.emplace(make_resumer(frame));
  if (held_by_loop_)
    if (SignalList* list = SignalList::current()) list->waits_.push_back(*this);
}

}  // namespace pgweir::net
