// fuzz_backend_messages: the message body parsers pgweir uses (backend messages from servers, and the frontend ones
// it reads from clients). The first byte picks the parser; every accepted body is rebuilt, re-framed and re-parsed.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"
#include "pgweir/core/limits.hpp"
#include "pgweir/protocol/messages.hpp"

namespace {

using namespace pgweir;
using namespace pgweir::protocol;

// The single message a builder appended: it must frame as exactly one whole message with the expected tag.
std::string_view body_of(const std::string& message, char tag) {
  const FrameResult r = peek_message(message, limits::k_max_message);
  FUZZ_CHECK(r.status == FrameStatus::ok);
  FUZZ_CHECK(r.frame.tag == tag);
  FUZZ_CHECK(r.frame.size() == message.size());
  return std::string_view(message).substr(k_header_size);
}

void check_authentication(std::string_view body) {
  auto auth = parse_authentication(body);
  if (!auth) return;
  std::string out;
  switch (auth->code) {
    case AuthCode::ok: append_authentication_ok(out); break;
    case AuthCode::cleartext_password: append_authentication_cleartext(out); break;
    case AuthCode::md5_password: append_authentication_md5(out, auth->md5_salt); break;
    case AuthCode::sasl: {
      FUZZ_CHECK(!auth->mechanisms.empty());
      std::vector<std::string_view> names(auth->mechanisms.begin(), auth->mechanisms.end());
      append_authentication_sasl(out, names);
      break;
    }
    case AuthCode::sasl_continue: append_authentication_sasl_continue(out, auth->data); break;
    case AuthCode::sasl_final: append_authentication_sasl_final(out, auth->data); break;
    default: return;  // pgweir never sends the others, so there is no builder to compare with
  }
  const std::string_view rebuilt = body_of(out, backend::Authentication);
  FUZZ_CHECK(rebuilt == body);
  auto again = parse_authentication(rebuilt);
  FUZZ_CHECK(again && again->code == auth->code && again->md5_salt == auth->md5_salt &&
             again->mechanisms == auth->mechanisms && again->data == auth->data);
}

void check_parameter_status(std::string_view body) {
  auto ps = parse_parameter_status(body);
  if (!ps) return;
  FUZZ_CHECK(!ps->name.empty());
  std::string out;
  append_parameter_status(out, ps->name, ps->value);
  FUZZ_CHECK(body_of(out, backend::ParameterStatus) == body);
}

void check_backend_key_data(std::string_view body) {
  auto key = parse_backend_key_data(body);
  if (!key) return;
  std::string out;
  append_backend_key_data(out, key->process_id, key->secret_key);
  FUZZ_CHECK(body_of(out, backend::BackendKeyData) == body);
}

void check_ready_for_query(std::string_view body) {
  auto status = parse_ready_for_query(body);
  if (!status) return;
  FUZZ_CHECK(*status == 'I' || *status == 'T' || *status == 'E');
  std::string out;
  append_ready_for_query(out, *status);
  FUZZ_CHECK(body_of(out, backend::ReadyForQuery) == body);
}

// The header promises build -> parse -> build is stable (not byte-identical to arbitrary input: field order and
// repeated fields are normalised).
void check_error_fields(std::string_view body, char tag) {
  auto first = parse_error_fields(body);
  if (!first) return;
  std::string out1;
  tag == backend::ErrorResponse ? append_error_response(out1, *first) : append_notice_response(out1, *first);
  auto second = parse_error_fields(body_of(out1, tag));
  FUZZ_CHECK(second.has_value());
  FUZZ_CHECK(second->severity == first->severity && second->code == first->code &&
             second->message == first->message && second->detail == first->detail && second->hint == first->hint);
  std::vector<std::pair<char, std::string>> first_other, second_other;  // without 'V', which the builder moves
  for (const auto& f : first->other)
    if (f.first != 'V') first_other.push_back(f);
  for (const auto& f : second->other)
    if (f.first != 'V') second_other.push_back(f);
  FUZZ_CHECK(first_other == second_other);
  std::string out2;
  tag == backend::ErrorResponse ? append_error_response(out2, *second) : append_notice_response(out2, *second);
  FUZZ_CHECK(out1 == out2);
}

void check_negotiate_protocol_version(std::string_view body) {
  auto npv = parse_negotiate_protocol_version(body);
  if (!npv) return;
  std::string out;
  append_negotiate_protocol_version(out, npv->newest_minor, npv->unrecognized_options);
  FUZZ_CHECK(body_of(out, backend::NegotiateProtocolVersion) == body);
}

void check_command_complete(std::string_view body) {
  auto tag = parse_command_complete(body);
  if (!tag) return;
  std::string out;
  append_command_complete(out, *tag);
  FUZZ_CHECK(body_of(out, backend::CommandComplete) == body);
}

void check_row_description(std::string_view body) {
  auto fields = parse_row_description(body);
  if (!fields) return;
  std::string out;
  append_row_description(out, *fields);
  FUZZ_CHECK(body_of(out, backend::RowDescription) == body);
}

void check_data_row(std::string_view body) {
  auto values = parse_data_row(body);
  if (!values) return;
  std::string out;
  append_data_row(out, *values);
  FUZZ_CHECK(body_of(out, backend::DataRow) == body);
}

void check_password_message(std::string_view body) {
  auto password = parse_password_message(body);
  if (!password) return;
  std::string out;
  append_password_message(out, *password);
  FUZZ_CHECK(body_of(out, frontend::PasswordMessage) == body);
}

void check_sasl_initial_response(std::string_view body) {
  auto response = parse_sasl_initial_response(body);
  if (!response) return;
  FUZZ_CHECK(!response->mechanism.empty());
  if (!response->data) return;  // length -1: the builder always writes data
  std::string out;
  append_sasl_initial_response(out, response->mechanism, *response->data);
  FUZZ_CHECK(body_of(out, frontend::PasswordMessage) == body);
}

void check_query(std::string_view body) {
  auto sql = parse_query(body);
  if (!sql) return;
  std::string out;
  append_query(out, *sql);
  FUZZ_CHECK(body_of(out, frontend::Query) == body);
}

using Checker = void (*)(std::string_view);
struct Entry {
  char selector;  // the message's own tag where it has one; 'i' for SASLInitialResponse (shares 'p')
  Checker check;
};
constexpr Entry k_entries[] = {
    {'R', check_authentication},
    {'S', check_parameter_status},
    {'K', check_backend_key_data},
    {'Z', check_ready_for_query},
    {'E', [](std::string_view b) { check_error_fields(b, backend::ErrorResponse); }},
    {'N', [](std::string_view b) { check_error_fields(b, backend::NoticeResponse); }},
    {'v', check_negotiate_protocol_version},
    {'C', check_command_complete},
    {'T', check_row_description},
    {'D', check_data_row},
    {'p', check_password_message},
    {'i', check_sasl_initial_response},
    {'Q', check_query},
};

}  // namespace

// Input: one selector byte (a tag from k_entries, or any byte: taken modulo), then the message body.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view body = fuzz::as_view(data + 1, size - 1);
  const char selector = static_cast<char>(data[0]);
  for (const Entry& e : k_entries) {
    if (e.selector == selector) {
      e.check(body);
      return 0;
    }
  }
  k_entries[data[0] % std::size(k_entries)].check(body);
  return 0;
}
