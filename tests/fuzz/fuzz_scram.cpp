// fuzz_scram: both sides of a SCRAM-SHA-256 exchange with fixed secrets and nonces (RFC 7677's test vector), and
// parse_scram_secret with a format round trip.
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "fuzz_support.hpp"
#include "pgweir/auth/scram.hpp"

namespace {

using namespace pgweir;
using namespace pgweir::auth;
using fuzz::split_at;

// RFC 7677 section 3: user "user", password "pencil".
constexpr std::string_view k_password = "pencil";
constexpr std::string_view k_salt_b64 = "W22ZaJ0SNY7soEsUEjb6gQ==";
constexpr std::string_view k_client_nonce = "rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view k_server_nonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
constexpr std::string_view k_client_first = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view k_client_final =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
// Client-side password derivation runs PBKDF2 with the server's iteration count; above this the harness skips the
// password mode so one input cannot take minutes (the keys mode covers the same parsing without PBKDF2).
constexpr int k_max_fuzzed_iterations = 64;

struct Fixture {
  ScramSecret secret;
  Key client_key{};
  ChannelBinding binding;

  Fixture() {
    secret = make_scram_secret(k_password, *base64_decode(k_salt_b64), 4096);
    binding.data = std::string(32, '\x5a');
    // The vector must pass, or every other input would test nothing.
    ScramServerExchange server(secret);
    server.set_nonce_for_testing(std::string(k_server_nonce));
    FUZZ_CHECK(server.handle_client_first("SCRAM-SHA-256", k_client_first).has_value());
    FUZZ_CHECK(server.handle_client_final(k_client_final).has_value());
    FUZZ_CHECK(server.client_key().has_value());
    client_key = *server.client_key();
  }
};

const Fixture& fixture() {
  static const Fixture f;
  return f;
}

// Input "MECHANISM\nclient-first\nclient-final".
void fuzz_server(std::string_view in, bool offer_binding) {
  const Fixture& f = fixture();
  const auto mech = split_at(in, '\n');
  const auto messages = split_at(mech.tail, '\n');
  std::optional<ChannelBinding> binding;
  if (offer_binding) binding = f.binding;
  ScramServerExchange server(f.secret, binding);
  server.set_nonce_for_testing(std::string(k_server_nonce));

  auto server_first = server.handle_client_first(mech.head, messages.head);
  if (!server_first) {
    FUZZ_CHECK(!server.handle_client_final(messages.tail).has_value());  // a failed exchange stays spent
    FUZZ_CHECK(!server.client_key().has_value());
    return;
  }
  FUZZ_CHECK(server_first->starts_with("r="));
  FUZZ_CHECK(server_first->find(std::string(k_server_nonce) + ",s=") != std::string::npos);
  auto server_final = server.handle_client_final(messages.tail);
  if (server_final) {
    FUZZ_CHECK(server_final->starts_with("v="));
    // A proof only the password's owner can make: the recovered ClientKey is the real one.
    FUZZ_CHECK(server.client_key().has_value() && *server.client_key() == f.client_key);
  } else {
    FUZZ_CHECK(!server.client_key().has_value());
  }
  FUZZ_CHECK(!server.handle_client_final(messages.tail).has_value());  // never twice
}

bool small_iteration_count(std::string_view server_first) {
  const auto at = server_first.rfind(",i=");
  if (at == std::string_view::npos) return false;
  const std::string_view digits = server_first.substr(at + 3);
  int n = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  return ec == std::errc{} && end == digits.data() + digits.size() && n >= 1 && n <= k_max_fuzzed_iterations;
}

// Input "server-first\nserver-final".
void fuzz_client(std::string_view in, bool with_password) {
  const Fixture& f = fixture();
  const auto messages = split_at(in, '\n');
  if (with_password && !small_iteration_count(messages.head)) return;
  ScramClientExchange client = with_password ? ScramClientExchange(std::string(k_password))
                                             : ScramClientExchange(f.client_key, f.secret.server_key);
  client.set_nonce_for_testing(std::string(k_client_nonce), "user");
  FUZZ_CHECK(client.client_first() == k_client_first);
  auto client_final = client.handle_server_first(messages.head);
  if (!client_final) {
    FUZZ_CHECK(!client.verify_server_final(messages.tail).has_value());
    return;
  }
  FUZZ_CHECK(client_final->starts_with("c=biws,r=" + std::string(k_client_nonce)));
  FUZZ_CHECK(client_final->find(",p=") != std::string::npos);
  (void)client.verify_server_final(messages.tail);
  FUZZ_CHECK(!client.verify_server_final(messages.tail).has_value());  // never twice
}

void fuzz_verifier(std::string_view in) {
  auto secret = parse_scram_secret(in);
  if (!secret) return;
  FUZZ_CHECK(secret->iterations >= 1 && !secret->salt.empty());
  const std::string text = format_scram_secret(*secret);
  auto again = parse_scram_secret(text);
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(again->iterations == secret->iterations && again->salt == secret->salt &&
             again->stored_key == secret->stored_key && again->server_key == secret->server_key);
  FUZZ_CHECK(format_scram_secret(*again) == text);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)fixture();
  return 0;
}

// Input: one mode byte, then that mode's text. 's' server, 'b' server offering channel binding, 'c' client with
// keys, 'w' client with the password (small iteration counts only), 'v' verifier; any other byte: taken modulo 5.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view rest = fuzz::as_view(data + 1, size - 1);
  char mode = static_cast<char>(data[0]);
  if (std::string_view("sbcwv").find(mode) == std::string_view::npos) mode = "sbcwv"[data[0] % 5];
  switch (mode) {
    case 's': fuzz_server(rest, false); break;
    case 'b': fuzz_server(rest, true); break;
    case 'c': fuzz_client(rest, false); break;
    case 'w': fuzz_client(rest, true); break;
    default: fuzz_verifier(rest); break;
  }
  return 0;
}
