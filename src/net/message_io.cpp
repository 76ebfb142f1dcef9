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

}  // namespace

Task<Expected<Message>> read_message(Transport& transport, std::string& buffer, std::uint32_t max_length) {
  buffer.resize(protocol::k_header_size);
  if (auto ec = co_await transport.read_exact(buffer.data(), protocol::k_header_size)) co_return io_error(ec);
  auto r = protocol::peek_frame(buffer, max_length);
  if (r.status != protocol::FrameStatus::ok)
    co_return make_error(r.error ? r.error : "invalid message length");
  buffer.resize(r.frame.size());
  if (r.frame.body_size() > 0) {
    if (auto ec = co_await transport.read_exact(buffer.data() + protocol::k_header_size, r.frame.body_size()))
      co_return io_error(ec);
  }
  co_return Message{r.frame.tag, std::string_view(buffer).substr(protocol::k_header_size)};
}

Task<Expected<std::string_view>> read_startup_packet(Transport& transport, std::string& buffer) {
  buffer.resize(4);
  if (auto ec = co_await transport.read_exact(buffer.data(), 4)) co_return io_error(ec);
  auto r = protocol::peek_startup_frame(buffer);
  if (r.status != protocol::FrameStatus::ok) co_return make_error(r.error ? r.error : "invalid startup packet length");
  buffer.resize(r.length);
  if (auto ec = co_await transport.read_exact(buffer.data() + 4, r.length - 4)) co_return io_error(ec);
  co_return std::string_view(buffer);
}

}  // namespace pgweir::net
