// SCRAM exchanges: RFC 7677's vector, server<->client round trips, channel binding and downgrade rules, and
// garbage from the network.
#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <random>

#include "pgweir/auth/scram.hpp"

namespace auth = pgweir::auth;

namespace {

// RFC 7677, section 3.
constexpr std::string_view k_client_nonce = "rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view k_server_nonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
constexpr std::string_view k_client_first = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view k_server_first =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
constexpr std::string_view k_client_final =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
constexpr std::string_view k_server_final = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

auth::ScramSecret rfc_secret() {
  return auth::make_scram_secret("pencil", *auth::base64_decode("W22ZaJ0SNY7soEsUEjb6gQ=="), 4096);
}

// Fast verifiers for the many round trips below.
constexpr int k_test_iterations = 16;

struct RoundTrip {
  bool first_ok = false;
  bool final_ok = false;
  bool client_verified = false;
  std::optional<auth::Key> client_key;
};

RoundTrip round_trip(const auth::ScramSecret& secret, auth::ScramClientExchange& client) {
  RoundTrip r;
  auth::ScramServerExchange server(secret);
  auto server_first = server.handle_client_first("SCRAM-SHA-256", client.client_first());
  r.first_ok = server_first.has_value();
  if (!server_first) return r;
  auto client_final = client.handle_server_first(*server_first);
  REQUIRE(client_final);
  auto server_final = server.handle_client_final(*client_final);
  r.final_ok = server_final.has_value();
  r.client_key = server.client_key();
  if (server_final) r.client_verified = client.verify_server_final(*server_final).has_value();
  return r;
}

// proof = ClientKey XOR HMAC(StoredKey, AuthMessage), for client-final messages built by hand.
std::string hand_proof(const auth::Key& client_key, const auth::Key& stored_key, const std::string& auth_message) {
  unsigned char sig[32];
  unsigned int len = 0;
  HMAC(EVP_sha256(), stored_key.data(), 32, reinterpret_cast<const unsigned char*>(auth_message.data()),
       auth_message.size(), sig, &len);
  std::string proof(32, '\0');
  for (std::size_t i = 0; i < 32; ++i) proof[i] = static_cast<char>(client_key[i] ^ sig[i]);
  return auth::base64_encode(proof);
}

auth::Key rfc_client_key() {
  auth::ScramServerExchange server(rfc_secret());
  server.set_nonce_for_testing(std::string(k_server_nonce));
  REQUIRE(server.handle_client_first("SCRAM-SHA-256", k_client_first));
  REQUIRE(server.handle_client_final(k_client_final));
  return *server.client_key();
}

}  // namespace

TEST_CASE("RFC 7677 vector, client side") {
  auth::ScramClientExchange client("pencil");
  client.set_nonce_for_testing(std::string(k_client_nonce), "user");
  CHECK(client.client_first() == k_client_first);
  auto client_final = client.handle_server_first(k_server_first);
  REQUIRE(client_final);
  CHECK(*client_final == k_client_final);
  CHECK(client.verify_server_final(k_server_final));
}

TEST_CASE("RFC 7677 vector, server side") {
  auth::ScramServerExchange server(rfc_secret());
  server.set_nonce_for_testing(std::string(k_server_nonce));
  auto server_first = server.handle_client_first("SCRAM-SHA-256", k_client_first);
  REQUIRE(server_first);
  CHECK(*server_first == k_server_first);
  auto server_final = server.handle_client_final(k_client_final);
  REQUIRE(server_final);
  CHECK(*server_final == k_server_final);
  REQUIRE(server.client_key());
  // Logging in with the recovered ClientKey (no password) produces the very same client-final-message.
  auto again = auth::ScramClientExchange(*server.client_key(), rfc_secret().server_key);
  again.set_nonce_for_testing(std::string(k_client_nonce), "user");
  (void)again.client_first();
  auto final_from_keys = again.handle_server_first(k_server_first);
  REQUIRE(final_from_keys);
  CHECK(*final_from_keys == k_client_final);
  CHECK(again.verify_server_final(k_server_final));
}

TEST_CASE("RFC 7677 vector: the client rejects a wrong server signature") {
  auth::ScramClientExchange client("pencil");
  client.set_nonce_for_testing(std::string(k_client_nonce), "user");
  (void)client.client_first();
  REQUIRE(client.handle_server_first(k_server_first));
  CHECK_FALSE(client.verify_server_final("v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="));
}

TEST_CASE("round trips") {
  auto secret = auth::make_scram_secret("right", k_test_iterations);

  SUBCASE("right password passes and both sides agree") {
    auth::ScramClientExchange client("right");
    auto r = round_trip(secret, client);
    CHECK(r.first_ok);
    CHECK(r.final_ok);
    CHECK(r.client_verified);
    CHECK(r.client_key);
  }
  SUBCASE("wrong password fails") {
    auth::ScramClientExchange client("wrong");
    auto r = round_trip(secret, client);
    CHECK(r.first_ok);
    CHECK_FALSE(r.final_ok);
    CHECK_FALSE(r.client_key);
  }
  SUBCASE("mock secret fails for any password, including the empty one") {
    for (const char* password : {"right", "", "alice"}) {
      auth::ScramClientExchange client(password);
      auto r = round_trip(auth::mock_scram_secret("alice"), client);
      CHECK(r.first_ok);
      CHECK_FALSE(r.final_ok);
    }
  }
  SUBCASE("a parsed PostgreSQL verifier accepts its password") {
    auto pg = auth::parse_scram_secret(
        "SCRAM-SHA-256$4096:8TOcRsMZe6EXbfuJFBLhHw==$uLKhxjdtPHm8zq/AuHgaMYH5k+LGCjH6PU54EfNB8xI=:"
        "El8F590elHqDfKkjYcDma9e71ND/QYwsM09CjY2pkrs=");
    REQUIRE(pg);
    auth::ScramClientExchange client("correct horse battery staple");
    auto r = round_trip(*pg, client);
    CHECK(r.final_ok);
    CHECK(r.client_verified);
  }
  SUBCASE("pass-through login with recovered keys") {
    auth::ScramClientExchange client("right");
    auto r = round_trip(secret, client);
    REQUIRE(r.client_key);
    auth::ScramClientExchange relay(*r.client_key, secret.server_key);
    auto second = round_trip(secret, relay);
    CHECK(second.final_ok);
    CHECK(second.client_verified);

    auth::ScramClientExchange wrong_keys(*r.client_key, auth::Key{});
    auto third = round_trip(secret, wrong_keys);
    CHECK(third.final_ok);
    CHECK_FALSE(third.client_verified);  // the server's signature doesn't match a wrong ServerKey
  }
}

TEST_CASE("client rejects a bad server-first-message") {
  auto run = [](std::string_view server_first) {
    auth::ScramClientExchange client("pw");
    client.set_nonce_for_testing("abc");
    (void)client.client_first();
    return client.handle_server_first(server_first).has_value();
  };
  CHECK(run("r=abcdef,s=c2FsdA==,i=4096"));
  CHECK_FALSE(run("r=xyzdef,s=c2FsdA==,i=4096"));  // doesn't extend our nonce
  CHECK_FALSE(run("r=ab,s=c2FsdA==,i=4096"));
  CHECK_FALSE(run("r=abcdef,s=c2FsdA==,i=0"));
  CHECK_FALSE(run("r=abcdef,s=c2FsdA==,i=-5"));
  CHECK_FALSE(run("r=abcdef,s=c2FsdA==,i=12x"));
  CHECK_FALSE(run("r=abcdef,s=c2FsdA==,i=99999999999999"));
  CHECK_FALSE(run("r=abcdef,s=c2Fsd,i=4096"));
  CHECK_FALSE(run("r=abcdef,s=,i=4096"));
  CHECK_FALSE(run("r=abcdef,i=4096,s=c2FsdA=="));
  CHECK_FALSE(run("r=abcdef,s=c2FsdA==,i=4096,x=1"));
  CHECK_FALSE(run("m=ext,r=abcdef,s=c2FsdA==,i=4096"));
  CHECK_FALSE(run(""));
  CHECK_FALSE(run("e=other-error"));
}

TEST_CASE("client: server-final errors and order of calls") {
  auto secret = auth::make_scram_secret("pw", k_test_iterations);
  auth::ScramClientExchange client("pw");
  CHECK_FALSE(client.handle_server_first("r=x,s=c2FsdA==,i=1"));  // before client_first

  auth::ScramClientExchange rejected("pw");
  auth::ScramServerExchange server(secret);
  auto server_first = server.handle_client_first("SCRAM-SHA-256", rejected.client_first());
  REQUIRE(server_first);
  REQUIRE(rejected.handle_server_first(*server_first));
  auto result = rejected.verify_server_final("e=invalid-proof");
  REQUIRE_FALSE(result);
  CHECK(result.error().message.find("invalid-proof") != std::string::npos);
  CHECK_FALSE(rejected.verify_server_final("v=anything"));  // already finished
}

TEST_CASE("client-first-message escapes the user name and uses a fresh nonce") {
  auth::ScramClientExchange a("pw");
  auth::ScramClientExchange b("pw");
  std::string first_a = a.client_first();
  CHECK(first_a.starts_with("n,,n=,r="));
  CHECK(first_a.size() == std::string("n,,n=,r=").size() + 24);
  CHECK(first_a != b.client_first());

  auth::ScramClientExchange named("pw");
  named.set_nonce_for_testing("N", "a,b=c");
  CHECK(named.client_first() == "n,,n=a=2Cb=3Dc,r=N");
}

TEST_CASE("server: gs2 header and mechanism rules") {
  auto secret = auth::make_scram_secret("pw", k_test_iterations);
  auth::ChannelBinding binding;
  binding.data = std::string(32, '\x5a');

  auto first_ok = [&](std::optional<auth::ChannelBinding> b, std::string_view mechanism, std::string_view first) {
    auth::ScramServerExchange server(secret, std::move(b));
    return server.handle_client_first(mechanism, first).has_value();
  };

  CHECK(first_ok(std::nullopt, "SCRAM-SHA-256", "n,,n=,r=abc"));
  CHECK(first_ok(std::nullopt, "SCRAM-SHA-256", "y,,n=,r=abc"));        // client could bind; we can't: fine
  CHECK(first_ok(binding, "SCRAM-SHA-256", "n,,n=,r=abc"));              // client can't bind at all: fine
  CHECK_FALSE(first_ok(binding, "SCRAM-SHA-256", "y,,n=,r=abc"));        // PLUS was offered: downgrade
  CHECK_FALSE(first_ok(std::nullopt, "SCRAM-SHA-256", "p=tls-server-end-point,,n=,r=abc"));
  CHECK_FALSE(first_ok(binding, "SCRAM-SHA-256", "p=tls-server-end-point,,n=,r=abc"));
  CHECK_FALSE(first_ok(std::nullopt, "SCRAM-SHA-256-PLUS", "p=tls-server-end-point,,n=,r=abc"));
  CHECK(first_ok(binding, "SCRAM-SHA-256-PLUS", "p=tls-server-end-point,,n=,r=abc"));
  CHECK_FALSE(first_ok(binding, "SCRAM-SHA-256-PLUS", "n,,n=,r=abc"));
  CHECK_FALSE(first_ok(binding, "SCRAM-SHA-256-PLUS", "y,,n=,r=abc"));
  CHECK_FALSE(first_ok(binding, "SCRAM-SHA-256-PLUS", "p=tls-unique,,n=,r=abc"));
  CHECK_FALSE(first_ok(binding, "SCRAM-SHA-1", "n,,n=,r=abc"));
  CHECK_FALSE(first_ok(std::nullopt, "", "n,,n=,r=abc"));

  CHECK_FALSE(first_ok(std::nullopt, "SCRAM-SHA-256", "n,a=admin,n=,r=abc"));  // authzid
  CHECK_FALSE(first_ok(std::nullopt, "SCRAM-SHA-256", "n,,m=ext,n=,r=abc"));   // mandatory extension
  CHECK(first_ok(std::nullopt, "SCRAM-SHA-256", "n,,n=someone,r=abc,x=optional"));
  CHECK_FALSE(first_ok(std::nullopt, "SCRAM-SHA-256", "n,,n=,r=abc,"));
  CHECK_FALSE(first_ok(std::nullopt, "SCRAM-SHA-256", "n,,n=,r="));
  CHECK_FALSE(first_ok(std::nullopt, "SCRAM-SHA-256", "n,,n=,r=ab\x01"));
  CHECK_FALSE(first_ok(std::nullopt, "SCRAM-SHA-256", "n,,r=abc"));
  CHECK_FALSE(first_ok(std::nullopt, "SCRAM-SHA-256", "n,,n=,x=abc"));
  CHECK_FALSE(first_ok(std::nullopt, "SCRAM-SHA-256", "x,,n=,r=abc"));
  CHECK_FALSE(first_ok(std::nullopt, "SCRAM-SHA-256", "n,n=,r=abc"));
  CHECK_FALSE(first_ok(std::nullopt, "SCRAM-SHA-256", "n"));
  CHECK_FALSE(first_ok(std::nullopt, "SCRAM-SHA-256", ""));
}

TEST_CASE("server: channel binding data is checked") {
  const std::string password = "pw";
  auto secret = auth::make_scram_secret(password, k_test_iterations);
  auth::ChannelBinding binding;
  binding.data = std::string(32, '\x5a');

  // pgweir's client side never binds, so PLUS messages are built here by hand, with the ClientKey recovered from
  // one plain exchange.
  auth::ScramClientExchange probe(password);
  auth::ScramServerExchange probe_server(secret);
  auto probe_first = probe_server.handle_client_first("SCRAM-SHA-256", probe.client_first());
  REQUIRE(probe_first);
  auto probe_final = probe.handle_server_first(*probe_first);
  REQUIRE(probe_final);
  REQUIRE(probe_server.handle_client_final(*probe_final));
  const auth::Key client_key = *probe_server.client_key();

  auto plus_exchange = [&](std::string gs2, std::string cb_data, std::string mechanism) {
    auth::ScramServerExchange server(secret, binding);
    std::string bare = "n=,r=plusnonce";
    auto server_first = server.handle_client_first(mechanism, gs2 + bare);
    REQUIRE(server_first);
    std::string nonce = server_first->substr(2, server_first->find(',') - 2);
    std::string without_proof = "c=" + auth::base64_encode(gs2 + cb_data) + ",r=" + nonce;
    std::string auth_message = bare + "," + *server_first + "," + without_proof;
    std::string proof = hand_proof(client_key, secret.stored_key, auth_message);
    return server.handle_client_final(without_proof + ",p=" + proof).has_value();
  };

  CHECK(plus_exchange("p=tls-server-end-point,,", binding.data, "SCRAM-SHA-256-PLUS"));
  CHECK_FALSE(plus_exchange("p=tls-server-end-point,,", std::string(32, '\x5b'), "SCRAM-SHA-256-PLUS"));
  CHECK_FALSE(plus_exchange("p=tls-server-end-point,,", "", "SCRAM-SHA-256-PLUS"));
  // Non-PLUS with binding offered: c= must be exactly the gs2 header.
  CHECK(plus_exchange("n,,", "", "SCRAM-SHA-256"));
  CHECK_FALSE(plus_exchange("n,,", binding.data, "SCRAM-SHA-256"));
}

TEST_CASE("server: client-final checks") {
  const auto secret = rfc_secret();
  auto final_ok = [&](std::string_view client_final) {
    auth::ScramServerExchange server(secret);
    server.set_nonce_for_testing(std::string(k_server_nonce));
    REQUIRE(server.handle_client_first("SCRAM-SHA-256", k_client_first));
    return server.handle_client_final(client_final).has_value();
  };
  const std::string nonce = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
  const std::string proof = "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
  CHECK(final_ok("c=biws," + nonce + "," + proof));
  CHECK_FALSE(final_ok("c=eSws," + nonce + "," + proof));                // "y,," but we saw "n,,"
  CHECK_FALSE(final_ok("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k1," + proof));  // nonce
  CHECK_FALSE(final_ok("c=biws,r=rOprNGfwEbeRWgbNEkqO," + proof));       // client nonce only
  CHECK_FALSE(final_ok("c=biws," + nonce + ",p=eHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="));  // wrong proof
  CHECK_FALSE(final_ok("c=biws," + nonce + ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndQ=="));  // 31 bytes
  CHECK_FALSE(final_ok("c=biws," + nonce + ",p=" + auth::base64_encode(std::string(33, 'x'))));
  CHECK_FALSE(final_ok("c=biws," + nonce + ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ"));   // bad base64
  CHECK_FALSE(final_ok("c=biws," + nonce + ",p="));
  CHECK_FALSE(final_ok("c=biws," + nonce));                              // no proof
  CHECK_FALSE(final_ok("c=biws," + proof));
  CHECK_FALSE(final_ok(nonce + ",c=biws," + proof));                     // order
  CHECK_FALSE(final_ok("c=biws," + nonce + "," + proof + ",x=1"));       // garbage after proof
  CHECK_FALSE(final_ok("c=biws," + nonce + "," + proof + ","));
  CHECK_FALSE(final_ok("c=biws," + nonce + "," + proof + "," + proof));
  CHECK_FALSE(final_ok("c=biws," + nonce + ",1x," + proof));             // bad extension
  CHECK_FALSE(final_ok(""));
  // An optional extension changes the AuthMessage, so the RFC proof no longer fits; it must still parse.
  CHECK_FALSE(final_ok("c=biws," + nonce + ",x=ext," + proof));
}

TEST_CASE("server: the nonce is checked even when the proof was made over the wrong one") {
  const auth::Key client_key = rfc_client_key();
  auto final_ok = [&](const std::string& nonce) {
    auth::ScramServerExchange server(rfc_secret());
    server.set_nonce_for_testing(std::string(k_server_nonce));
    auto server_first = server.handle_client_first("SCRAM-SHA-256", k_client_first);
    REQUIRE(server_first);
    std::string without_proof = "c=biws,r=" + nonce;
    std::string auth_message = std::string(k_client_first.substr(3)) + "," + *server_first + "," + without_proof;
    return server.handle_client_final(without_proof + ",p=" + hand_proof(client_key, rfc_secret().stored_key,
                                                                       auth_message))
        .has_value();
  };
  CHECK(final_ok(std::string(k_client_nonce) + std::string(k_server_nonce)));  // the hand-made proof is right
  CHECK_FALSE(final_ok(std::string(k_client_nonce) + "another server nonce"));
  CHECK_FALSE(final_ok(std::string(k_client_nonce)));
}

TEST_CASE("server: calls out of order fail") {
  auto secret = rfc_secret();
  auth::ScramServerExchange server(secret);
  CHECK_FALSE(server.handle_client_final(k_client_final));
  CHECK_FALSE(server.handle_client_first("SCRAM-SHA-256", k_client_first));  // the exchange is spent

  auth::ScramServerExchange twice(secret);
  twice.set_nonce_for_testing(std::string(k_server_nonce));
  REQUIRE(twice.handle_client_first("SCRAM-SHA-256", k_client_first));
  CHECK_FALSE(twice.handle_client_first("SCRAM-SHA-256", k_client_first));
  CHECK_FALSE(twice.handle_client_final(k_client_final));  // spent by the bad call above

  auth::ScramServerExchange replay(secret);
  replay.set_nonce_for_testing(std::string(k_server_nonce));
  REQUIRE(replay.handle_client_first("SCRAM-SHA-256", k_client_first));
  REQUIRE(replay.handle_client_final(k_client_final));
  CHECK_FALSE(replay.handle_client_final(k_client_final));
}

TEST_CASE("server: a fresh server nonce is appended to the client's") {
  auth::ScramServerExchange a(rfc_secret());
  auth::ScramServerExchange b(rfc_secret());
  auto first_a = a.handle_client_first("SCRAM-SHA-256", k_client_first);
  auto first_b = b.handle_client_first("SCRAM-SHA-256", k_client_first);
  REQUIRE(first_a);
  REQUIRE(first_b);
  CHECK(first_a->starts_with("r=rOprNGfwEbeRWgbNEkqO"));
  CHECK(*first_a != *first_b);
  CHECK(first_a->ends_with(",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"));
}

TEST_CASE("server and client survive garbage") {
  auto secret = auth::make_scram_secret("pw", k_test_iterations);
  std::mt19937 rng(12345);
  const std::string alphabet = "nyp=,rcsiv amxbiws+/0123456789ABCabc\x01\xff";
  auto random_message = [&](bool from_alphabet) {
    std::string out(rng() % 80, '\0');
    for (auto& c : out) c = from_alphabet ? alphabet[rng() % alphabet.size()] : static_cast<char>(rng());
    return out;
  };
  for (int i = 0; i < 20000; ++i) {
    bool structured = i % 2 == 0;
    auth::ScramServerExchange server(secret, i % 3 == 0 ? std::optional<auth::ChannelBinding>(auth::ChannelBinding{})
                                                        : std::nullopt);
    std::string first = i % 5 == 0 ? "n,,n=,r=abc" : random_message(structured);
    auto server_first = server.handle_client_first(i % 7 == 0 ? "SCRAM-SHA-256-PLUS" : "SCRAM-SHA-256", first);
    if (server_first) {
      std::string final_message = random_message(structured);
      if (i % 4 == 0) final_message = "c=biws,r=abc" + final_message;
      CHECK_FALSE(server.handle_client_final(final_message));
    }

    auth::ScramClientExchange client("pw");
    client.set_nonce_for_testing("abc");
    (void)client.client_first();
    std::string reply = random_message(structured);
    if (i % 4 == 0) reply = "r=abc" + reply;
    if (client.handle_server_first(reply)) CHECK_FALSE(client.verify_server_final(random_message(structured)));
  }
  // Oversized input is refused before any parsing.
  auth::ScramServerExchange server(secret);
  CHECK_FALSE(server.handle_client_first("SCRAM-SHA-256", "n,,n=,r=" + std::string(70000, 'a')));
}
