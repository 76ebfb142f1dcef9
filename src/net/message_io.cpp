// read_message / read_startup_packet: exact-length reads with the declared length checked before buffering.
#include "pgweir/net/message_io.hpp"

#include <boost/asio/error.hpp>

#include "pgweir/core/limits.hpp"

namespace pgweir::net {
namespace {

Error io_error(const ErrorCode& ec) {
  if (ec == asio::error::eof) return make_error("connection closed");
  return make_error(ec.message());
}

// Reads into `buffer` until it holds at least `need` bytes (at most its size), from `have`.
Task<ErrorCode> read_at_least(Transport& transport, std::string& buffer, std::size_t& have, std::size_t need) {
  while (have < need) {
    auto [ec, n] = co_await transport.receive(buffer.data() + have, buffer.size() - have);
    if (ec) co_return ec;
    have += n;
  }
  co_return ErrorCode{};
}

// `buffer` holds `have` bytes read, of which the first `size` are one whole message or packet: what follows goes
// back to the transport, and what is missing is read.
Task<ErrorCode> complete_frame(Transport& transport, std::string& buffer, std::size_t have, std::size_t size) {
  if (have > size) {
    transport.unread(std::string_view(buffer).substr(size, have - size));
  } else if (have < size) {
    buffer.resize(size);
    if (auto ec = co_await read_at_least(transport, buffer, have, size)) co_return ec;
  }
  buffer.resize(size);
  co_return ErrorCode{};
}

}  // namespace

Task<Expected<Message>> read_message(Transport& transport, std::string& buffer, std::uint32_t max_length,
                                     std::size_t read_ahead) {
  buffer.resize(read_ahead);
  std::size_t have = 0;
  if (auto ec = co_await read_at_least(transport, buffer, have, protocol::k_header_size)) co_return io_error(ec);
  auto r = protocol::peek_frame(std::string_view(buffer.data(), have), max_length);
  if (r.status != protocol::FrameStatus::ok) {
    // Nothing is given back: the connection is not read any further.
    co_return make_error(r.error ? r.error : "invalid message length");
  }
  if (auto ec = co_await complete_frame(transport, buffer, have, r.frame.size())) co_return io_error(ec);
  co_return Message{r.frame.tag, std::string_view(buffer).substr(protocol::k_header_size)};
}

Task<Expected<std::string_view>> read_startup_packet(Transport& transport, std::string& buffer) {
  buffer.resize(k_client_read_ahead);
  std::size_t have = 0;
  if (auto ec = co_await read_at_least(transport, buffer, have, 4)) co_return io_error(ec);
  auto r = protocol::peek_startup_frame(std::string_view(buffer.data(), have));
  if (r.status != protocol::FrameStatus::ok) co_return make_error(r.error ? r.error : "invalid startup packet length");
  if (auto ec = co_await complete_frame(transport, buffer, have, r.length)) co_return io_error(ec);
  co_return std::string_view(buffer);
}

}  // namespace pgweir::net
