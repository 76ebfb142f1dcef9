// PostgreSQL's md5 password method: the stored "md5…" secret and the salted challenge response.
#include <openssl/evp.h>

#include "crypto.hpp"

namespace pgweir::auth {

namespace {

constexpr std::string_view k_md5_prefix = "md5";

// hex(md5(data)), or "" if OpenSSL refuses MD5 (e.g. FIPS mode): an empty digest matches no response.
std::string md5_hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &len, EVP_md5(), nullptr) != 1 || len != 16) return {};
  constexpr char k_hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * len);
  for (unsigned int i = 0; i < len; ++i) {
    out += k_hex[digest[i] >> 4];
    out += k_hex[digest[i] & 0xf];
  }
  return out;
}

}  // namespace

namespace detail {

bool is_md5_secret(std::string_view text) {
  if (text.size() != k_md5_prefix.size() + 32 || text.substr(0, k_md5_prefix.size()) != k_md5_prefix) return false;
  for (char c : text.substr(k_md5_prefix.size())) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace detail

std::string md5_secret(std::string_view user, std::string_view password) {
  std::string input(password);
  input += user;
  std::string hex = md5_hex(input);
  if (hex.empty()) return {};
  return std::string(k_md5_prefix) + hex;
}

std::string md5_response(std::string_view md5_secret, const std::array<std::uint8_t, 4>& salt) {
  if (md5_secret.substr(0, k_md5_prefix.size()) == k_md5_prefix) md5_secret.remove_prefix(k_md5_prefix.size());
  std::string input(md5_secret);
  input.append(reinterpret_cast<const char*>(salt.data()), salt.size());
  std::string hex = md5_hex(input);
  if (hex.empty()) return {};
  return std::string(k_md5_prefix) + hex;
}

bool verify_md5_response(std::string_view md5_secret, const std::array<std::uint8_t, 4>& salt,
                         std::string_view response) {
  // A malformed stored secret must not turn into a response anyone can compute (md5 of the salt alone).
  if (!detail::is_md5_secret(md5_secret)) return false;
  std::string expected = md5_response(md5_secret, salt);
  if (expected.empty()) return false;
  return secure_equals(expected, response);
}

}  // namespace pgweir::auth
