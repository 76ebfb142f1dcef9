// The client side of SCRAM-SHA-256: how pgweir logs in to PostgreSQL, with a password or with keys recovered from
// the client's own exchange. Mirrors libpq's checks (fe-auth-scram.c).
#include <charconv>
#include <climits>
#include <utility>

#include "crypto.hpp"
#include "pgweir/core/limits.hpp"

namespace pgweir::auth {

namespace {

constexpr int k_state_initial = 0;
constexpr int k_state_first_sent = 1;
constexpr int k_state_final_sent = 2;
constexpr int k_state_finished = 3;

// The gs2 header "n,," in base64: pgweir never binds on its own server connections.
constexpr std::string_view k_no_binding_b64 = "biws";

Error malformed(std::string_view what) { return make_error("malformed SCRAM message: " + std::string(what)); }

// saslname (RFC 5802): ',' and '=' are escaped.
std::string escape_user_name(std::string_view name) {
  std::string out;
  for (char c : name) {
    if (c == ',') {
      out += "=2C";
    } else if (c == '=') {
      out += "=3D";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

ScramClientExchange::ScramClientExchange(std::string password) : password_(std::move(password)) {}

ScramClientExchange::ScramClientExchange(const Key& client_key, const Key& server_key)
    : client_key_(client_key), server_key_(server_key) {}

std::string ScramClientExchange::client_first() {
  if (state_ != k_state_initial) {
    state_ = k_state_finished;
    return {};
  }
  if (client_nonce_.empty()) {
    auto nonce = detail::random_nonce();
    if (!nonce) {
      state_ = k_state_finished;
      return {};
    }
    client_nonce_ = std::move(*nonce);
  }
  client_first_bare_ = "n=" + escape_user_name(test_user_name_) + ",r=" + client_nonce_;
  state_ = k_state_first_sent;
  return "n,," + client_first_bare_;
}

Expected<std::string> ScramClientExchange::handle_server_first(std::string_view server_first_message) {
  bool in_order = state_ == k_state_first_sent;
  state_ = k_state_finished;  // spent by any failure, including a call out of order
  if (!in_order) return make_error("unexpected SCRAM server-first-message");
  if (server_first_message.size() > limits::k_max_server_login_message) {
    return malformed("server-first-message too long");
  }

  auto fields = detail::split_fields(server_first_message);
  if (fields.size() != 3) return malformed("server-first-message must be r=…,s=…,i=…");
  auto nonce = detail::attribute_value(fields[0], 'r');
  if (!nonce) return malformed("expected nonce attribute \"r\"");
  if (nonce->substr(0, client_nonce_.size()) != client_nonce_ || !detail::is_printable(*nonce)) {
    return make_error("invalid SCRAM response (nonce mismatch)");
  }
  auto salt_b64 = detail::attribute_value(fields[1], 's');
  if (!salt_b64) return malformed("expected salt attribute \"s\"");
  auto salt = base64_decode(*salt_b64);
  if (!salt || salt->empty()) return malformed("salt is not valid base64");
  auto iter_text = detail::attribute_value(fields[2], 'i');
  if (!iter_text) return malformed("expected iteration count attribute \"i\"");
  int iterations = 0;
  auto [end, ec] = std::from_chars(iter_text->data(), iter_text->data() + iter_text->size(), iterations);
  if (iter_text->empty() || ec != std::errc{} || end != iter_text->data() + iter_text->size() || iterations < 1 ||
      iterations > limits::k_max_server_scram_iterations) {
    return malformed("invalid SCRAM iteration count");
  }

  Key client_key{};
  if (client_key_) {
    client_key = *client_key_;
  } else {
    Key salted = detail::salted_password(password_, *salt, iterations);
    client_key = detail::hmac_sha256(detail::as_view(salted), "Client Key");
    server_key_ = detail::hmac_sha256(detail::as_view(salted), "Server Key");
  }
  Key stored_key = detail::sha256(detail::as_view(client_key));

  std::string without_proof = "c=" + std::string(k_no_binding_b64) + ",r=" + std::string(*nonce);
  auth_message_ = client_first_bare_ + "," + std::string(server_first_message) + "," + without_proof;
  Key client_signature = detail::hmac_sha256(detail::as_view(stored_key), auth_message_);
  Key proof = detail::xor_keys(client_key, client_signature);
  state_ = k_state_final_sent;
  return without_proof + ",p=" + base64_encode(detail::as_view(proof));
}

Expected<void> ScramClientExchange::verify_server_final(std::string_view server_final_message) {
  bool in_order = state_ == k_state_final_sent;
  state_ = k_state_finished;  // spent by any failure, including a call out of order
  if (!in_order) return make_error("unexpected SCRAM server-final-message");
  if (server_final_message.size() > limits::k_max_server_login_message) {
    return malformed("server-final-message too long");
  }
  if (auto server_error = detail::attribute_value(server_final_message, 'e')) {
    return make_error("server rejected SCRAM authentication: " + std::string(*server_error));
  }
  auto fields = detail::split_fields(server_final_message);
  if (fields.size() != 1) return malformed("garbage at the end of server-final-message");
  auto signature_b64 = detail::attribute_value(fields[0], 'v');
  if (!signature_b64) return malformed("expected verifier attribute \"v\"");
  auto signature = base64_decode(*signature_b64);
  if (!signature) return malformed("server signature is not valid base64");
  Key expected = detail::hmac_sha256(detail::as_view(server_key_), auth_message_);
  if (!secure_equals(*signature, detail::as_view(expected))) return make_error("incorrect server signature");
  return {};
}

}  // namespace pgweir::auth
