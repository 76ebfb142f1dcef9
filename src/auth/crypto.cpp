// SCRAM building blocks on top of OpenSSL: HMAC, SHA-256, PBKDF2, randomness, base64, constant-time compare,
// and the attribute syntax both exchanges parse.
#include "crypto.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <climits>

namespace pgweir::auth {

namespace {

const unsigned char* bytes(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// EVP_EncodeBlock takes an int length; encoding in whole 3-byte groups keeps any input in range.
constexpr std::size_t k_base64_chunk = 3 * 16384;

}  // namespace

bool secure_equals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string base64_encode(std::string_view raw) {
  std::string out;
  out.reserve((raw.size() + 2) / 3 * 4);
  std::string block;
  while (!raw.empty()) {
    std::string_view part = raw.substr(0, k_base64_chunk);
    raw.remove_prefix(part.size());
    block.resize((part.size() + 2) / 3 * 4 + 1);
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(block.data()), bytes(part), static_cast<int>(part.size()));
    out.append(block.data(), static_cast<std::size_t>(n));
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  // EVP_DecodeBlock skips whitespace and keeps padding bytes, so the strict checks are ours.
  if (text.size() % 4 != 0 || text.size() > INT_MAX) return std::nullopt;
  std::size_t padding = 0;
  if (!text.empty() && text.back() == '=') ++padding;
  if (text.size() >= 2 && text[text.size() - 2] == '=') ++padding;
  for (std::size_t i = 0; i < text.size() - padding; ++i) {
    if (base64_value(text[i]) < 0) return std::nullopt;
  }
  if (text.empty()) return std::string{};
  std::string out(text.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes(text), static_cast<int>(text.size()));
  if (n < 0 || static_cast<std::size_t>(n) != out.size()) return std::nullopt;
  out.resize(out.size() - padding);
  return out;
}

namespace detail {

namespace {

// OpenSSL 3's one-shot HMAC() and SHA256() look the algorithm up by name on every call (a fetch under a lock,
// parameter parsing, a context allocated and freed): per SCRAM login that was more than the hashing itself.
// Each thread keeps its own contexts, made once with algorithms fetched once, and re-keys or re-initialises them.
struct Hashers {
  EVP_MAC_CTX* hmac = nullptr;  // HMAC with SHA-256 as its digest, re-keyed per use
  EVP_MD_CTX* digest = nullptr;
  EVP_MD* sha256 = nullptr;
  Hashers() {
    if (EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr)) {
      hmac = EVP_MAC_CTX_new(mac);
      EVP_MAC_free(mac);  // the context holds its own reference
      char name[] = "SHA256";
      OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, name, 0), OSSL_PARAM_construct_end()};
      if (hmac && EVP_MAC_CTX_set_params(hmac, params) != 1) {
        EVP_MAC_CTX_free(hmac);
        hmac = nullptr;
      }
    }
    sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    digest = EVP_MD_CTX_new();
  }
  ~Hashers() {
    EVP_MAC_CTX_free(hmac);
    EVP_MD_CTX_free(digest);
    EVP_MD_free(sha256);
  }
  Hashers(const Hashers&) = delete;
  Hashers& operator=(const Hashers&) = delete;
};

Hashers& hashers() {
  thread_local Hashers h;
  return h;
}

}  // namespace

Key hmac_sha256(std::string_view key, std::string_view data) {
  Key out{};
  auto& h = hashers();
  std::size_t len = 0;
  // A zero-length key is a valid HMAC key, but EVP_MAC_init takes a null key as "keep the previous one".
  static const unsigned char k_empty = 0;
  const unsigned char* k = key.empty() ? &k_empty : bytes(key);
  if (!h.hmac || EVP_MAC_init(h.hmac, k, key.size(), nullptr) != 1 ||
      EVP_MAC_update(h.hmac, bytes(data), data.size()) != 1 ||
      EVP_MAC_final(h.hmac, out.data(), &len, out.size()) != 1 || len != out.size()) {
    return Key{};
  }
  return out;
}

Key sha256(std::string_view data) {
  Key out{};
  auto& h = hashers();
  unsigned int len = 0;
  if (!h.sha256 || !h.digest || EVP_DigestInit_ex2(h.digest, h.sha256, nullptr) != 1 ||
      EVP_DigestUpdate(h.digest, data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(h.digest, out.data(), &len) != 1 || len != out.size()) {
    return Key{};
  }
  return out;
}

Key salted_password(std::string_view password, std::string_view salt, int iterations) {
  // PBKDF2 with a 32-byte output is exactly one block, i.e. RFC 5802's Hi().
  Key out{};
  if (password.size() > INT_MAX || salt.size() > INT_MAX || iterations < 1) return Key{};
  if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()), bytes(salt), static_cast<int>(salt.size()),
                        iterations, EVP_sha256(), static_cast<int>(out.size()), out.data()) != 1) {
    return Key{};
  }
  return out;
}

Key xor_keys(const Key& a, const Key& b) {
  Key out{};
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<std::uint8_t>(a[i] ^ b[i]);
  return out;
}

std::optional<Key> key_from_raw(std::string_view raw) {
  Key key{};
  if (raw.size() != key.size()) return std::nullopt;
  for (std::size_t i = 0; i < key.size(); ++i) key[i] = static_cast<std::uint8_t>(raw[i]);
  return key;
}

bool random_bytes(std::size_t n, std::string& out) {
  out.assign(n, '\0');
  if (n > INT_MAX) return false;
  return RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) == 1;
}

std::optional<std::string> random_nonce() {
  std::string raw;
  if (!random_bytes(k_raw_nonce_len, raw)) return std::nullopt;
  return base64_encode(raw);
}

bool is_printable(std::string_view value) {
  for (char c : value) {
    if (c < 0x21 || c > 0x7e || c == ',') return false;
  }
  return true;
}

std::vector<std::string_view> split_fields(std::string_view message) {
  std::vector<std::string_view> fields;
  while (true) {
    auto comma = message.find(',');
    fields.push_back(message.substr(0, comma));
    if (comma == std::string_view::npos) break;
    message.remove_prefix(comma + 1);
  }
  return fields;
}

bool is_attribute(std::string_view field) {
  if (field.size() < 2 || field[1] != '=') return false;
  char c = field[0];
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

std::optional<std::string_view> attribute_value(std::string_view field, char name) {
  if (field.size() < 2 || field[0] != name || field[1] != '=') return std::nullopt;
  return field.substr(2);
}

}  // namespace detail
}  // namespace pgweir::auth
