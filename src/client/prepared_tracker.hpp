// Named prepared statements for one client in transaction/statement mode: client names map to shared server-side
// names, statements are prepared on whichever server connection the client lands on, and every response the
// client gets is what PostgreSQL would have sent it directly (pgweir's own Parse/Close answers are swallowed).
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "pgweir/net/stream_scanner.hpp"
#include "pgweir/pool/pool.hpp"

namespace pgweir::client {

class PreparedTracker {
 public:
  PreparedTracker() = default;
  void enable(pool::Pool* pool, std::size_t capacity) {
    pool_ = pool;
    capacity_ = capacity;
  }
  bool enabled() const { return pool_ != nullptr && capacity_ > 0; }

  // Client -> server: the messages to see whole (Parse, Bind, Describe, Close, short Query).
  bool wants_client(char tag, std::uint32_t length) const;
  // Handles one whole client message; on Verdict::replace, `replacement()` holds the bytes to send instead.
  net::Verdict on_client_message(char tag, std::string_view whole, server::ServerConnection& server);
  // Messages that streamed through unseen still take their place in the response order.
  void on_client_passthrough(char tag);
  std::string_view replacement() const { return rewrites_.back(); }
  // Rewritten bytes are kept until the chunk they belong to has been written.
  void chunk_written() { rewrites_.clear(); }

  // Server -> client.
  bool wants_server(char tag) const;
  net::Verdict on_server_message(char tag, std::string_view whole, server::ServerConnection& server);
  void on_ready_for_query() { ++received_boundaries_; }

  // A server connection goes away mid-exchange: forget what was in flight.
  void reset_in_flight();

 private:
  struct Expect {
    std::uint64_t segment;  // Sync/Query boundaries sent before this message
    bool swallow;           // pgweir's own message: the client must not see its answer
    std::string name;       // server-side statement name, "" for none
  };

  // Appends Parse (and any eviction Close) making `s` prepared on `server`, unless it already is.
  void ensure_prepared(const server::Statement& s, server::ServerConnection& server, std::string& out);
  void evict_if_full(server::ServerConnection& server, std::string& out, const std::string& keep);
  std::string& new_rewrite();

  pool::Pool* pool_ = nullptr;
  std::size_t capacity_ = 0;
  std::unordered_map<std::string, std::shared_ptr<const server::Statement>> statements_;  // by client name
  std::deque<Expect> parses_;  // one per Parse sent, in order
  std::deque<Expect> closes_;  // one per Close sent, in order
  std::uint64_t sent_boundaries_ = 0;
  std::uint64_t received_boundaries_ = 0;
  std::deque<std::string> rewrites_;
};

}  // namespace pgweir::client
