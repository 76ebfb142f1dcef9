// Random and mutated input against every framer and parser. Under ASan+UBSan a crash or overread fails the run;
// the checks below also fail it when a parser accepts something its builder would not have written.
#include <random>
#include <string>
#include <variant>
#include <vector>

#include "support.hpp"

namespace pgweir::protocol {
namespace {

constexpr std::uint32_t k_seed = 20240611;
constexpr int k_random_buffers = 10000;
constexpr int k_mutations = 10000;

bool inside(std::string_view part, std::string_view whole) {
  return part.empty() || (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

std::string rebuilt(void (*append)(std::string&, std::string_view), std::string_view value) {
  std::string out;
  append(out, value);
  return out.substr(k_header_size);
}

// Runs everything on `in`; whatever a parser accepts must come back out of the matching builder unchanged.
void exercise(std::string_view bytes) {
  const test::ExactBytes exact(bytes);
  const std::string_view in = exact.view();

  for (std::uint32_t max : {0u, 4u, 64u, limits::k_max_message, 0xffffffffu}) {
    const FrameResult f = peek_frame(in, max);
    if (f.status == FrameStatus::need_more) REQUIRE(in.size() < k_header_size);
    if (f.status == FrameStatus::ok) {
      REQUIRE(f.frame.length >= 4);
      REQUIRE(f.frame.length <= max);
      REQUIRE(f.frame.tag == in[0]);
    }
    if (f.status == FrameStatus::invalid) REQUIRE(f.error != nullptr);
    const FrameResult m = peek_message(in, max);
    if (m.status == FrameStatus::ok) REQUIRE(in.size() >= m.frame.size());
  }
  const StartupFrameResult s = peek_startup_frame(in);
  if (s.status == FrameStatus::ok) REQUIRE((s.length >= 8 && s.length <= limits::k_max_startup_packet));
  const StartupFrameResult sp = peek_startup_packet(in);
  if (sp.status == FrameStatus::ok) REQUIRE(in.size() >= sp.length);

  if (auto p = parse_startup_packet(in)) {
    if (const auto* msg = std::get_if<StartupMessage>(&*p)) {
      REQUIRE(msg->find("user") != nullptr);
      REQUIRE(msg->parameters.size() <= limits::k_max_startup_parameters);
      if (msg->protocol_version == limits::k_protocol_v3) {
        std::string again;
        append_startup_message(again, msg->parameters);
        REQUIRE(again == in);
      }
    }
  }

  if (auto a = parse_authentication(in)) {
    std::string again;
    switch (a->code) {
      case AuthCode::ok: append_authentication_ok(again); break;
      case AuthCode::md5_password: append_authentication_md5(again, a->md5_salt); break;
      case AuthCode::sasl_final: append_authentication_sasl_final(again, a->data); break;
      case AuthCode::sasl: {
        std::vector<std::string_view> names(a->mechanisms.begin(), a->mechanisms.end());
        append_authentication_sasl(again, names);
        break;
      }
      default: again = "R" + test::u32_bytes(static_cast<std::uint32_t>(in.size() + 4)) + std::string(in);
    }
    REQUIRE(again.substr(k_header_size) == in);
  }

  if (auto pw = parse_password_message(in)) {
    REQUIRE(inside(*pw, in));
    REQUIRE(rebuilt(append_password_message, *pw) == in);
  }
  if (auto q = parse_query(in)) REQUIRE(rebuilt(append_query, *q) == in);
  if (auto c = parse_command_complete(in)) REQUIRE(rebuilt(append_command_complete, *c) == in);

  if (auto sasl = parse_sasl_initial_response(in)) {
    REQUIRE(inside(sasl->mechanism, in));
    if (sasl->data) {
      REQUIRE(inside(*sasl->data, in));
      std::string again;
      append_sasl_initial_response(again, sasl->mechanism, *sasl->data);
      REQUIRE(again.substr(k_header_size) == in);
    }
  }
  if (auto ps = parse_parameter_status(in)) {
    std::string again;
    append_parameter_status(again, ps->name, ps->value);
    REQUIRE(again.substr(k_header_size) == in);
  }
  if (auto k = parse_backend_key_data(in)) {
    std::string again;
    append_backend_key_data(again, k->process_id, k->secret_key);
    REQUIRE(again.substr(k_header_size) == in);
  }
  if (auto z = parse_ready_for_query(in)) REQUIRE(in.size() == 1);
  if (auto n = parse_negotiate_protocol_version(in)) {
    std::string again;
    append_negotiate_protocol_version(again, n->newest_minor, n->unrecognized_options);
    REQUIRE(again.substr(k_header_size) == in);
  }
  if (auto e = parse_error_fields(in)) {
    // Field order is not canonical, so compare meaning: build, parse again, same fields.
    std::string again;
    append_error_response(again, *e);
    const auto e2 = parse_error_fields(std::string_view(again).substr(k_header_size));
    REQUIRE(e2);
    REQUIRE(e2->severity == e->severity);
    REQUIRE(e2->code == e->code);
    REQUIRE(e2->message == e->message);
    REQUIRE(e2->detail == e->detail);
    REQUIRE(e2->hint == e->hint);
  }
  if (auto rd = parse_row_description(in)) {
    std::string again;
    append_row_description(again, *rd);
    REQUIRE(again.substr(k_header_size) == in);
  }
  if (auto dr = parse_data_row(in)) {
    std::string again;
    append_data_row(again, *dr);
    REQUIRE(again.substr(k_header_size) == in);
  }
}

// Bytes that steer parsers into their interesting branches: NULs, sign bits, small lengths, tags.
char biased_byte(std::mt19937& rng) {
  static constexpr char k_alphabet[] = {'\0', '\0', '\0', '\x01', '\x03', '\x04', '\x05', '\x08', '\x0a', '\x7f',
                                        '\x80', '\xff', 'S',    'V',    'C',    'M',    'u',    's',    'e',    'r'};
  return k_alphabet[rng() % sizeof(k_alphabet)];
}

std::vector<std::string> valid_bodies_and_packets() {
  std::vector<std::string> corpus;
  auto body_of = [&](auto append) {
    std::string wire;
    append(wire);
    corpus.push_back(wire.substr(k_header_size));
  };
  std::string startup;
  append_startup_message(startup, {{"user", "app"}, {"database", "db"}, {"options", "-c x=y"}});
  corpus.push_back(startup);
  std::string cancel;
  append_cancel_request(cancel, 1, 2);
  corpus.push_back(cancel);
  body_of([](std::string& w) { append_authentication_md5(w, {1, 2, 3, 4}); });
  body_of([](std::string& w) { append_authentication_sasl(w, {"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"}); });
  body_of([](std::string& w) { append_authentication_sasl_continue(w, "r=abc,s=c2FsdA==,i=4096"); });
  body_of([](std::string& w) { append_sasl_initial_response(w, "SCRAM-SHA-256", "n,,n=,r=abc"); });
  body_of([](std::string& w) { append_password_message(w, "secret"); });
  body_of([](std::string& w) { append_parameter_status(w, "DateStyle", "ISO, MDY"); });
  body_of([](std::string& w) { append_backend_key_data(w, 7, 8); });
  body_of([](std::string& w) { append_error(w, "FATAL", "28000", "no pg_hba.conf entry"); });
  body_of([](std::string& w) { append_negotiate_protocol_version(w, 0, {"_pq_.a"}); });
  body_of([](std::string& w) { append_row_description(w, {FieldDescription{"a"}, FieldDescription{"b"}}); });
  body_of([](std::string& w) { append_data_row(w, {std::string_view("x"), std::nullopt}); });
  return corpus;
}

}  // namespace

TEST_CASE("random buffers never crash a framer or parser") {
  std::mt19937 rng(k_seed);
  for (int i = 0; i < k_random_buffers; ++i) {
    const std::size_t size = rng() % 48;
    const bool biased = (i % 2) == 0;
    std::string buf(size, '\0');
    for (auto& c : buf) c = biased ? biased_byte(rng) : static_cast<char>(rng());
    // Half the startup-sized inputs get a truthful length prefix, or they would all fail the first check.
    if (size >= 8 && (i % 4) < 2) {
      const std::string len = test::u32_bytes(static_cast<std::uint32_t>(size));
      buf.replace(0, 4, len);
      if (i % 8 == 0) buf.replace(4, 4, test::u32_bytes(limits::k_protocol_v3));
    }
    CAPTURE(i);
    exercise(buf);
  }
}

TEST_CASE("mutated valid messages never crash a framer or parser") {
  std::mt19937 rng(k_seed + 1);
  const std::vector<std::string> corpus = valid_bodies_and_packets();
  for (const auto& valid : corpus) exercise(valid);
  for (int i = 0; i < k_mutations; ++i) {
    std::string buf = corpus[rng() % corpus.size()];
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits && !buf.empty(); ++e) {
      const std::size_t at = rng() % buf.size();
      switch (rng() % 4) {
        case 0: buf[at] = static_cast<char>(rng()); break;
        case 1: buf[at] = biased_byte(rng); break;
        case 2: buf.resize(at); break;
        default: buf.insert(at, 1, biased_byte(rng)); break;
      }
    }
    CAPTURE(i);
    exercise(buf);
  }
}

}  // namespace pgweir::protocol
