// read_message / read_startup_packet: exact-length reads with the declared length checked before buffering.
#include "pgweir/net/message_io.hpp"

#include <boost/asio/error.hpp>

#include <algorithm>
#include <optional>
#include <tuple>

#include "pgweir/core/limits.hpp"

namespace pgweir::net {
namespace {

Error io_error(const ErrorCode& ec) {
  if (ec == asio::error::eof) return make_error("connection closed");
  return make_error(ec.message());
}

// Reads one whole message or packet into `buffer`: `header` bytes first, from which `measure` tells its size (or
// why it is refused), then the rest; what was read beyond it goes back to the transport. `make` turns the frame
// into the result. One coroutine for both kinds, and a read straight from the socket is awaited here rather than
// through receive()'s coroutine: the frames a login holds while it waits for its client are this one and its
// caller's.
template <class Result, class Measure, class Make>
Task<Expected<Result>> read_frame(Transport& transport, std::string& buffer, std::size_t read_ahead,
                                  std::size_t header, Measure measure, Make make) {
  buffer.resize(std::max(read_ahead, header));
  std::size_t have = 0;
  std::size_t need = header;
  std::optional<std::size_t> size;  // the frame's, once its header is in
  for (;;) {
    while (have < need) {
      char* to = buffer.data() + have;
      std::size_t room = buffer.size() - have;
      std::tuple<ErrorCode, std::size_t> got;
      if (transport.reads_directly()) {
        ReadResult read;
        co_await transport.receive_into(to, room, read);
        got = read.take();
      } else {
        got = co_await transport.receive(to, room);
      }
      if (auto [ec, n] = got; ec) {
        co_return io_error(ec);
      } else {
        have += n;
      }
    }
    if (size) break;
    auto measured = measure(std::string_view(buffer.data(), have));
    if (!measured) co_return measured.error();  // nothing is given back: the connection is not read any further
    size = *measured;
    if (have >= *size) break;
    buffer.resize(*size);
    need = *size;
  }
  if (have > *size) transport.unread(std::string_view(buffer).substr(*size, have - *size));
  buffer.resize(*size);
  co_return make(std::string_view(buffer));
}

}  // namespace

Task<Expected<Message>> read_message(Transport& transport, std::string& buffer, std::uint32_t max_length,
                                     std::size_t read_ahead) {
  auto measure = [max_length](std::string_view have) -> Expected<std::size_t> {
    auto r = protocol::peek_frame(have, max_length);
    if (r.status != protocol::FrameStatus::ok) return make_error(r.error ? r.error : "invalid message length");
    return r.frame.size();
  };
  auto make = [](std::string_view frame) { return Message{frame[0], frame.substr(protocol::k_header_size)}; };
  return read_frame<Message>(transport, buffer, read_ahead, protocol::k_header_size, measure, make);
}

Task<Expected<std::string_view>> read_startup_packet(Transport& transport, std::string& buffer) {
  auto measure = [](std::string_view have) -> Expected<std::size_t> {
    auto r = protocol::peek_startup_frame(have);
    if (r.status != protocol::FrameStatus::ok) return make_error(r.error ? r.error : "invalid startup packet length");
    return std::size_t{r.length};
  };
  auto make = [](std::string_view packet) { return packet; };
  return read_frame<std::string_view>(transport, buffer, k_client_read_ahead, 4, measure, make);
}

}  // namespace pgweir::net
