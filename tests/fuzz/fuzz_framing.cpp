// fuzz_framing: peek_frame / peek_message / peek_startup_frame / peek_startup_packet on arbitrary bytes, every body
// parser on each framed message, and net::StreamScanner fed the stream in up to three chunks, checked against a model.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"
#include "pgweir/core/limits.hpp"
#include "pgweir/net/stream_scanner.hpp"
#include "pgweir/protocol/messages.hpp"

namespace {

using namespace pgweir;
using namespace pgweir::protocol;
using fuzz::Controls;

void check_peeks(std::string_view in) {
  for (std::uint32_t max : {limits::k_max_message, limits::k_max_inspected_message, std::uint32_t{64}}) {
    const FrameResult r = peek_frame(in, max);
    if (in.size() < k_header_size) {
      FUZZ_CHECK(r.status == FrameStatus::need_more);
    } else if (r.status == FrameStatus::ok) {
      FUZZ_CHECK(r.frame.tag == in[0]);
      FUZZ_CHECK(r.frame.length == read_u32(in.data() + 1));
      FUZZ_CHECK(r.frame.length >= 4 && r.frame.length <= max);
      FUZZ_CHECK(r.frame.size() == r.frame.length + std::size_t{1});
    } else {
      FUZZ_CHECK(r.status == FrameStatus::invalid && r.error != nullptr);
    }
    const FrameResult whole = peek_message(in, max);
    if (r.status == FrameStatus::ok) {
      FUZZ_CHECK(whole.status == (in.size() >= r.frame.size() ? FrameStatus::ok : FrameStatus::need_more));
    } else {
      FUZZ_CHECK(whole.status == r.status);
    }
  }

  const StartupFrameResult s = peek_startup_frame(in);
  if (in.size() < 4) {
    FUZZ_CHECK(s.status == FrameStatus::need_more);
  } else if (s.status == FrameStatus::ok) {
    FUZZ_CHECK(s.length == read_u32(in.data()));
    FUZZ_CHECK(s.length >= limits::k_min_startup_packet && s.length <= limits::k_max_startup_packet);
  } else {
    FUZZ_CHECK(s.status == FrameStatus::invalid && s.error != nullptr);
  }
  const StartupFrameResult sp = peek_startup_packet(in);
  if (s.status == FrameStatus::ok) {
    FUZZ_CHECK(sp.status == (in.size() >= s.length ? FrameStatus::ok : FrameStatus::need_more));
    if (sp.status == FrameStatus::ok) (void)parse_startup_packet(in.substr(0, s.length));
  } else {
    FUZZ_CHECK(sp.status == s.status);
  }
}

// Whatever a message's tag, no parser may misbehave on its body.
void parse_body_everyway(std::string_view body) {
  (void)parse_authentication(body);
  (void)parse_password_message(body);
  (void)parse_sasl_initial_response(body);
  (void)parse_parameter_status(body);
  (void)parse_backend_key_data(body);
  (void)parse_ready_for_query(body);
  (void)parse_error_fields(body);
  (void)parse_negotiate_protocol_version(body);
  (void)parse_query(body);
  (void)parse_command_complete(body);
  (void)parse_row_description(body);
  (void)parse_data_row(body);
}

void walk_messages(std::string_view in) {
  parse_body_everyway(in);
  for (;;) {
    const FrameResult r = peek_message(in, limits::k_max_inspected_message);
    if (r.status != FrameStatus::ok) break;
    parse_body_everyway(in.substr(k_header_size, r.frame.body_size()));
    in.remove_prefix(r.frame.size());
  }
}

// ---------------------------------------------------------------------------------------------
// StreamScanner against a model that sees the whole stream at once.

// Hook decisions depend only on the message, never on how the stream was split, so the model can predict them.
struct Policy {
  std::uint8_t bits = 0;
  bool inspect(char tag, std::uint32_t length) const {
    return ((static_cast<std::uint8_t>(tag) ^ bits) & 3) == 0 || ((bits & 0x80) != 0 && length < 64);
  }
  net::Verdict verdict(std::string_view whole) const {
    switch ((whole.size() + (bits >> 2)) % 3) {
      case 0: return net::Verdict::forward;
      case 1: return net::Verdict::drop;
      default: return net::Verdict::replace;
    }
  }
  std::uint32_t max_length() const { return (bits & 0x20) != 0 ? 1000 : limits::k_max_message; }
};

enum class EventKind : char { inspect_yes = 'i', inspect_no = 'n', passthrough = 'p', message = 'm' };
struct Event {
  EventKind kind;
  char tag;
  std::uint32_t length;
  bool operator==(const Event&) const = default;
};

struct Hooks {
  Policy policy;
  std::string replacement_text;
  std::vector<Event> events;
  std::size_t replacements = 0;

  bool inspect(char tag, std::uint32_t length) {
    const bool yes = policy.inspect(tag, length);
    events.push_back({yes ? EventKind::inspect_yes : EventKind::inspect_no, tag, length});
    return yes;
  }
  std::string_view replacement() { return replacement_text; }
  net::Verdict on_message(char tag, std::string_view whole) {
    FUZZ_CHECK(whole.size() >= k_header_size);
    FUZZ_CHECK(whole[0] == tag);
    FUZZ_CHECK(read_u32(whole.data() + 1) + std::size_t{1} == whole.size());
    events.push_back({EventKind::message, tag, read_u32(whole.data() + 1)});
    const net::Verdict v = policy.verdict(whole);
    if (v == net::Verdict::replace) ++replacements;
    return v;
  }
  void on_passthrough(char tag, std::uint32_t length) { events.push_back({EventKind::passthrough, tag, length}); }
};

struct Expectation {
  std::string out;
  std::vector<Event> events;
  bool error = false;
  bool boundary = false;
};

Expectation model(std::string_view in, const Policy& policy, std::string_view replacement) {
  Expectation e;
  std::size_t pos = 0;
  while (pos < in.size()) {
    const std::string_view rest = in.substr(pos);
    const FrameResult r = peek_frame(rest, policy.max_length());
    if (r.status == FrameStatus::invalid) {
      e.error = true;
      return e;
    }
    if (r.status == FrameStatus::need_more) return e;  // a partial header is held
    const bool inspect = policy.inspect(r.frame.tag, r.frame.length);
    e.events.push_back({inspect ? EventKind::inspect_yes : EventKind::inspect_no, r.frame.tag, r.frame.length});
    if (!inspect) {
      e.events.push_back({EventKind::passthrough, r.frame.tag, r.frame.length});
      e.out.append(rest.substr(0, r.frame.size()));
      pos += r.frame.size();
      continue;
    }
    if (r.frame.length > limits::k_max_inspected_message) {
      e.error = true;
      return e;
    }
    if (rest.size() < r.frame.size()) return e;  // an inspected message is being assembled
    const std::string_view whole = rest.substr(0, r.frame.size());
    e.events.push_back({EventKind::message, r.frame.tag, r.frame.length});
    switch (policy.verdict(whole)) {
      case net::Verdict::forward: e.out.append(whole); break;
      case net::Verdict::drop: break;
      case net::Verdict::replace: e.out.append(replacement); break;
    }
    pos += r.frame.size();
  }
  e.boundary = pos == in.size();
  return e;
}

void check_scanner(Controls& c, std::string_view stream) {
  Hooks hooks;
  hooks.policy.bits = c.u8();
  const std::uint8_t extra = c.u8();
  hooks.replacement_text = (extra & 1) != 0 ? std::string() : std::string("Zrepl");
  const bool release_between_feeds = (extra & 2) != 0;
  const std::size_t cut1 = c.u16() % (stream.size() + 1);
  const std::size_t cut2 = cut1 + c.u16() % (stream.size() - cut1 + 1);
  const std::string_view chunks[] = {stream.substr(0, cut1), stream.substr(cut1, cut2 - cut1), stream.substr(cut2)};

  net::StreamScanner scanner(hooks.policy.max_length());
  std::string forwarded;
  bool error = false;
  for (const std::string_view chunk : chunks) {
    // Each feed gets its own copy, as a socket read would, so views into an earlier feed's bytes are caught by ASan.
    const std::string buffer(chunk);
    net::Segments out;
    const char* err = scanner.feed(buffer, hooks, out);
    for (const std::string_view s : out) forwarded.append(s);  // views live until the next feed
    if (err != nullptr) {
      error = true;
      break;
    }
    if (release_between_feeds) scanner.release_memory();
  }

  const Expectation expected = model(stream, hooks.policy, hooks.replacement_text);
  FUZZ_CHECK(error == expected.error);
  FUZZ_CHECK(forwarded == expected.out);
  FUZZ_CHECK(hooks.events == expected.events);
  // Only replacements add bytes: everything else forwarded is a part of the input.
  FUZZ_CHECK(forwarded.size() <= stream.size() + hooks.replacements * hooks.replacement_text.size());
  if (!error) FUZZ_CHECK(scanner.at_boundary() == expected.boundary);
}

}  // namespace

// Input: 6 control bytes (scanner policy, options, two cut points), then the byte stream.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in = fuzz::as_view(data, size);
  check_peeks(in);
  Controls c(in);
  c.u8();
  c.u8();
  c.u16();
  c.u16();
  const std::string_view stream = c.rest();
  check_peeks(stream);
  walk_messages(stream);
  Controls controls(in);
  check_scanner(controls, stream);
  return 0;
}
