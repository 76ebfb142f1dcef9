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

// Reads one regular message into `buffer`. Errors: I/O failure, declared length outside [4, max_length].
Task<Expected<Message>> read_message(Transport& transport, std::string& buffer, std::uint32_t max_length);

// Reads one startup-phase packet (length-prefixed, no tag) into `buffer`, whole, length prefix included.
Task<Expected<std::string_view>> read_startup_packet(Transport& transport, std::string& buffer);

}  // namespace pgweir::net
