// PreparedTracker: rewriting Parse/Bind/Describe/Close of named statements to server-side names, re-Parse on
// demand, LRU eviction per server connection, DEALLOCATE/DISCARD, and swallowing pgweir's own answers.
#include "prepared_tracker.hpp"

#include <algorithm>
#include <cctype>

#include "pgweir/core/limits.hpp"

namespace pgweir::client {
namespace {

namespace fe = protocol::frontend;
namespace be = protocol::backend;

// A Close of this name closes nothing (PostgreSQL answers CloseComplete for a missing statement), so a client's
// Close of a shared statement is answered without touching what other clients use.
constexpr std::string_view k_no_statement = "pgweir_none";
// Simple queries longer than this cannot be DEALLOCATE/DISCARD and are not inspected.
constexpr std::uint32_t k_max_inspected_query = 1024;

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

bool PreparedTracker::wants_client(char tag, std::uint32_t length) const {
  if (!enabled()) return false;
  switch (tag) {
    case fe::Parse:
    case fe::Bind:
    case fe::Describe:
    case fe::Close: return length <= limits::k_max_inspected_message;
    case fe::Query: return length <= k_max_inspected_query;
    default: return false;
  }
}

void PreparedTracker::on_client_passthrough(char tag) {
  if (!enabled()) return;
  switch (tag) {
    case fe::Parse: parses_.push_back({sent_boundaries_, false, {}}); break;  // too large to track
    case fe::Close: closes_.push_back({sent_boundaries_, false, {}}); break;
    case fe::Sync:
    case fe::Query: ++sent_boundaries_; break;
    default: break;
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

net::Verdict PreparedTracker::on_client_message(char tag, std::string_view whole, server::ServerConnection& server) {
  auto body = whole.substr(protocol::k_header_size);
  std::size_t pos = 0;
  switch (tag) {
    case fe::Parse: {
      std::string_view name, query;
      if (!read_cstring(body, pos, name) || !read_cstring(body, pos, query)) {
        parses_.push_back({sent_boundaries_, false, {}});
        return net::Verdict::forward;  // malformed: the server will say so
      }
      if (name.empty()) {
        parses_.push_back({sent_boundaries_, false, {}});
        return net::Verdict::forward;
      }
      auto s = pool_->statement(query, body.substr(pos));
      statements_[std::string(name)] = s;
      auto& out = new_rewrite();
      auto& cache = server.prepared();
      if (cache.contains(s->name)) {
        // Already prepared here (by this or another client): close it first so this Parse gets a real answer.
        append_close_statement(out, s->name);
        closes_.push_back({sent_boundaries_, true, s->name});
        cache.remove(s->name);
      }
      evict_if_full(server, out, s->name);
      append_parse(out, *s);
      parses_.push_back({sent_boundaries_, false, s->name});
      cache.add(s->name);
      return net::Verdict::replace;
    }
    case fe::Bind: {
      std::string_view portal, name;
      if (!read_cstring(body, pos, portal) || !read_cstring(body, pos, name) || name.empty())
        return net::Verdict::forward;
      auto it = statements_.find(std::string(name));
      if (it == statements_.end()) return net::Verdict::forward;  // the server reports it as unknown
      auto& out = new_rewrite();
      ensure_prepared(*it->second, server, out);
      auto at = begin(out, fe::Bind);
      out += portal;
      out += '\0';
      out += it->second->name;
      out += '\0';
      out += body.substr(pos);
      finish(out, at);
      return net::Verdict::replace;
    }
    case fe::Describe: {
      if (body.empty() || body[0] != 'S') return net::Verdict::forward;
      std::string_view name;
      pos = 1;
      if (!read_cstring(body, pos, name) || name.empty()) return net::Verdict::forward;
      auto it = statements_.find(std::string(name));
      if (it == statements_.end()) return net::Verdict::forward;
      auto& out = new_rewrite();
      ensure_prepared(*it->second, server, out);
      auto at = begin(out, fe::Describe);
      out += 'S';
      out += it->second->name;
      out += '\0';
      finish(out, at);
      return net::Verdict::replace;
    }
    case fe::Close: {
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
      ++sent_boundaries_;
      return verdict;
    }
    default: return net::Verdict::forward;
  }
}

bool PreparedTracker::wants_server(char tag) const {
  if (!enabled()) return false;
  if (tag == be::ParseComplete) return !parses_.empty();
  if (tag == be::CloseComplete) return !closes_.empty();
  if (tag == be::ErrorResponse) return !parses_.empty() || !closes_.empty();
  return false;
}

net::Verdict PreparedTracker::on_server_message(char tag, std::string_view, server::ServerConnection& server) {
  auto pop = [](std::deque<Expect>& q) {
    Expect e = std::move(q.front());
    q.pop_front();
    return e;
  };
  if (tag == be::ParseComplete && !parses_.empty()) {
    return pop(parses_).swallow ? net::Verdict::drop : net::Verdict::forward;
  }
  if (tag == be::CloseComplete && !closes_.empty()) {
    return pop(closes_).swallow ? net::Verdict::drop : net::Verdict::forward;
  }
  if (tag == be::ErrorResponse) {
    // The server skips everything up to the next Sync: what pgweir assumed those messages did did not happen.
    auto& cache = server.prepared();
    while (!parses_.empty() && parses_.front().segment <= received_boundaries_) {
      auto e = pop(parses_);
      if (!e.name.empty()) cache.remove(e.name);
    }
    while (!closes_.empty() && closes_.front().segment <= received_boundaries_) {
      auto e = pop(closes_);
      if (e.swallow && !e.name.empty()) cache.add(e.name);
    }
  }
  return net::Verdict::forward;
}

void PreparedTracker::reset_in_flight() {
  parses_.clear();
  closes_.clear();
  rewrites_.clear();
  sent_boundaries_ = 0;
  received_boundaries_ = 0;
}

}  // namespace pgweir::client
