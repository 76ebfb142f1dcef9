// Test harness: free ports, port readiness, and a raw TCP client for sending hand-made bytes.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace pgweir::test {

using namespace std::chrono_literals;

// A TCP port on 127.0.0.1 that nothing was bound to a moment ago.
int free_port();

// True if this machine can bind a socket to [::1].
bool has_ipv6_loopback();

// True once host:port accepts a TCP connection; false at `timeout`.
bool can_connect(const std::string& host, int port);
bool wait_for_port(const std::string& host, int port, std::chrono::milliseconds timeout);

// A blocking TCP client socket.
class TcpClient {
 public:
  TcpClient(const std::string& host, int port);  // throws if the connection is refused
  ~TcpClient();
  TcpClient(const TcpClient&) = delete;
  TcpClient& operator=(const TcpClient&) = delete;

  void send(std::string_view bytes);
  // Whatever arrives within `timeout` (empty on timeout or once the peer has closed).
  std::string receive_some(std::chrono::milliseconds timeout);
  // Reads and discards until the peer closes the connection (EOF or reset); false if still open at `timeout`.
  bool wait_closed(std::chrono::milliseconds timeout);
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};

}  // namespace pgweir::test
