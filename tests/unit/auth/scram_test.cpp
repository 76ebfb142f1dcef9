// SCRAM verifiers: PostgreSQL's text form, derivation from a password, the mock secret, and base64.
#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "pgweir/auth/scram.hpp"
#include "pgweir/core/limits.hpp"

namespace auth = pgweir::auth;

namespace {

// RFC 5802's formulas computed here step by step, independently of the module's helpers.
auth::ScramSecret reference_secret(const std::string& password, const std::string& salt, int iterations) {
  unsigned char u[32];
  unsigned char salted[32] = {};
  unsigned int len = 0;
  std::string first = salt + std::string("\0\0\0\1", 4);  // INT(1)
  HMAC(EVP_sha256(), password.data(), static_cast<int>(password.size()),
       reinterpret_cast<const unsigned char*>(first.data()), first.size(), u, &len);
  for (int i = 0; i < 32; ++i) salted[i] = u[i];
  for (int round = 1; round < iterations; ++round) {
    HMAC(EVP_sha256(), password.data(), static_cast<int>(password.size()), u, 32, u, &len);
    for (int i = 0; i < 32; ++i) salted[i] ^= u[i];
  }
  unsigned char client_key[32];
  auth::ScramSecret s;
  s.iterations = iterations;
  s.salt = salt;
  HMAC(EVP_sha256(), salted, 32, reinterpret_cast<const unsigned char*>("Client Key"), 10, client_key, &len);
  SHA256(client_key, 32, s.stored_key.data());
  HMAC(EVP_sha256(), salted, 32, reinterpret_cast<const unsigned char*>("Server Key"), 10, s.server_key.data(), &len);
  return s;
}

}  // namespace

TEST_CASE("base64 round trip and strict decoding") {
  for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) {
    auto decoded = auth::base64_decode(auth::base64_encode(s));
    REQUIRE(decoded);
    CHECK(*decoded == s);
  }
  CHECK(auth::base64_encode("foobar") == "Zm9vYmFy");
  CHECK(auth::base64_encode("fo") == "Zm8=");
  CHECK(*auth::base64_decode("Zm8=") == "fo");
  CHECK(*auth::base64_decode("Zg==") == "f");
  std::string big(100000, '\xab');
  CHECK(*auth::base64_decode(auth::base64_encode(big)) == big);

  CHECK_FALSE(auth::base64_decode("Zm8"));       // not a multiple of 4
  CHECK_FALSE(auth::base64_decode("Zm 8"));      // whitespace OpenSSL would skip
  CHECK_FALSE(auth::base64_decode(" Zm8="));
  CHECK_FALSE(auth::base64_decode("Z=m8"));      // padding in the middle
  CHECK_FALSE(auth::base64_decode("===="));
  CHECK_FALSE(auth::base64_decode("Zm8*"));
  CHECK_FALSE(auth::base64_decode("Zm9v\nYmFy"));
}

TEST_CASE("secure_equals") {
  CHECK(auth::secure_equals("", ""));
  CHECK(auth::secure_equals("abc", "abc"));
  CHECK_FALSE(auth::secure_equals("abc", "abd"));
  CHECK_FALSE(auth::secure_equals("abc", "abcd"));
  CHECK_FALSE(auth::secure_equals("", "a"));
}

TEST_CASE("make_scram_secret matches verifiers produced by PostgreSQL 15") {
  struct Case {
    const char* password;
    const char* verifier;
  };
  // Made with `CREATE ROLE … PASSWORD '…'` under password_encryption = 'scram-sha-256', read from pg_authid.
  const Case cases[] = {
      {"correct horse battery staple",
       "SCRAM-SHA-256$4096:8TOcRsMZe6EXbfuJFBLhHw==$uLKhxjdtPHm8zq/AuHgaMYH5k+LGCjH6PU54EfNB8xI=:"
       "El8F590elHqDfKkjYcDma9e71ND/QYwsM09CjY2pkrs="},
      // Already NFKC-normalised, so SASLprep leaves it alone.
      {"p\xc3\xa4ssw\xc3\xb6rd",
       "SCRAM-SHA-256$4096:aQEKqxGbCxEuy5hZRBo3EA==$yYUUcM/6MWovi7cr6FvSSzLHqpDDhkbquBuXki/OSN8=:"
       "s+0uz8lje/8BkzuUsazDfqwzVwurPJH/SqC5zqM+8Wc="},
  };
  for (const auto& c : cases) {
    auto parsed = auth::parse_scram_secret(c.verifier);
    REQUIRE(parsed);
    CHECK(parsed->iterations == 4096);
    CHECK(parsed->salt.size() == 16);
    auto made = auth::make_scram_secret(c.password, parsed->salt, parsed->iterations);
    CHECK(made.stored_key == parsed->stored_key);
    CHECK(made.server_key == parsed->server_key);
    CHECK(auth::format_scram_secret(made) == c.verifier);

    auto wrong = auth::make_scram_secret("not the password", parsed->salt, parsed->iterations);
    CHECK(wrong.stored_key != parsed->stored_key);
  }
}

TEST_CASE("make_scram_secret matches RFC 5802 computed independently") {
  for (int iterations : {1, 2, 4096}) {
    for (std::string password : {"pencil", "", "a much longer password than one HMAC block would hold, 64+ bytes!!"}) {
      std::string salt = "\x01\x02\x03saltsalt\x00\xff";
      auto expected = reference_secret(password, salt, iterations);
      auto made = auth::make_scram_secret(password, salt, iterations);
      CHECK(made.iterations == iterations);
      CHECK(made.salt == salt);
      CHECK(made.stored_key == expected.stored_key);
      CHECK(made.server_key == expected.server_key);
    }
  }
}

TEST_CASE("make_scram_secret with a random salt") {
  auto a = auth::make_scram_secret("pw", pgweir::limits::k_scram_iterations);
  auto b = auth::make_scram_secret("pw", pgweir::limits::k_scram_iterations);
  CHECK(a.salt.size() == 16);
  CHECK(a.salt != b.salt);
  CHECK(a.stored_key != b.stored_key);
  auto again = auth::make_scram_secret("pw", a.salt, a.iterations);
  CHECK(again.stored_key == a.stored_key);
}

TEST_CASE("verifier parse/format round trip") {
  auto secret = auth::make_scram_secret("secret", "0123456789abcdef", 10000);
  std::string text = auth::format_scram_secret(secret);
  CHECK(text.starts_with("SCRAM-SHA-256$10000:MDEyMzQ1Njc4OWFiY2RlZg==$"));
  auto parsed = auth::parse_scram_secret(text);
  REQUIRE(parsed);
  CHECK(parsed->iterations == 10000);
  CHECK(parsed->salt == secret.salt);
  CHECK(parsed->stored_key == secret.stored_key);
  CHECK(parsed->server_key == secret.server_key);
  CHECK(auth::format_scram_secret(*parsed) == text);
}

TEST_CASE("malformed verifiers are rejected") {
  const std::string good_key = auth::base64_encode(std::string(32, 'k'));
  const std::string short_key = auth::base64_encode(std::string(31, 'k'));
  const std::string salt = "c2FsdA==";
  // The well-formed baseline, so each case below fails for its one defect.
  REQUIRE(auth::parse_scram_secret("SCRAM-SHA-256$4096:" + salt + "$" + good_key + ":" + good_key));
  const std::string bad[] = {
      "",
      "SCRAM-SHA-256",
      "SCRAM-SHA-1$4096:" + salt + "$" + good_key + ":" + good_key,
      "scram-sha-256$4096:" + salt + "$" + good_key + ":" + good_key,
      "SCRAM-SHA-256$:" + salt + "$" + good_key + ":" + good_key,
      "SCRAM-SHA-256$0:" + salt + "$" + good_key + ":" + good_key,
      "SCRAM-SHA-256$-1:" + salt + "$" + good_key + ":" + good_key,
      "SCRAM-SHA-256$4096x:" + salt + "$" + good_key + ":" + good_key,
      "SCRAM-SHA-256$99999999999:" + salt + "$" + good_key + ":" + good_key,
      "SCRAM-SHA-256$4096$" + salt + "$" + good_key + ":" + good_key,
      "SCRAM-SHA-256$4096:$" + good_key + ":" + good_key,
      "SCRAM-SHA-256$4096:c2Fsd!==$" + good_key + ":" + good_key,
      "SCRAM-SHA-256$4096:" + salt + ":" + good_key + ":" + good_key,
      "SCRAM-SHA-256$4096:" + salt + "$" + good_key,
      "SCRAM-SHA-256$4096:" + salt + "$" + short_key + ":" + good_key,
      "SCRAM-SHA-256$4096:" + salt + "$" + good_key + ":" + short_key,
      "SCRAM-SHA-256$4096:" + salt + "$" + good_key + ":" + good_key + ":",
      "SCRAM-SHA-256$4096:" + salt + "$" + good_key + ":" + good_key + "$extra",
      "SCRAM-SHA-256$4096:" + salt + "$" + good_key + ":",
  };
  for (const auto& text : bad) {
    CAPTURE(text);
    auto parsed = auth::parse_scram_secret(text);
    CHECK_FALSE(parsed);
    if (!parsed) CHECK(!parsed.error().message.empty());
  }
}

TEST_CASE("mock secret: stable per user, differs between users, unguessable salt") {
  auto a1 = auth::mock_scram_secret("alice");
  auto a2 = auth::mock_scram_secret("alice");
  auto b = auth::mock_scram_secret("bob");
  CHECK(a1.salt == a2.salt);
  CHECK(a1.salt != b.salt);
  CHECK(a1.salt.size() == 16);
  CHECK(a1.iterations == pgweir::limits::k_scram_iterations);
  // Not derivable from the user name alone.
  unsigned char digest[32];
  SHA256(reinterpret_cast<const unsigned char*>("alice"), 5, digest);
  CHECK(a1.salt != std::string(reinterpret_cast<const char*>(digest), 16));
}
