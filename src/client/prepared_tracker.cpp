// PreparedTracker: rewriting Parse/Bind/Describe/Close of named statements to server-side names, re-Parse on
// demand, LRU eviction per server connection, DEALLOCATE/DISCARD, swallowing pgweir's own answers, and the retry
// of a segment whose plan went stale after DDL.
#include "prepared_tracker.hpp"

#include <algorithm>
#include <cctype>

#include "pgweir/core/limits.hpp"
#include "pgweir/core/strings.hpp"
#include "pgweir/core/log.hpp"

namespace pgweir::client {
namespace {

namespace fe = protocol::frontend;
namespace be = protocol::backend;

// A Close of this name closes nothing (PostgreSQL answers CloseComplete for a missing statement), so a client's
// Close of a shared statement is answered without touching what other clients use.
constexpr std::string_view k_no_statement = "pgweir_none";

// PostgreSQL's answer to a Bind (or Describe) of a statement whose result columns changed since its Parse. The
// routine name is not translated, unlike the message.
constexpr std::string_view k_stale_plan_sqlstate = "0A000";
constexpr std::string_view k_stale_plan_routine = "RevalidateCachedQuery";
constexpr std::string_view k_stale_plan_message = "cached plan must not change result type";

// Reads a NUL-terminated string at `pos`; advances past the NUL. False when there is none.
bool read_cstring(std::string_view body, std::size_t& pos, std::string_view& out) {
  auto end = body.find('\0', pos);
  if (end == std::string_view::npos) return false;
  out = body.substr(pos, end - pos);
  pos = end + 1;
  return true;
}

void put_u32(std::string& out, std::uint32_t v) {
  out += static_cast<char>(v >> 24);
  out += static_cast<char>(v >> 16);
  out += static_cast<char>(v >> 8);
  out += static_cast<char>(v);
}

// Starts a message; returns the offset of its length field, patched by finish().
std::size_t begin(std::string& out, char tag) {
  out += tag;
  std::size_t at = out.size();
  put_u32(out, 0);
  return at;
}

void finish(std::string& out, std::size_t at) {
  auto len = static_cast<std::uint32_t>(out.size() - at);
  out[at] = static_cast<char>(len >> 24);
  out[at + 1] = static_cast<char>(len >> 16);
  out[at + 2] = static_cast<char>(len >> 8);
  out[at + 3] = static_cast<char>(len);
}

void append_parse(std::string& out, const server::Statement& s) {
  auto at = begin(out, fe::Parse);
  out += s.name;
  out += '\0';
  out += s.query;
  out += '\0';
  out += s.param_types;
  finish(out, at);
}

void append_close_statement(std::string& out, std::string_view name) {
  auto at = begin(out, fe::Close);
  out += 'S';
  out += name;
  out += '\0';
  finish(out, at);
}

// DEALLOCATE [PREPARE] name | ALL, DISCARD ALL — the statements that end protocol-level prepared statements.
struct Deallocation {
  enum Kind { none, all, one } kind = none;
  std::string name;
};

Deallocation classify(std::string_view sql) {
  auto trim = [](std::string_view v) {
    while (!v.empty() && (std::isspace(static_cast<unsigned char>(v.front())) != 0)) v.remove_prefix(1);
    while (!v.empty() && (std::isspace(static_cast<unsigned char>(v.back())) != 0 || v.back() == ';' || v.back() == '\0'))
      v.remove_suffix(1);
    return v;
  };
  auto word = [&](std::string_view& v) {
    v = trim(v);
    std::size_t n = 0;
    if (!v.empty() && v[0] == '"') {
      auto close = v.find('"', 1);
      if (close == std::string_view::npos) return std::string();
      std::string w(v.substr(1, close - 1));
      v.remove_prefix(close + 1);
      return "\"" + w;  // marks a quoted identifier
    }
    while (n < v.size() && (std::isalnum(static_cast<unsigned char>(v[n])) != 0 || v[n] == '_' || v[n] == '$')) ++n;
    std::string w(v.substr(0, n));
    v.remove_prefix(n);
    for (auto& c : w) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return w;
  };
  // Neither DISCARD nor DEALLOCATE, the usual case, is told by the first letter after any blanks: the end of the
  // statement is trimmed only for the rare ones.
  auto start = sql.find_first_not_of(" \t\n\v\f\r");
  if (start == std::string_view::npos || (sql[start] != 'd' && sql[start] != 'D')) return {};
  std::string_view v = trim(sql);
  auto first = word(v);
  if (first == "discard") {
    if (word(v) == "all" && trim(v).empty()) return {Deallocation::all, {}};
    return {};
  }
  if (first != "deallocate") return {};
  auto next = word(v);
  if (next == "prepare") next = word(v);
  if (!trim(v).empty() || next.empty()) return {};
  if (next == "all") return {Deallocation::all, {}};
  if (next[0] == '"') return {Deallocation::one, next.substr(1)};
  return {Deallocation::one, next};
}

}  // namespace

void PreparedTracker::expect_plain_parse() {
  if (parses_.empty() && (plain_parses_ == 0 || plain_segment_ == sent_boundaries_)) {
    plain_segment_ = sent_boundaries_;
    ++plain_parses_;
  } else {
    parses_.push_back({sent_boundaries_, false, {}});
  }
}

void PreparedTracker::expect_untracked(char tag) {
  if (tag == fe::Parse) {
    expect_plain_parse();
  } else {
    closes_.push_back({sent_boundaries_, false, {}});
  }
}

void PreparedTracker::record(char tag, std::string_view whole, const std::shared_ptr<const server::Statement>* bound) {
  replay_.armed = false;  // a kept segment sent again after this message would overtake it
  if (sent_in_segment_++ == 0) {
    replay_.recording = tag == fe::Bind && bound != nullptr;
    if (bound) replay_.statement = *bound;
    replay_.messages.clear();
  } else if (replay_.recording) {
    bool replayable = tag == fe::Bind || tag == fe::Describe || tag == fe::Execute || tag == fe::Flush ||
                      tag == fe::Sync;
    if (!replayable || whole.empty() || replay_.messages.size() + whole.size() > limits::k_max_replayed_segment)
      replay_.recording = false;
  }
  if (replay_.recording) replay_.messages += whole;
  if (tag == fe::Sync || tag == fe::Query) {
    if (tag == fe::Sync && replay_.recording) {
      replay_.armed = true;
      replay_.segment = sent_boundaries_;
    }
    replay_.recording = false;
    sent_in_segment_ = 0;
    ++sent_boundaries_;
  }
}

std::string& PreparedTracker::new_rewrite() {
  rewrites_.emplace_back();
  return rewrites_.back();
}

void PreparedTracker::evict_if_full(server::ServerConnection& server, std::string& out, const std::string& keep) {
  auto& cache = server.prepared();
  while (cache.size() >= capacity_) {
    auto victim = cache.oldest();
    if (!victim || *victim == keep) break;
    append_close_statement(out, *victim);
    closes_.push_back({sent_boundaries_, true, *victim});
    cache.remove(*victim);
  }
}

void PreparedTracker::ensure_prepared(const server::Statement& s, server::ServerConnection& server, std::string& out) {
  auto& cache = server.prepared();
  if (cache.contains(s.name)) {
    cache.touch(s.name);
    return;
  }
  evict_if_full(server, out, s.name);
  append_parse(out, s);
  parses_.push_back({sent_boundaries_, true, s.name});
  cache.add(s.name);
}

void PreparedTracker::prepare_anew(const server::Statement& s, server::ServerConnection& server, std::string& out,
                                   bool swallow) {
  auto& cache = server.prepared();
  if (cache.contains(s.name)) {
    // Already prepared here (by this or another client): close it first so that the Parse is not refused.
    append_close_statement(out, s.name);
    closes_.push_back({sent_boundaries_, true, s.name});
    cache.remove(s.name);
  }
  evict_if_full(server, out, s.name);
  append_parse(out, s);
  parses_.push_back({sent_boundaries_, swallow, s.name});
  cache.add(s.name);
}

const std::shared_ptr<const server::Statement>* PreparedTracker::rewrite_bind(std::string_view body,
                                                                              server::ServerConnection& server,
                                                                              std::string& out) {
  std::size_t pos = 0;
  std::string_view portal, name;
  if (!read_cstring(body, pos, portal) || !read_cstring(body, pos, name) || name.empty()) return nullptr;
  auto it = statements_.find(std::string(name));
  if (it == statements_.end()) return nullptr;  // the server reports it as unknown
  ensure_prepared(*it->second, server, out);
  auto at = begin(out, fe::Bind);
  out += portal;
  out += '\0';
  out += it->second->name;
  out += '\0';
  out += body.substr(pos);
  finish(out, at);
  return &it->second;
}

bool PreparedTracker::rewrite_describe(std::string_view body, server::ServerConnection& server, std::string& out) {
  if (body.empty() || body[0] != 'S') return false;
  std::size_t pos = 1;
  std::string_view name;
  if (!read_cstring(body, pos, name) || name.empty()) return false;
  auto it = statements_.find(std::string(name));
  if (it == statements_.end()) return false;
  ensure_prepared(*it->second, server, out);
  auto at = begin(out, fe::Describe);
  out += 'S';
  out += it->second->name;
  out += '\0';
  finish(out, at);
  return true;
}

net::Verdict PreparedTracker::on_client_message(char tag, std::string_view whole, server::ServerConnection& server) {
  auto body = whole.substr(protocol::k_header_size);
  std::size_t pos = 0;
  switch (tag) {
    case fe::Parse: {
      record(tag, whole, nullptr);
      std::string_view name, query;
      // Unnamed (the name is an empty string), or malformed: the server will say so.
      if (body.empty() || body[0] == '\0' || !read_cstring(body, pos, name) || !read_cstring(body, pos, query)) {
        expect_plain_parse();
        return net::Verdict::forward;
      }
      auto s = pool_->statement(query, body.substr(pos));
      statements_[std::string(name)] = s;
      prepare_anew(*s, server, new_rewrite(), false);
      return net::Verdict::replace;
    }
    case fe::Bind: {
      const auto* bound = rewrite_bind(body, server, new_rewrite());
      if (!bound) rewrites_.pop_back();
      record(tag, whole, bound);
      return bound ? net::Verdict::replace : net::Verdict::forward;
    }
    case fe::Describe: {
      record(tag, whole, nullptr);
      bool rewritten = rewrite_describe(body, server, new_rewrite());
      if (!rewritten) rewrites_.pop_back();
      return rewritten ? net::Verdict::replace : net::Verdict::forward;
    }
    case fe::Close: {
      record(tag, whole, nullptr);
      std::string_view name;
      pos = 1;
      if (body.empty() || body[0] != 'S' || !read_cstring(body, pos, name) || name.empty()) {
        closes_.push_back({sent_boundaries_, false, {}});
        return net::Verdict::forward;
      }
      statements_.erase(std::string(name));
      closes_.push_back({sent_boundaries_, false, {}});
      auto& out = new_rewrite();
      append_close_statement(out, k_no_statement);
      return net::Verdict::replace;
    }
    case fe::Query: {
      auto d = classify(body);
      net::Verdict verdict = net::Verdict::forward;
      if (d.kind == Deallocation::all) {
        statements_.clear();
        server.prepared().clear();
      } else if (d.kind == Deallocation::one) {
        auto it = statements_.find(d.name);
        if (it != statements_.end()) {
          // Deallocate the shared server-side statement on this connection (preparing it first if this connection
          // never had it), so the client gets PostgreSQL's own answer.
          auto s = it->second;
          statements_.erase(it);
          auto& out = new_rewrite();
          ensure_prepared(*s, server, out);
          auto at = begin(out, fe::Query);
          out += "DEALLOCATE PREPARE ";
          out += s->name;
          out += '\0';
          finish(out, at);
          server.prepared().remove(s->name);
          verdict = net::Verdict::replace;
        }
      }
      record(tag, whole, nullptr);
      return verdict;
    }
    default:  // Execute, Flush, Sync of a segment being kept
      record(tag, whole, nullptr);
      return net::Verdict::forward;
  }
}

bool PreparedTracker::retryable(std::string_view whole, server::ServerConnection& server) const {
  // Only the client's last segment, before anything of its answer reached the client, and outside a transaction
  // block: its first message is the failing Bind, so nothing of it ran, and the implicit transaction the error
  // aborts ends at its Sync. Inside a block the error has aborted the client's transaction: it must see it.
  if (!replay_.armed || replay_.segment != received_boundaries_ || answered_ || server.transaction_status() != 'I')
    return false;
  auto fields = protocol::parse_error_fields(whole.substr(protocol::k_header_size));
  if (!fields || fields->code != k_stale_plan_sqlstate) return false;
  if (fields->message == k_stale_plan_message) return true;
  return std::any_of(fields->other.begin(), fields->other.end(),
                     [](const auto& f) { return f.first == 'R' && f.second == k_stale_plan_routine; });
}

net::Verdict PreparedTracker::on_server_message(char tag, std::string_view whole, server::ServerConnection& server) {
  auto pop = [](boost::container::deque<Expect>& q) {
    Expect e = std::move(q.front());
    q.pop_front();
    return e;
  };
  auto answer = [this](bool swallow) {
    if (swallow) return net::Verdict::drop;
    answered_ = true;
    return net::Verdict::forward;
  };
  if (tag == be::ParseComplete && plain_parses_ > 0) {
    --plain_parses_;
    return answer(false);
  }
  if (tag == be::ParseComplete && !parses_.empty()) return answer(pop(parses_).swallow);
  if (tag == be::CloseComplete && !closes_.empty()) return answer(pop(closes_).swallow);
  if (tag == be::ErrorResponse) {
    // The server skips everything up to the next Sync: what pgweir assumed those messages did did not happen.
    drop_plain_parses();
    auto& cache = server.prepared();
    while (!parses_.empty() && parses_.front().segment <= received_boundaries_) {
      auto e = pop(parses_);
      if (!e.name.empty()) cache.remove(e.name);
    }
    while (!closes_.empty() && closes_.front().segment <= received_boundaries_) {
      auto e = pop(closes_);
      if (e.swallow && !e.name.empty()) cache.add(e.name);
    }
    if (retryable(whole, server)) {
      held_error_.assign(whole);  // until its ReadyForQuery: the client may yet send something after the segment
      return net::Verdict::drop;
    }
  }
  return answer(false);
}

net::Verdict PreparedTracker::on_ready_for_query(char status, std::string_view whole,
                                               server::ServerConnection& server) {
  ++received_boundaries_;
  answered_ = false;
  if (held_error_.empty()) return net::Verdict::forward;
  if (status == 'I' && replay_.armed && replay_.segment + 1 == received_boundaries_) {
    held_error_.clear();
    build_retry(server);
    return net::Verdict::drop;
  }
  // The client sent more meanwhile: sending the segment again now would reorder its pipeline.
  server_rewrite_ = std::move(held_error_);
  held_error_.clear();
  server_rewrite_ += whole;
  return net::Verdict::replace;
}

void PreparedTracker::build_retry(server::ServerConnection& server) {
  replay_.armed = false;  // once: an error of the retry reaches the client
  retry_.clear();
  prepare_anew(*replay_.statement, server, retry_, true);
  std::string_view rest = replay_.messages;
  while (rest.size() >= protocol::k_header_size) {
    auto size = 1 + static_cast<std::size_t>(protocol::read_u32(rest.data() + 1));
    if (size < protocol::k_header_size || size > rest.size()) break;  // cannot happen: whole messages were kept
    auto whole = rest.substr(0, size);
    auto body = whole.substr(protocol::k_header_size);
    rest.remove_prefix(size);
    bool rewritten = (whole[0] == fe::Bind && rewrite_bind(body, server, retry_)) ||
                     (whole[0] == fe::Describe && rewrite_describe(body, server, retry_));
    if (!rewritten) retry_ += whole;
  }
  ++sent_boundaries_;  // the segment ends with its Sync
  pool_->cells().prepared_retries.inc();
  log::debug("prepared_retry", {{"server_id", server.id()}, {"statement", replay_.statement->name}});
}

void PreparedTracker::reset_in_flight() {
  plain_parses_ = 0;
  parses_.clear();
  closes_.clear();
  rewrites_.clear();
  sent_boundaries_ = 0;
  received_boundaries_ = 0;
  sent_in_segment_ = 0;
  answered_ = false;
  replay_.recording = false;
  replay_.armed = false;
  replay_.statement.reset();
  // A long segment's buffers are not kept for a client between transactions.
  if (replay_.messages.capacity() > 4096) std::string().swap(replay_.messages);
  core::clear_and_release(held_error_);
  core::clear_and_release(server_rewrite_);
  if (retry_.capacity() > 4096) std::string().swap(retry_);
  retry_.clear();
}

}  // namespace pgweir::client
