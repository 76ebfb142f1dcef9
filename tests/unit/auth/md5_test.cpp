// PostgreSQL's md5 method: stored secret, challenge response, verification.
#include <doctest/doctest.h>

#include "pgweir/auth/scram.hpp"

namespace auth = pgweir::auth;

TEST_CASE("md5 secret: known vectors") {
  CHECK(auth::md5_secret("postgres", "postgres") == "md53175bce1d3201d16594cebf9d7eb3f9d");
  // From PostgreSQL 15: CREATE ROLE bob PASSWORD 'hunter2' with password_encryption = 'md5'.
  CHECK(auth::md5_secret("bob", "hunter2") == "md5a2cc14bcc08bcb211f578153967abd6d");
  // The user name is the salt: same password, different users, different secrets.
  CHECK(auth::md5_secret("alice", "postgres") != auth::md5_secret("postgres", "postgres"));
}

TEST_CASE("md5 response: known vector") {
  // md5(hex(md5("postgrespostgres")) + salt), computed independently with:
  //   printf '3175bce1d3201d16594cebf9d7eb3f9d\x01\x02\x03\x04' | md5sum
  const std::array<std::uint8_t, 4> salt{1, 2, 3, 4};
  auto response = auth::md5_response("md53175bce1d3201d16594cebf9d7eb3f9d", salt);
  CHECK(response == "md568be9ed08db75f318087ab337aaea044");
}

TEST_CASE("md5 verification") {
  const std::string secret = auth::md5_secret("postgres", "postgres");
  const std::array<std::uint8_t, 4> salt{0xde, 0xad, 0xbe, 0xef};
  const std::array<std::uint8_t, 4> other_salt{0xde, 0xad, 0xbe, 0xee};
  std::string response = auth::md5_response(secret, salt);
  CHECK(response.size() == 35);
  CHECK(auth::verify_md5_response(secret, salt, response));
  CHECK_FALSE(auth::verify_md5_response(secret, other_salt, response));  // replayed under another salt
  CHECK_FALSE(auth::verify_md5_response(secret, salt, auth::md5_response(auth::md5_secret("postgres", "x"), salt)));
  CHECK_FALSE(auth::verify_md5_response(secret, salt, response.substr(0, 34)));
  CHECK_FALSE(auth::verify_md5_response(secret, salt, ""));
  CHECK_FALSE(auth::verify_md5_response(secret, salt, secret));  // the stored secret itself is no response
  // A malformed stored secret verifies nothing, not even the response computed from it.
  CHECK_FALSE(auth::verify_md5_response("", salt, auth::md5_response("", salt)));
  CHECK_FALSE(auth::verify_md5_response("md5XYZ", salt, auth::md5_response("md5XYZ", salt)));
}
