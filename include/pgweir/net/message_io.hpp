// Reading whole messages where pgweir must see all of one (login, control queries). Reads ahead, so that one read
// usually brings a whole message (a server's login answer, many messages, in one), and gives what follows the
// message back to the transport (Transport::unread): nothing is lost, and the next read starts there.
#pragma once

#include <string>

#include "pgweir/core/result.hpp"
#include "pgweir/net/transport.hpp"
#include "pgweir/protocol/messages.hpp"

namespace pgweir::net {

struct Message {
  char tag = 0;
  std::string_view body;  // into the caller's buffer
};

// What one read asks for, and the buffer's size while it waits: a server's whole answer to a login usually fits.
inline constexpr std::size_t k_read_ahead = 1024;
// The same for a client's login messages (a startup packet, a password or SASL message: tens to a few hundred
// bytes; a longer one is read to its end after the first read). Every login in flight holds its buffer while it
// waits for the client, and a burst of logins leaves the memory it peaked at with malloc: 100 logins in flight with
// 1 024-byte buffers left about 44 KB more behind than with these (bench/RESULTS.md, twentieth session).
inline constexpr std::size_t k_client_read_ahead = 256;

// Reads one regular message into `buffer`. Errors: I/O failure, declared length outside [4, max_length].
Task<Expected<Message>> read_message(Transport& transport, std::string& buffer, std::uint32_t max_length,
                                     std::size_t read_ahead = k_read_ahead);

// Reads one startup-phase packet (length-prefixed, no tag; only clients send them) into `buffer`, whole, length
// prefix included.
Task<Expected<std::string_view>> read_startup_packet(Transport& transport, std::string& buffer);

}  // namespace pgweir::net
