// Splits a relayed byte stream into messages without buffering bodies: pass-through bytes are forwarded as ranges
// of the input as they arrive; only messages the caller asks to inspect are assembled whole. Pure (no I/O).
#pragma once

#include <boost/container/small_vector.hpp>

#include <cstdint>
#include <string>
#include <string_view>

#include "pgweir/core/limits.hpp"
#include "pgweir/core/strings.hpp"
#include "pgweir/protocol/messages.hpp"

namespace pgweir::net {

using Segments = boost::container::small_vector<std::string_view, 16>;

// replace: forward `hooks.replacement()` instead (valid until the write of this feed's output completes).
enum class Verdict { forward, drop, replace };

// Hooks: `bool inspect(char tag, std::uint32_t length)` — deliver this message whole?
//        `std::string_view replacement()` — only needed by hooks that return Verdict::replace.
//        `Verdict on_message(char tag, std::string_view whole_message)` — for inspected messages (header included).
//        `void on_passthrough(char tag, std::uint32_t length)` — a message that streams through (optional use).
class StreamScanner {
 public:
  explicit StreamScanner(std::uint32_t max_length = limits::k_max_message) : max_length_(max_length) {}

  // Feeds the next bytes. Appends what to forward to `out`; the views stay valid until the next feed.
  // Returns nullptr, or a static error text on an invalid message header (the stream is then unusable).
  template <class Hooks>
  const char* feed(std::string_view in, Hooks& hooks, Segments& out);

  // True between messages (nothing partial is held): the stream sits at a message boundary.
  bool at_boundary() const { return passthrough_left_ == 0 && assembly_.empty(); }
  // Drops the assembly buffers' memory once a connection goes idle.
  void release_memory() {
    if (assembly_.empty()) core::clear_and_release(assembly_);
    core::clear_and_release(completed_);
  }
  // Back to the start of a stream, as newly made (the relay does this at each release of a server).
  void reset() {
    passthrough_left_ = 0;
    assembling_whole_ = false;
    whole_size_ = 0;
    core::clear_and_release(assembly_);
    core::clear_and_release(completed_);
  }

 private:
  template <class Hooks>
  static void emit(Hooks& hooks, Verdict v, std::string_view whole, Segments& out) {
    if (v == Verdict::forward) {
      add(out, whole);
    } else if constexpr (requires { hooks.replacement(); }) {
      if (v == Verdict::replace) add(out, hooks.replacement());
    }
  }

  static void add(Segments& out, std::string_view s) {
    if (s.empty()) return;
    if (!out.empty() && out.back().data() + out.back().size() == s.data()) {
      out.back() = std::string_view(out.back().data(), out.back().size() + s.size());
    } else {
      out.push_back(s);
    }
  }

  std::uint32_t max_length_;
  std::size_t passthrough_left_ = 0;  // body bytes of a streamed message still to come
  std::string assembly_;              // a partial header, or a partial inspected message
  bool assembling_whole_ = false;     // assembly_ holds an inspected message (header known)
  std::size_t whole_size_ = 0;        // its full size
  std::string completed_;             // a message completed across feeds, referenced by `out`
};

template <class Hooks>
const char* StreamScanner::feed(std::string_view in, Hooks& hooks, Segments& out) {
  // 1. Finish what the previous feed left open.
  if (passthrough_left_ > 0) {
    std::size_t n = std::min(passthrough_left_, in.size());
    add(out, in.substr(0, n));
    passthrough_left_ -= n;
    in.remove_prefix(n);
  }
  if (!assembly_.empty()) {
    if (!assembling_whole_) {
      // A header split across reads.
      std::size_t need = protocol::k_header_size - assembly_.size();
      std::size_t n = std::min(need, in.size());
      assembly_.append(in.substr(0, n));
      in.remove_prefix(n);
      if (assembly_.size() < protocol::k_header_size) return nullptr;
      auto r = protocol::peek_frame(assembly_, max_length_);
      if (r.status == protocol::FrameStatus::invalid) return r.error ? r.error : "invalid message length";
      if (hooks.inspect(r.frame.tag, r.frame.length)) {
        if (r.frame.length > limits::k_max_inspected_message) return "message too long";
        assembling_whole_ = true;
        whole_size_ = r.frame.size();
      } else {
        hooks.on_passthrough(r.frame.tag, r.frame.length);
        completed_.swap(assembly_);
        assembly_.clear();
        add(out, completed_);
        passthrough_left_ = r.frame.body_size();
        std::size_t m = std::min(passthrough_left_, in.size());
        add(out, in.substr(0, m));
        passthrough_left_ -= m;
        in.remove_prefix(m);
      }
    }
    if (assembling_whole_) {
      std::size_t need = whole_size_ - assembly_.size();
      std::size_t n = std::min(need, in.size());
      assembly_.append(in.substr(0, n));
      in.remove_prefix(n);
      if (assembly_.size() < whole_size_) return nullptr;
      completed_.swap(assembly_);
      assembly_.clear();
      assembling_whole_ = false;
      emit(hooks, hooks.on_message(completed_[0], std::string_view(completed_)), completed_, out);
    }
  }
  // 2. Whole messages and streamed ones in the rest of the input.
  while (!in.empty()) {
    auto r = protocol::peek_frame(in, max_length_);
    if (r.status == protocol::FrameStatus::invalid) return r.error ? r.error : "invalid message length";
    if (r.status == protocol::FrameStatus::need_more) {
      assembly_.assign(in);
      return nullptr;
    }
    if (hooks.inspect(r.frame.tag, r.frame.length)) {
      if (r.frame.length > limits::k_max_inspected_message) return "message too long";
      if (in.size() < r.frame.size()) {
        assembly_.assign(in);
        assembling_whole_ = true;
        whole_size_ = r.frame.size();
        return nullptr;
      }
      auto whole = in.substr(0, r.frame.size());
      emit(hooks, hooks.on_message(r.frame.tag, whole), whole, out);
      in.remove_prefix(r.frame.size());
    } else {
      hooks.on_passthrough(r.frame.tag, r.frame.length);
      std::size_t n = std::min(r.frame.size(), in.size());
      add(out, in.substr(0, n));
      passthrough_left_ = r.frame.size() - n;
      in.remove_prefix(n);
    }
  }
  return nullptr;
}

}  // namespace pgweir::net
