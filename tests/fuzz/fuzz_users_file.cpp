// fuzz_users_file: parse_users_file (PgBouncer's userlist.txt format): every line is a user, an ignored line or one
// reported error, and each user's secret is classified consistently.
#include <dlfcn.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_support.hpp"
#include "pgweir/auth/users_file.hpp"

namespace {

using namespace pgweir;
using namespace pgweir::auth;

// run.sh passes a smaller -max_len; this only bounds inputs given by hand.
constexpr std::size_t k_max_input = 4096;

}  // namespace

// Each plain password costs a 4096-round PBKDF2, which held this target to ~35 inputs a second. This definition
// interposes OpenSSL's (the executable's own symbol wins over libcrypto.so's) and runs a single round: what is fuzzed
// here is the file parser, not OpenSSL. Fuzz builds only; the derived verifiers are not checked against real ones.
extern "C" int PKCS5_PBKDF2_HMAC(const char* pass, int passlen, const unsigned char* salt, int saltlen, int,
                                 const EVP_MD* digest, int keylen, unsigned char* out) {
  using Pbkdf2 = int (*)(const char*, int, const unsigned char*, int, int, const EVP_MD*, int, unsigned char*);
  static const auto real = reinterpret_cast<Pbkdf2>(dlsym(RTLD_NEXT, "PKCS5_PBKDF2_HMAC"));
  FUZZ_CHECK(real != nullptr);
  return real(pass, passlen, salt, saltlen, 1, digest, keylen, out);
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = fuzz::as_view(data, std::min(size, k_max_input));
  const UsersFile file = parse_users_file(text);

  std::size_t lines = 0;
  for (std::size_t start = 0; start < text.size(); ++lines) {
    const auto end = text.find('\n', start);
    start = end == std::string_view::npos ? text.size() : end + 1;
  }
  FUZZ_CHECK(file.users.size() + file.errors.size() <= lines);

  int previous_line = 0;
  for (const UsersFileError& e : file.errors) {
    FUZZ_CHECK(e.line >= 1 && static_cast<std::size_t>(e.line) <= lines);
    FUZZ_CHECK(e.line > previous_line);  // at most one error per line, in file order
    FUZZ_CHECK(e.column >= 1 && static_cast<std::size_t>(e.column) <= text.size() + 1);
    FUZZ_CHECK(!e.message.empty());
    previous_line = e.line;
  }

  for (const auto& [name, secret] : file.users) {
    FUZZ_CHECK(!name.empty() && !secret.text.empty());
    FUZZ_CHECK(file.find(name) == &secret);
    switch (secret.kind) {
      case SecretKind::md5:
        FUZZ_CHECK(secret.md5 && *secret.md5 == secret.text && !secret.scram);
        break;
      case SecretKind::scram: {
        FUZZ_CHECK(secret.scram && !secret.md5);
        auto again = parse_scram_secret(secret.text);
        FUZZ_CHECK(again && again->stored_key == secret.scram->stored_key);
        break;
      }
      case SecretKind::plain:
        FUZZ_CHECK(secret.is_plain() && secret.scram && secret.md5);
        FUZZ_CHECK(*secret.md5 == md5_secret(name, secret.text));
        break;
    }
  }
  return 0;
}
