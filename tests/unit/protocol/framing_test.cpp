// Framing: peek_frame / peek_message / peek_startup_frame / peek_startup_packet.
#include <string>
#include <vector>

#include "support.hpp"

using namespace std::literals;

namespace pgweir::protocol {
namespace {

// What a connection does with its input buffer: take every whole message out, leave the rest for later.
struct Decoder {
  std::string buffer;
  std::vector<test::Message> messages;
  bool invalid = false;

  void feed(std::string_view bytes) {
    buffer.append(bytes);
    for (;;) {
      const test::ExactBytes exact(buffer);
      const FrameResult r = peek_message(exact.view(), limits::k_max_inspected_message);
      if (r.status == FrameStatus::invalid) invalid = true;
      if (r.status != FrameStatus::ok) return;
      messages.push_back({r.frame.tag, buffer.substr(k_header_size, r.frame.body_size())});
      buffer.erase(0, r.frame.size());
    }
  }
};

std::string three_messages() {
  std::string wire;
  append_parameter_status(wire, "client_encoding", "UTF8");
  append_backend_key_data(wire, 4242, 0xdeadbeef);
  append_ready_for_query(wire, 'I');
  return wire;
}

}  // namespace

TEST_CASE("peek_frame needs a whole header and nothing more") {
  std::string wire;
  append_ready_for_query(wire, 'T');
  REQUIRE(wire.size() == 6);
  for (std::size_t k = 0; k < k_header_size; ++k) {
    const test::ExactBytes prefix(std::string_view(wire).substr(0, k));
    CHECK(peek_frame(prefix.view(), limits::k_max_message).status == FrameStatus::need_more);
  }
  for (std::size_t k = k_header_size; k <= wire.size(); ++k) {
    const test::ExactBytes prefix(std::string_view(wire).substr(0, k));
    const FrameResult r = peek_frame(prefix.view(), limits::k_max_message);
    REQUIRE(r.status == FrameStatus::ok);
    CHECK(r.frame.tag == 'Z');
    CHECK(r.frame.length == 5);
    CHECK(r.frame.size() == 6);
    CHECK(r.frame.body_size() == 1);
  }
}

TEST_CASE("peek_message is need_more at every split point until the message is whole") {
  std::string wire;
  append_error(wire, "FATAL", "28P01", "password authentication failed for user \"app\"");
  for (std::size_t k = 0; k < wire.size(); ++k) {
    const test::ExactBytes prefix(std::string_view(wire).substr(0, k));
    const FrameResult r = peek_message(prefix.view(), limits::k_max_inspected_message);
    CHECK_MESSAGE(r.status == FrameStatus::need_more, "prefix length " << k);
    if (k >= k_header_size) CHECK(r.frame.size() == wire.size());  // tells the caller how much to wait for
  }
  const test::ExactBytes whole(wire);
  const FrameResult r = peek_message(whole.view(), limits::k_max_inspected_message);
  REQUIRE(r.status == FrameStatus::ok);
  CHECK(r.frame.tag == 'E');
  CHECK(r.frame.size() == wire.size());
}

TEST_CASE("a stream split at every byte decodes to the same messages") {
  const std::string wire = three_messages();
  for (std::size_t k = 0; k <= wire.size(); ++k) {
    Decoder d;
    d.feed(std::string_view(wire).substr(0, k));
    d.feed(std::string_view(wire).substr(k));
    REQUIRE_MESSAGE(d.messages.size() == 3, "split at " << k);
    CHECK(d.messages[0].tag == 'S');
    CHECK(d.messages[1].tag == 'K');
    CHECK(d.messages[2].tag == 'Z');
    CHECK(d.messages[2].body == "I");
    CHECK(d.buffer.empty());
    CHECK_FALSE(d.invalid);
  }
}

TEST_CASE("a stream fed one byte at a time decodes to the same messages") {
  const std::string wire = three_messages();
  Decoder d;
  for (char c : wire) d.feed(std::string_view(&c, 1));
  REQUIRE(d.messages.size() == 3);
  const auto status = parse_parameter_status(d.messages[0].body);
  REQUIRE(status);
  CHECK(status->name == "client_encoding");
  CHECK(status->value == "UTF8");
  const auto key = parse_backend_key_data(d.messages[1].body);
  REQUIRE(key);
  CHECK(key->process_id == 4242);
  CHECK(key->secret_key == 0xdeadbeef);
}

TEST_CASE("two messages in one buffer are framed one after the other") {
  std::string wire;
  append_query(wire, "SELECT 1");
  append_sync(wire);
  const test::ExactBytes exact(wire);
  std::string_view in = exact.view();

  const FrameResult first = peek_frame(in, limits::k_max_message);
  REQUIRE(first.status == FrameStatus::ok);
  CHECK(first.frame.tag == 'Q');
  CHECK(first.frame.body_size() == "SELECT 1"sv.size() + 1);
  in.remove_prefix(first.frame.size());

  const FrameResult second = peek_frame(in, limits::k_max_message);
  REQUIRE(second.status == FrameStatus::ok);
  CHECK(second.frame.tag == 'S');
  CHECK(second.frame.length == 4);
  CHECK(second.frame.body_size() == 0);
  in.remove_prefix(second.frame.size());

  CHECK(in.empty());
  CHECK(peek_frame(in, limits::k_max_message).status == FrameStatus::need_more);
}

TEST_CASE("peek_frame rejects a declared length below 4") {
  for (std::uint32_t length = 0; length < 4; ++length) {
    const test::ExactBytes header("Q" + test::u32_bytes(length));
    const FrameResult r = peek_frame(header.view(), limits::k_max_message);
    CHECK(r.status == FrameStatus::invalid);
    CHECK(r.error != nullptr);
    CHECK(peek_message(header.view(), limits::k_max_message).status == FrameStatus::invalid);
  }
  const test::ExactBytes empty_body("S" + test::u32_bytes(4));
  CHECK(peek_frame(empty_body.view(), limits::k_max_message).status == FrameStatus::ok);
}

TEST_CASE("peek_frame rejects a declared length above the caller's limit") {
  constexpr std::uint32_t max = limits::k_max_auth_message;
  const test::ExactBytes at_limit("p" + test::u32_bytes(max));
  CHECK(peek_frame(at_limit.view(), max).status == FrameStatus::ok);
  CHECK(peek_message(at_limit.view(), max).status == FrameStatus::need_more);

  const test::ExactBytes over("p" + test::u32_bytes(max + 1));
  const FrameResult r = peek_frame(over.view(), max);
  CHECK(r.status == FrameStatus::invalid);
  CHECK(r.error != nullptr);
  // Rejected from the header alone, before anyone buffers the body.
  CHECK(peek_message(over.view(), max).status == FrameStatus::invalid);

  // A length with the sign bit set is a negative int32 on the wire.
  const test::ExactBytes negative("D" + test::u32_bytes(0x80000000u));
  CHECK(peek_frame(negative.view(), limits::k_max_message).status == FrameStatus::invalid);
  const test::ExactBytes all_ones("D" + test::u32_bytes(0xffffffffu));
  CHECK(peek_frame(all_ones.view(), limits::k_max_message).status == FrameStatus::invalid);
}

TEST_CASE("peek_startup_frame needs 4 bytes; peek_startup_packet needs the whole packet") {
  std::string wire;
  append_startup_message(wire, {{"user", "app"}, {"database", "appdb"}});
  for (std::size_t k = 0; k < wire.size(); ++k) {
    const test::ExactBytes prefix(std::string_view(wire).substr(0, k));
    const StartupFrameResult frame = peek_startup_frame(prefix.view());
    if (k < 4) {
      CHECK(frame.status == FrameStatus::need_more);
    } else {
      CHECK(frame.status == FrameStatus::ok);
      CHECK(frame.length == wire.size());
    }
    CHECK_MESSAGE(peek_startup_packet(prefix.view()).status == FrameStatus::need_more, "prefix length " << k);
  }
  const test::ExactBytes whole(wire);
  const StartupFrameResult r = peek_startup_packet(whole.view());
  REQUIRE(r.status == FrameStatus::ok);
  CHECK(r.length == wire.size());
}

TEST_CASE("peek_startup_frame rejects lengths below 8 and above the startup limit") {
  for (std::uint32_t length = 0; length < limits::k_min_startup_packet; ++length) {
    const test::ExactBytes in(test::u32_bytes(length) + test::u32_bytes(limits::k_protocol_v3));
    const StartupFrameResult r = peek_startup_frame(in.view());
    CHECK(r.status == FrameStatus::invalid);
    CHECK(r.error != nullptr);
  }
  const test::ExactBytes eight(test::u32_bytes(8));
  CHECK(peek_startup_frame(eight.view()).status == FrameStatus::ok);
  const test::ExactBytes at_limit(test::u32_bytes(limits::k_max_startup_packet));
  CHECK(peek_startup_frame(at_limit.view()).status == FrameStatus::ok);
  const test::ExactBytes over(test::u32_bytes(limits::k_max_startup_packet + 1));
  CHECK(peek_startup_frame(over.view()).status == FrameStatus::invalid);
  CHECK(peek_startup_packet(over.view()).status == FrameStatus::invalid);
  const test::ExactBytes huge(test::u32_bytes(0xffffffffu));
  CHECK(peek_startup_frame(huge.view()).status == FrameStatus::invalid);
}

TEST_CASE("an SSLRequest and the bytes behind it are told apart") {
  // A client that pipelines data behind its SSLRequest: framing must stop at the packet's end, so the caller can
  // see leftover bytes and refuse them before the TLS handshake.
  std::string wire;
  append_ssl_request(wire);
  wire += "\x16\x03\x01"sv;
  const test::ExactBytes in(wire);
  const StartupFrameResult r = peek_startup_packet(in.view());
  REQUIRE(r.status == FrameStatus::ok);
  CHECK(r.length == 8);
  CHECK(in.view().size() - r.length == 3);
}

}  // namespace pgweir::protocol
