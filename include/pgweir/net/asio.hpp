// The Asio names pgweir's I/O code uses, in one place.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/error_code.hpp>

namespace pgweir::net {

namespace asio = boost::asio;
using Executor = asio::any_io_executor;
template <class T = void>
using Task = asio::awaitable<T>;
using ErrorCode = boost::system::error_code;
using Socket = asio::generic::stream_protocol::socket;
using Endpoint = asio::generic::stream_protocol::endpoint;
using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;

inline constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

}  // namespace pgweir::net
