// Completion handlers that resume a suspended Task directly, for the waits the relay makes once or twice per
// transaction: a read from a plain socket and a Signal's wake-up.
//
// `co_await`ing an operation started with use_awaitable runs Asio's initiation as a coroutine of its own (a frame
// allocated, resumed, given the result and destroyed per operation), between the awaiting Task and the handler.
// Here the awaiting Task hands its suspended stack straight to the handler, through the hook Asio's coroutine
// frame offers for this (await_transform of a function of the frame, which Asio runs right after the suspension),
// and the handler resumes that stack with the result already stored where the Task can see it. The handler is a
// thread of Asio's coroutines like use_awaitable's: the same executor and cancellation slot, the same unwinding
// if it is destroyed without being called. This reaches into boost/asio/detail and is pinned to Boost 1.81.
#pragma once

#include <cstddef>
#include <tuple>
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/version.hpp>

#include "pgweir/net/asio.hpp"

namespace pgweir::net {

static_assert(BOOST_VERSION / 100 == 1081, "net/resume.hpp uses Asio 1.81's coroutine internals: review it");

using CoroutineFrame = asio::detail::awaitable_frame_base<Executor>;
using CoroutineThread = asio::detail::awaitable_thread<Executor>;

// The handlers are the ones Asio itself makes when a Task awaits an asynchronous operation object: given the
// suspended stack, they resume it when called. Resumer takes no arguments.
using Resumer = asio::detail::awaitable_async_op_handler<void(), Executor>;
inline Resumer make_resumer(CoroutineFrame* frame) {
  Resumer::result_type none;  // nothing to store: not kept
  return Resumer(frame->detach_thread(), none);
}

// A read's result, as the handler hands it over: pointers to its arguments, valid while the resumed Task runs until
// its next suspension. take() copies them out at once.
struct ReadResult {
  using Resumer = asio::detail::awaitable_async_op_handler<void(ErrorCode, std::size_t), Executor>;
  Resumer::result_type slots{};
  std::tuple<ErrorCode, std::size_t> take() const { return {*slots.ec_, *slots.value_}; }
};
inline ReadResult::Resumer make_read_resumer(CoroutineFrame* frame, ReadResult& result) {
  return ReadResult::Resumer(frame->detach_thread(), result.slots);
}

// A wait's result (an error code alone), as the handler hands it over; valid like ReadResult's.
struct WaitResult {
  using Resumer = asio::detail::awaitable_async_op_handler<void(ErrorCode), Executor>;
  Resumer::result_type slot = nullptr;
  ErrorCode take() const { return *slot; }
};
inline WaitResult::Resumer make_wait_resumer(CoroutineFrame* frame, WaitResult& result) {
  return WaitResult::Resumer(frame->detach_thread(), result.slot);
}

// `co_await suspend_into(start)` suspends the calling Task and calls `start(frame)`, which must hand the frame to a
// resumer (make_resumer, make_read_resumer) that some later event calls. Asio calls `start` after the suspension
// is complete, so the resumer may be called at once, on this thread or another.
template <class Start>
auto suspend_into(Start start) {
  return [start = std::move(start)](CoroutineFrame* frame) mutable -> CoroutineThread* {
    start(frame);
    return nullptr;
  };
}

}  // namespace pgweir::net
