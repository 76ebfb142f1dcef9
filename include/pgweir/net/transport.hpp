// One stream connection (TCP or unix socket), optionally TLS. Relay reads stay pending inside the reactor
// (receive); writes are gathered. Plain reads and writes pass MSG_DONTWAIT, so the fd need not be put in
// non-blocking mode (a system call per connection); a TLS connection's is, for OpenSSL.
// On a loop with an io_uring (server.io = "io_uring", net/ring.hpp) a plain connection is not in the epoll set:
// its reads, writes and waits are requests in the ring.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "pgweir/net/asio.hpp"
#include "pgweir/net/resume.hpp"
#include "pgweir/net/ring.hpp"

namespace boost::asio::detail {
class epoll_reactor;
}

namespace pgweir::net {

class Transport {
 public:
  explicit Transport(Socket socket);
  Transport(Transport&&) noexcept;
  Transport& operator=(Transport&&) noexcept;
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;
  ~Transport();

  Socket& socket() { return socket_; }
  int native_handle() { return socket_.native_handle(); }
  bool is_open() const { return socket_.is_open(); }
  bool is_tls() const { return ssl_ != nullptr; }
  SSL* ssl() const { return ssl_; }
  Executor executor() { return socket_.get_executor(); }

  // Waits until a read can make progress (returns at once when TLS holds decrypted bytes).
  Task<ErrorCode> wait_readable();
  // Reads at least one byte. eof is asio::error::eof.
  Task<std::tuple<ErrorCode, std::size_t>> read_some(char* data, std::size_t size);
  // The relay's read: like read_some, but on a plain connection the read itself waits in the reactor, which
  // registered the fd once (edge-triggered): a wait costs no epoll_ctl, where wait_readable re-arms the fd with
  // EPOLL_CTL_MOD on every call; and a read that follows one that drained the socket waits without first trying
  // a recv that would return EAGAIN (src/net/reactor_read.hpp). `data` must stay valid while the read is pending.
  Task<std::tuple<ErrorCode, std::size_t>> receive(char* data, std::size_t size);
  // receive() for a plain connection that holds nothing unread, without a coroutine frame per read (see
  // net/resume.hpp): `co_await transport.receive_into(data, size, result)` when reads_directly(). On a loop with a
  // ring (net/ring.hpp) the read is a recv queued in the ring.
  bool reads_directly() const { return ssl_ == nullptr && unread_ == nullptr; }
  auto receive_into(char* data, std::size_t size, ReadResult& result) {
    return suspend_into([this, data, size, &result](CoroutineFrame* frame) {
      start_receive(data, size, make_read_resumer(frame, result));
    });
  }
  // Reads exactly size bytes.
  Task<ErrorCode> read_exact(char* data, std::size_t size);
  // Writes every buffer completely. On a loop with a ring the bytes are queued when write_all is called, not when
  // its Task is awaited (both write_alls): await it at once, as every caller does.
  Task<ErrorCode> write_all(std::span<const asio::const_buffer> buffers);
  // One gathered write of what the socket takes now, without waiting and without a coroutine: the relay's first
  // try, which usually writes everything. Returns the bytes written (a TLS connection takes none here); `ec` is
  // set on an error other than would-block. On a loop with a ring the bytes are copied to the connection's send
  // queue, which the ring sends in order: all are taken, or none while the queue holds more than
  // k_ring_send_backlog (write_all then waits for it); an error of a queued send is reported by the next write.
  std::size_t write_now(std::span<const asio::const_buffer> buffers, ErrorCode& ec);
  static constexpr std::size_t k_ring_send_backlog = 64 * 1024;
  // A write is still on its way to the kernel (ring sends only).
  bool sending() const { return send_op_ != nullptr; }
  // Waits until the kernel has taken every byte written; the error of a write that failed, if any.
  Task<ErrorCode> flush();
  Task<ErrorCode> write_all(std::string_view bytes);

  // Takes ownership of `ssl` and runs the handshake as server or client on this connection's fd.
  Task<ErrorCode> tls_handshake(SSL* ssl, bool server);
  // True when decrypted or raw bytes are already buffered (e.g. bytes that arrived after an SSLRequest).
  bool has_buffered_input();
  // Gives back bytes read past the end of a message (message_io's reads read ahead): the next reads return them
  // first. Not while a read is pending; a TLS handshake refuses to start while any are held.
  void unread(std::string_view bytes);
  bool has_unread() const { return unread_ != nullptr; }
  // For a connection that sat idle: false when the peer closed it or sent something unasked (an idle server
  // that was terminated sends its FATAL and closes). One non-blocking peek.
  bool idle_and_open();

  // The socket's reactor, looked up at the first call, which also adds EPOLLRDHUP to the fd's registration (see
  // src/net/reactor_read.hpp). For plain sockets' reads and TLS sockets' waits after an empty read.
  asio::detail::epoll_reactor& reactor();

  // Moves the fd to another executor. Only while no operation is pending.
  void rehome(const Executor& executor);
  // Ends the pending reads and waits (a relay read, a park's wait, a write's wait) with operation_aborted; a read
  // that took data before the cancellation reached it completes with the data.
  void cancel();
  // Best-effort close: TLS close_notify is not awaited. What is pending completes with operation_aborted.
  void close();

  // The loop's ring, while this connection's waits go through it (plain, on a loop with a ring).
  Ring* ring() const { return ring_; }
  // The slot a read or read-readiness wait pending in the ring occupies (net::ReadinessWait starts one).
  RingOp*& ring_read_slot() { return read_op_; }

 private:
  Task<ErrorCode> wait(bool for_write);
  Task<ErrorCode> wait_for_tls(int result);
  Task<ErrorCode> write_one(std::string_view bytes);
  Task<ErrorCode> write_tls(std::span<const asio::const_buffer> buffers);
  Task<ErrorCode> write_gathered(std::span<const asio::const_buffer> buffers);
  Task<std::tuple<ErrorCode, std::size_t>> ring_receive(char* data, std::size_t size);
  void start_receive(char* data, std::size_t size, ReadResult::Resumer handler);
  // Takes the fd out of the loop's epoll set (a server connection Asio connected) or puts it in (a connection
  // turning to TLS).
  void leave_reactor();
  void enter_reactor();
  void adopt_ops(Transport& from);
  void abandon_ops();
  struct RingSend;
  void ring_enqueue(std::span<const asio::const_buffer> buffers, std::size_t skip);
  void wake_flushed(ErrorCode ec, bool posted);
  std::pair<ErrorCode, std::size_t> try_read(char* data, std::size_t size, bool& want_write);
  std::size_t take_unread(char* data, std::size_t size);
  // Input pgweir holds without the socket: bytes given back by unread(), or TLS bytes OpenSSL has read ahead
  // (SSL_has_pending, which unlike SSL_pending also counts records not yet decrypted).
  bool holds_input() const { return unread_ || (ssl_ && SSL_has_pending(ssl_) == 1); }

  Socket socket_;
  SSL* ssl_ = nullptr;
  asio::detail::epoll_reactor* reactor_ = nullptr;  // the socket's reactor, looked up at the first receive
  std::unique_ptr<std::string> unread_;             // given back by unread(); null when empty
  Ring* ring_ = nullptr;                            // see ring()
  RingOp* read_op_ = nullptr;                       // the read or read wait pending in the ring
  RingOp* write_op_ = nullptr;                      // the write wait pending in the ring
  RingSend* send_op_ = nullptr;                     // the ring send in flight, if any
  std::string send_queue_;                          // written while a send is in flight: the next send
  ErrorCode send_error_;                            // a ring send failed: later writes report it
  std::vector<WaitResult::Resumer> flush_waiters_;  // flush() and write_all() waiting for the sends to finish
};

// Gives `socket` (on its loop, not open) the accepted connection `fd`: registered with the loop's reactor, or left
// out of it on a loop with a ring.
ErrorCode assign_accepted(Socket& socket, const asio::generic::stream_protocol& protocol, int fd);

// Sets TCP_NODELAY and keepalive on a TCP socket.
void tune_socket(Socket& socket, bool tcp);

// Waits until a listening socket has a connection queued, after an accept on this thread (the acceptor's loop)
// found none. acceptor.async_wait would also re-arm the fd (an epoll_ctl per wait).
Task<ErrorCode> wait_acceptable(Acceptor& acceptor);

// A socket's peer: "1.2.3.4" or "::1" and its port; "[local]" and port 0 for a unix socket (as PostgreSQL names
// such clients), "unknown" when the socket has no peer.
struct PeerAddress {
  std::string host;
  int port = 0;
  // "1.2.3.4:5678", "[::1]:5678", or the host alone when there is no port.
  std::string to_string() const;
};
// The peer address an accept reported.
PeerAddress peer_address(const Endpoint& peer);

}  // namespace pgweir::net
