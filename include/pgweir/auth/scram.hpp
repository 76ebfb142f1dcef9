// SCRAM-SHA-256 (RFC 5802/7677) as PostgreSQL speaks it: verifiers, the server side of an exchange
// (authenticating clients) and the client side (pgweir logging in to PostgreSQL). Pure: OpenSSL crypto only.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "pgweir/core/result.hpp"

namespace pgweir::auth {

using Key = std::array<std::uint8_t, 32>;

// A SCRAM verifier as PostgreSQL stores it: "SCRAM-SHA-256$<iterations>:<salt b64>$<StoredKey b64>:<ServerKey b64>".
struct ScramSecret {
  int iterations = 0;
  std::string salt;  // raw bytes
  Key stored_key{};
  Key server_key{};
};

Expected<ScramSecret> parse_scram_secret(std::string_view verifier);
std::string format_scram_secret(const ScramSecret& secret);
// SaltedPassword = Hi(SASLprep(password), salt, iterations). Non-ASCII passwords that SASLprep would change are
// used as-is (as PostgreSQL does when SASLprep fails).
ScramSecret make_scram_secret(std::string_view password, std::string_view salt, int iterations);
// A fresh random 16-byte salt.
ScramSecret make_scram_secret(std::string_view password, int iterations);
// A verifier that no password matches, stable per user name for the process lifetime: lets an unknown user's
// exchange run to the end and fail exactly like a wrong password.
ScramSecret mock_scram_secret(std::string_view user);

// Channel binding offered to a client on a TLS connection: the tls-server-end-point hash of pgweir's certificate.
struct ChannelBinding {
  std::string type = "tls-server-end-point";
  std::string data;  // raw hash bytes of the server certificate
};

// Server side. handle_client_first, then handle_client_final; each at most once.
class ScramServerExchange {
 public:
  // `binding` set: the connection is TLS and SCRAM-SHA-256-PLUS was offered.
  explicit ScramServerExchange(ScramSecret secret, std::optional<ChannelBinding> binding = std::nullopt);

  // `mechanism` as the client chose it ("SCRAM-SHA-256" or "SCRAM-SHA-256-PLUS").
  // Returns server-first-message. Rejects: unknown mechanism, a gs2 header that doesn't fit the mechanism
  // ("p=" without PLUS, "y" while PLUS was offered = downgrade, "n" with PLUS), authzid, bad syntax.
  Expected<std::string> handle_client_first(std::string_view mechanism, std::string_view client_first_message);

  // Checks channel binding ("c=" must be base64(gs2 header + binding data)), the nonce and the proof.
  // Returns server-final-message ("v=…"). Any failure is an error (the caller reports 28P01).
  Expected<std::string> handle_client_final(std::string_view client_final_message);

  // After a successful exchange: ClientKey recovered from the proof (lets pgweir log in to a server that has the
  // same verifier).
  const std::optional<Key>& client_key() const { return client_key_; }

  // For tests only: use this server nonce instead of a random one. Call before handle_client_first.
  void set_nonce_for_testing(std::string server_nonce) { test_server_nonce_ = std::move(server_nonce); }

 private:
  ScramSecret secret_;
  std::optional<ChannelBinding> binding_;
  std::string gs2_header_;
  std::string client_first_bare_;
  std::string server_first_;
  std::string nonce_;  // client nonce + server nonce
  std::optional<Key> client_key_;
  std::string test_server_nonce_;
  int state_ = 0;
};

// Client side, for logging in to PostgreSQL with a password (plain) or with a known ClientKey + ServerKey.
class ScramClientExchange {
 public:
  explicit ScramClientExchange(std::string password);
  // Logs in with keys recovered from a client's own SCRAM exchange (ScramServerExchange::client_key() and the
  // verifier's server_key), so pgweir never needs the plain password. The server must hold the same verifier.
  ScramClientExchange(const Key& client_key, const Key& server_key);
  // client-first-message: "n,,n=,r=<nonce>" (PostgreSQL ignores the user name in SCRAM). Empty if no random
  // nonce could be drawn; handle_server_first then fails.
  std::string client_first();
  // Returns client-final-message. Rejects: nonce that doesn't start with ours, iterations < 1, bad syntax.
  Expected<std::string> handle_server_first(std::string_view server_first_message);
  // Verifies the server signature ("v=…"); "e=…" is an error carrying the server's text.
  Expected<void> verify_server_final(std::string_view server_final_message);

  // For tests only (e.g. RFC 7677's vector): use this client nonce and user name (sent escaped as "n=").
  // Call before client_first.
  void set_nonce_for_testing(std::string client_nonce, std::string user_name = {}) {
    client_nonce_ = std::move(client_nonce);
    test_user_name_ = std::move(user_name);
  }

 private:
  std::string password_;
  std::optional<Key> client_key_;  // set when logging in with keys instead of a password
  std::string test_user_name_;
  std::string client_nonce_;
  std::string client_first_bare_;
  Key server_key_{};
  std::string auth_message_;
  int state_ = 0;
};

// ---------------------------------------------------------------------------------------------
// md5 (PostgreSQL's "md5" method)

// "md5" + hex(md5(password + user))
std::string md5_secret(std::string_view user, std::string_view password);
// What a client sends for a stored md5 secret and a salt: "md5" + hex(md5(hex part of secret + salt))
std::string md5_response(std::string_view md5_secret, const std::array<std::uint8_t, 4>& salt);
// Constant-time check of a client's md5 response.
bool verify_md5_response(std::string_view md5_secret, const std::array<std::uint8_t, 4>& salt,
                         std::string_view response);

// Constant-time string comparison (CRYPTO_memcmp); false when lengths differ.
bool secure_equals(std::string_view a, std::string_view b);

// Base64 (standard alphabet, padded), via OpenSSL.
std::string base64_encode(std::string_view raw);
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace pgweir::auth
