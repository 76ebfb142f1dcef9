// Internal to the auth module: the SCRAM primitives (RFC 5802 section 3) and the attribute syntax shared by
// the server and client exchanges.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pgweir/auth/scram.hpp"

namespace pgweir::auth::detail {

// Raw nonce bytes before base64, as PostgreSQL and libpq use (SCRAM_RAW_NONCE_LEN).
inline constexpr std::size_t k_raw_nonce_len = 18;
inline constexpr std::size_t k_default_salt_len = 16;

// Each returns an all-zero key if OpenSSL fails, which no proof can match: failures fail closed.
Key hmac_sha256(std::string_view key, std::string_view data);
Key sha256(std::string_view data);
Key salted_password(std::string_view password, std::string_view salt, int iterations);
Key xor_keys(const Key& a, const Key& b);

inline std::string_view as_view(const Key& key) {
  return {reinterpret_cast<const char*>(key.data()), key.size()};
}
std::optional<Key> key_from_raw(std::string_view raw);

bool random_bytes(std::size_t n, std::string& out);
// A printable SCRAM nonce (base64 of k_raw_nonce_len random bytes), or nullopt if the RNG failed.
std::optional<std::string> random_nonce();

// printable = %x21-2B / %x2D-7E (RFC 5802): visible ASCII except ','.
bool is_printable(std::string_view value);

// The comma-separated fields of a SCRAM message. Values never contain ',' (saslname escapes it as "=2C").
std::vector<std::string_view> split_fields(std::string_view message);
// "x=value" with x a letter: the value, or nullopt when the field is not attribute `name`.
std::optional<std::string_view> attribute_value(std::string_view field, char name);
bool is_attribute(std::string_view field);

// parse_scram_secret that also says where in `verifier` the problem is (0-based), for users file columns.
Expected<ScramSecret> parse_scram_secret(std::string_view verifier, std::size_t& error_offset);

// "md5" followed by 32 lowercase hex digits, as PostgreSQL recognises a stored md5 secret.
bool is_md5_secret(std::string_view text);

// A secret from mock_scram_secret: its exchange runs to the end and always fails.
bool is_mock(const ScramSecret& secret);

}  // namespace pgweir::auth::detail
