// Named prepared statements for one client in transaction/statement mode: client names map to shared server-side
// names, statements are prepared on whichever server connection the client lands on, and every response the
// client gets is what PostgreSQL would have sent it directly (pgweir's own Parse/Close answers are swallowed).
// A statement whose plan went stale after DDL ("cached plan must not change result type") is prepared again and
// its segment sent again, when the client has seen nothing of that segment's answer yet.
#pragma once

#include <boost/container/deque.hpp>
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

  // Client -> server: the messages to see whole (Parse, Close, short Query; Bind and Describe while the client
  // has named statements; Execute, Flush and Sync of a segment that is being kept for a retry).
  bool wants_client(char tag, std::uint32_t length) const;
  // Handles one whole client message; on Verdict::replace, `replacement()` holds the bytes to send instead.
  net::Verdict on_client_message(char tag, std::string_view whole, server::ServerConnection& server);
  // Messages that streamed through unseen still take their place in the response order.
  void on_client_passthrough(char tag);
  std::string_view replacement() const { return rewrites_.back(); }
  // Rewritten bytes are kept until the chunk they belong to has been written.
  void chunk_written() { rewrites_.clear(); }

  // Server -> client.
  bool wants_server(char tag, std::uint32_t length) const;
  net::Verdict on_server_message(char tag, std::string_view whole, server::ServerConnection& server);
  // Messages that streamed through to the client: after one, the segment being answered can no longer be retried.
  void on_server_passthrough(char tag) {
    namespace be = protocol::backend;
    if (tag == be::ParseComplete && plain_parses_ > 0) --plain_parses_;
    if (tag == be::ErrorResponse) drop_plain_parses();
    if (tag != be::NoticeResponse && tag != be::NotificationResponse && tag != be::ParameterStatus) answered_ = true;
  }
  // `status` is the ReadyForQuery's transaction status. forward; drop when it ends a segment that is being retried
  // (the retry's own ReadyForQuery answers the client's Sync); replace with `server_replacement()` when it ends a
  // segment whose ErrorResponse was held back for a retry that cannot happen after all.
  net::Verdict on_ready_for_query(char status, std::string_view whole, server::ServerConnection& server);
  std::string_view server_replacement() const { return server_rewrite_; }
  // Bytes to send to the server now (a retry), or empty. Call retry_sent() once they are written.
  std::string_view retry() const { return retry_; }
  void retry_sent() { retry_.clear(); }

  // A server connection goes away mid-exchange: forget what was in flight.
  void reset_in_flight();
  // No statement of the client's and nothing in flight: a new tracker would do the same (a parked session drops it).
  bool holds_nothing() const {
    return statements_.empty() && plain_parses_ == 0 && parses_.empty() && closes_.empty() && rewrites_.empty() &&
           retry_.empty() && held_error_.empty() && !replay_.recording && !replay_.armed;
  }

 private:
  struct Expect {
    std::uint64_t segment;  // Sync/Query boundaries sent before this message
    bool swallow;           // pgweir's own message: the client must not see its answer
    std::string name;       // server-side statement name, "" for none
  };

  // The client's last segment (messages up to and including a Sync), kept while it can be sent again: it began
  // with a Bind of a tracked statement and holds only Bind, Describe, Execute, Flush and Sync.
  struct Replay {
    bool recording = false;  // the current segment is being kept
    bool armed = false;      // `messages` is the whole segment number `segment`, and nothing was sent after it
    std::uint64_t segment = 0;
    std::shared_ptr<const server::Statement> statement;  // bound by the segment's first message
    std::string messages;                                // as the client sent them (its own names)
  };

  // Appends Parse (and any eviction Close) making `s` prepared on `server`, unless it already is.
  void ensure_prepared(const server::Statement& s, server::ServerConnection& server, std::string& out);
  // Appends Close (if prepared there), any eviction Close and Parse: `s` freshly prepared on `server`.
  void prepare_anew(const server::Statement& s, server::ServerConnection& server, std::string& out, bool swallow);
  void evict_if_full(server::ServerConnection& server, std::string& out, const std::string& keep);
  // Bind/Describe of a tracked statement, rewritten to its server-side name into `out` (with a Parse first if
  // needed). Bind returns the statement, Describe true; null/false when the name is not tracked.
  const std::shared_ptr<const server::Statement>* rewrite_bind(std::string_view body, server::ServerConnection& server,
                                                               std::string& out);
  bool rewrite_describe(std::string_view body, server::ServerConnection& server, std::string& out);
  // Every client message passes here once, in order (`whole` is empty for one that streamed through unseen;
  // `bound` is the tracked statement a Bind names).
  void record(char tag, std::string_view whole, const std::shared_ptr<const server::Statement>* bound);
  // An ErrorResponse that a retry of the armed segment can hide.
  bool retryable(std::string_view whole, server::ServerConnection& server) const;
  void build_retry(server::ServerConnection& server);
  std::string& new_rewrite();
  // A Parse or Close too large to inspect, streamed through: its answer is the client's.
  void expect_untracked(char tag);
  // A Parse whose ParseComplete is the client's own (an unnamed statement, the usual case, or one too large or
  // malformed to look at). While no Parse of pgweir's is awaited, these are counted instead of queued.
  void expect_plain_parse();
  // An ErrorResponse: the server skips the rest of the segment it answers, so the counted Parses of that segment
  // get no ParseComplete.
  void drop_plain_parses() {
    if (plain_parses_ > 0 && plain_segment_ <= received_boundaries_) plain_parses_ = 0;
  }

  // Simple queries longer than this cannot be DEALLOCATE/DISCARD and are not inspected.
  static constexpr std::uint32_t k_max_inspected_query = 1024;

  pool::Pool* pool_ = nullptr;
  std::size_t capacity_ = 0;
  std::unordered_map<std::string, std::shared_ptr<const server::Statement>> statements_;  // by client name
  // The Parses sent whose ParseComplete is due: first `plain_parses_` of the client's own, all from segment
  // `plain_segment_`, then `parses_` in order. Only a Parse sent while `parses_` is empty is counted.
  std::uint64_t plain_segment_ = 0;
  std::uint32_t plain_parses_ = 0;
  boost::container::deque<Expect> parses_;
  boost::container::deque<Expect> closes_;  // one per Close sent, in order
  std::uint64_t sent_boundaries_ = 0;
  std::uint64_t received_boundaries_ = 0;
  boost::container::deque<std::string> rewrites_;

  // Retry of a segment whose plan went stale.
  Replay replay_;
  std::size_t sent_in_segment_ = 0;  // client messages sent since the last Sync/Query
  bool answered_ = false;            // some answer to the segment being answered has reached the client
  std::string held_error_;           // the ErrorResponse held back until its ReadyForQuery; empty: none
  std::string server_rewrite_;
  std::string retry_;
};

// The per-message checks, inline: the relay's scanners ask them for every message.
inline bool PreparedTracker::wants_client(char tag, std::uint32_t length) const {
  namespace fe = protocol::frontend;
  if (!enabled()) return false;
  switch (tag) {
    case fe::Parse:
    case fe::Close: return length <= limits::k_max_inspected_message;
    // Only a statement the client named can need its Bind or Describe rewritten: with none tracked (the unnamed
    // statements of most drivers' extended protocol), they stream through like Execute.
    case fe::Bind:
    case fe::Describe: return !statements_.empty() && length <= limits::k_max_inspected_message;
    case fe::Query: return length <= k_max_inspected_query;
    case fe::Execute:
    case fe::Flush:
    case fe::Sync: return replay_.recording && replay_.messages.size() + 1 + length <= limits::k_max_replayed_segment;
    default: return false;
  }
}

inline void PreparedTracker::on_client_passthrough(char tag) {
  if (!enabled()) return;
  if (tag == protocol::frontend::Parse || tag == protocol::frontend::Close) expect_untracked(tag);
  record(tag, {}, nullptr);
}

inline bool PreparedTracker::wants_server(char tag, std::uint32_t length) const {
  namespace be = protocol::backend;
  if (!enabled()) return false;
  if (tag == be::ParseComplete) return !parses_.empty();  // a counted one streams through (on_server_passthrough)
  if (tag == be::CloseComplete) return !closes_.empty();
  if (tag == be::ErrorResponse)
    return !parses_.empty() || !closes_.empty() || (replay_.armed && length <= limits::k_max_inspected_message);
  return false;
}

}  // namespace pgweir::client
