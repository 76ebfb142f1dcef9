// The server side of a SCRAM-SHA-256(-PLUS) exchange: how pgweir authenticates a client. Follows PostgreSQL's
// checks (auth-scram.c), including its channel-binding downgrade rules, so clients see the same behaviour.
#include <utility>

#include "crypto.hpp"
#include "pgweir/core/limits.hpp"

namespace pgweir::auth {

namespace {

constexpr int k_state_initial = 0;
constexpr int k_state_first_done = 1;
constexpr int k_state_finished = 2;  // succeeded or failed: an exchange is never resumed

constexpr std::string_view k_mechanism = "SCRAM-SHA-256";
constexpr std::string_view k_mechanism_plus = "SCRAM-SHA-256-PLUS";

Error malformed(std::string_view what) { return make_error("malformed SCRAM message: " + std::string(what)); }

}  // namespace

ScramServerExchange::ScramServerExchange(ScramSecret secret, std::optional<ChannelBinding> binding)
    : secret_(std::move(secret)), binding_(std::move(binding)) {}

Expected<std::string> ScramServerExchange::handle_client_first(std::string_view mechanism,
                                                               std::string_view client_first_message) {
  // Any call out of order spends the exchange, like any other failure.
  bool in_order = state_ == k_state_initial;
  state_ = k_state_finished;
  if (!in_order) return make_error("unexpected SCRAM client-first-message");

  bool plus = false;
  if (mechanism == k_mechanism_plus) {
    if (!binding_) return make_error("client selected SCRAM-SHA-256-PLUS, but channel binding is not available");
    plus = true;
  } else if (mechanism != k_mechanism) {
    return make_error("client selected an unsupported SASL mechanism");
  }
  if (client_first_message.size() > limits::k_max_auth_message) return malformed("client-first-message too long");

  auto fields = detail::split_fields(client_first_message);
  // gs2-header (2 fields), then n=, r= and any extensions.
  if (fields.size() < 4) return malformed("client-first-message is incomplete");

  std::string_view cbind = fields[0];
  if (cbind == "n" || cbind == "y") {
    if (plus) {
      return make_error("client selected SCRAM-SHA-256-PLUS, but the SCRAM message has no channel binding data");
    }
    // "y": the client could bind but believes we can't. We offered PLUS, so someone stripped it: a downgrade.
    if (cbind == "y" && binding_) return make_error("SCRAM channel binding negotiation error (possible downgrade)");
  } else if (auto type = detail::attribute_value(cbind, 'p')) {
    if (!plus) {
      return make_error("client selected SCRAM-SHA-256 without channel binding, but sent binding data");
    }
    if (*type != binding_->type) return make_error("unsupported SCRAM channel-binding type");
  } else {
    return malformed("unexpected channel-binding flag");
  }

  if (!fields[1].empty()) {
    if (fields[1].front() == 'a') return make_error("client uses an authorization identity, which is not supported");
    return malformed("unexpected attribute in gs2 header");
  }

  if (!fields[2].empty() && fields[2].front() == 'm') {
    return make_error("client requires an unsupported SCRAM extension");
  }
  // The user name is ignored, as in PostgreSQL: the StartupMessage's user is the one authenticated.
  if (!detail::attribute_value(fields[2], 'n')) return malformed("expected user name attribute \"n\"");
  auto client_nonce = detail::attribute_value(fields[3], 'r');
  if (!client_nonce) return malformed("expected nonce attribute \"r\"");
  if (client_nonce->empty() || !detail::is_printable(*client_nonce)) {
    return malformed("non-printable characters in SCRAM nonce");
  }
  for (std::size_t i = 4; i < fields.size(); ++i) {
    if (!detail::is_attribute(fields[i])) return malformed("invalid extension in client-first-message");
  }

  std::string server_nonce;
  if (!test_server_nonce_.empty()) {
    server_nonce = test_server_nonce_;
  } else {
    auto fresh = detail::random_nonce();
    if (!fresh) return make_error("could not generate a random SCRAM nonce");
    server_nonce = std::move(*fresh);
  }

  std::size_t header_len = fields[0].size() + fields[1].size() + 2;
  gs2_header_ = std::string(client_first_message.substr(0, header_len));
  client_first_bare_ = std::string(client_first_message.substr(header_len));
  nonce_ = std::string(*client_nonce) + server_nonce;
  server_first_ = "r=" + nonce_ + ",s=" + base64_encode(secret_.salt) + ",i=" + std::to_string(secret_.iterations);
  state_ = k_state_first_done;
  return server_first_;
}

Expected<std::string> ScramServerExchange::handle_client_final(std::string_view client_final_message) {
  // Any call out of order spends the exchange, like any other failure.
  bool in_order = state_ == k_state_first_done;
  state_ = k_state_finished;
  if (!in_order) return make_error("unexpected SCRAM client-final-message");
  if (client_final_message.size() > limits::k_max_auth_message) return malformed("client-final-message too long");

  auto fields = detail::split_fields(client_final_message);
  // c=, r=, any extensions, and p= last.
  if (fields.size() < 3) return malformed("client-final-message is incomplete");

  auto cbind_input = detail::attribute_value(fields[0], 'c');
  if (!cbind_input) return malformed("expected channel-binding attribute \"c\"");
  std::string expected_cbind = gs2_header_;
  if (gs2_header_.front() == 'p') expected_cbind += binding_->data;
  if (!secure_equals(*cbind_input, base64_encode(expected_cbind))) {
    return make_error(gs2_header_.front() == 'p' ? "SCRAM channel binding check failed"
                                                 : "unexpected SCRAM channel-binding attribute");
  }

  auto nonce = detail::attribute_value(fields[1], 'r');
  if (!nonce) return malformed("expected nonce attribute \"r\"");
  if (!secure_equals(*nonce, nonce_)) return make_error("SCRAM nonce does not match");

  for (std::size_t i = 2; i + 1 < fields.size(); ++i) {
    if (!detail::is_attribute(fields[i]) || fields[i].front() == 'p') {
      return malformed("invalid attribute in client-final-message");
    }
  }
  auto proof_b64 = detail::attribute_value(fields.back(), 'p');
  if (!proof_b64) return malformed("expected proof attribute \"p\" last");
  auto proof_raw = base64_decode(*proof_b64);
  if (!proof_raw) return malformed("proof is not valid base64");
  auto proof = detail::key_from_raw(*proof_raw);
  if (!proof) return malformed("proof has the wrong length");

  std::string_view without_proof =
      client_final_message.substr(0, client_final_message.size() - fields.back().size() - 1);
  std::string auth_message = client_first_bare_ + "," + server_first_ + "," + std::string(without_proof);

  Key client_signature = detail::hmac_sha256(detail::as_view(secret_.stored_key), auth_message);
  Key client_key = detail::xor_keys(*proof, client_signature);
  Key stored_key = detail::sha256(detail::as_view(client_key));
  bool key_matches = secure_equals(detail::as_view(stored_key), detail::as_view(secret_.stored_key));
  // A mock secret fails here, after the same work as a real one, so timing doesn't reveal unknown users.
  if (!key_matches || detail::is_mock(secret_)) return make_error("SCRAM proof does not match");

  client_key_ = client_key;
  Key server_signature = detail::hmac_sha256(detail::as_view(secret_.server_key), auth_message);
  return "v=" + base64_encode(detail::as_view(server_signature));
}

}  // namespace pgweir::auth
