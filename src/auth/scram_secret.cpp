// SCRAM verifiers: PostgreSQL's text form, deriving one from a password, and the mock verifier for unknown users.
#include <charconv>

#include "crypto.hpp"
#include "pgweir/core/limits.hpp"
#include "pgweir/core/log.hpp"

namespace pgweir::auth {

namespace {

constexpr std::string_view k_prefix = "SCRAM-SHA-256$";

// Keys derived from a process-lifetime random key: stable per user for the life of the process (a probing client
// sees the same salt twice) yet unguessable, so the salt doesn't reveal that the user is unknown.
const std::string& mock_nonce_key() {
  static const std::string key = [] {
    std::string raw;
    if (!detail::random_bytes(32, raw)) {
      // Mock salts become predictable (unknown users could be told apart), but logins still fail as they must.
      log::error("auth_rng_failed", {{"use", "mock SCRAM salt"}});
    }
    return raw;
  }();
  return key;
}

Error verifier_error(std::size_t& error_offset, std::size_t offset, std::string message) {
  error_offset = offset;
  return make_error("invalid SCRAM verifier: " + std::move(message));
}

}  // namespace

namespace detail {

bool is_mock(const ScramSecret& secret) {
  // All-zero keys: SHA-256 has no known preimage for zero, and we also refuse it outright.
  return secret.stored_key == Key{} && secret.server_key == Key{};
}

Expected<ScramSecret> parse_scram_secret(std::string_view verifier, std::size_t& error_offset) {
  if (verifier.substr(0, k_prefix.size()) != k_prefix) {
    return verifier_error(error_offset, 0, "expected \"SCRAM-SHA-256$\"");
  }
  std::size_t pos = k_prefix.size();
  std::string_view rest = verifier.substr(pos);

  auto colon = rest.find(':');
  if (colon == std::string_view::npos) return verifier_error(error_offset, pos, "expected \"<iterations>:<salt>\"");
  std::string_view iter_text = rest.substr(0, colon);
  ScramSecret secret;
  auto [end, ec] = std::from_chars(iter_text.data(), iter_text.data() + iter_text.size(), secret.iterations);
  if (iter_text.empty() || ec != std::errc{} || end != iter_text.data() + iter_text.size() || secret.iterations < 1) {
    return verifier_error(error_offset, pos, "iteration count must be a positive integer");
  }
  pos += colon + 1;
  rest.remove_prefix(colon + 1);

  auto dollar = rest.find('$');
  if (dollar == std::string_view::npos) return verifier_error(error_offset, pos, "expected \"$\" after the salt");
  auto salt = base64_decode(rest.substr(0, dollar));
  if (!salt || salt->empty()) return verifier_error(error_offset, pos, "salt is not valid base64");
  secret.salt = std::move(*salt);
  pos += dollar + 1;
  rest.remove_prefix(dollar + 1);

  colon = rest.find(':');
  if (colon == std::string_view::npos) return verifier_error(error_offset, pos, "expected \"<StoredKey>:<ServerKey>\"");
  auto stored = base64_decode(rest.substr(0, colon));
  auto stored_key = stored ? key_from_raw(*stored) : std::nullopt;
  if (!stored_key) return verifier_error(error_offset, pos, "StoredKey is not 32 bytes of base64");
  pos += colon + 1;
  auto server = base64_decode(rest.substr(colon + 1));
  auto server_key = server ? key_from_raw(*server) : std::nullopt;
  if (!server_key) return verifier_error(error_offset, pos, "ServerKey is not 32 bytes of base64");

  secret.stored_key = *stored_key;
  secret.server_key = *server_key;
  return secret;
}

}  // namespace detail

Expected<ScramSecret> parse_scram_secret(std::string_view verifier) {
  std::size_t ignored = 0;
  return detail::parse_scram_secret(verifier, ignored);
}

std::string format_scram_secret(const ScramSecret& secret) {
  std::string out(k_prefix);
  out += std::to_string(secret.iterations);
  out += ':';
  out += base64_encode(secret.salt);
  out += '$';
  out += base64_encode(detail::as_view(secret.stored_key));
  out += ':';
  out += base64_encode(detail::as_view(secret.server_key));
  return out;
}

ScramSecret make_scram_secret(std::string_view password, std::string_view salt, int iterations) {
  // PBKDF2 needs at least one round; a caller passing less gets the weakest valid verifier rather than none.
  if (iterations < 1) iterations = 1;
  ScramSecret secret;
  secret.iterations = iterations;
  secret.salt = std::string(salt);
  Key salted = detail::salted_password(password, salt, iterations);
  Key client_key = detail::hmac_sha256(detail::as_view(salted), "Client Key");
  secret.stored_key = detail::sha256(detail::as_view(client_key));
  secret.server_key = detail::hmac_sha256(detail::as_view(salted), "Server Key");
  return secret;
}

ScramSecret make_scram_secret(std::string_view password, int iterations) {
  std::string salt;
  if (!detail::random_bytes(detail::k_default_salt_len, salt)) {
    // Fail closed: a verifier with a predictable salt is not handed out; this one matches no password.
    log::error("auth_rng_failed", {{"use", "SCRAM salt"}});
    ScramSecret unusable = mock_scram_secret("");
    return unusable;
  }
  return make_scram_secret(password, salt, iterations);
}

ScramSecret mock_scram_secret(std::string_view user) {
  std::string input = mock_nonce_key();
  input += user;
  Key digest = detail::sha256(input);
  ScramSecret secret;
  secret.iterations = limits::k_scram_iterations;
  secret.salt = std::string(detail::as_view(digest).substr(0, detail::k_default_salt_len));
  return secret;
}

}  // namespace pgweir::auth
