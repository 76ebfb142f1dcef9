// A client of the admin console (database "pgweir" or "pgbouncer"): simple-query commands answered by
// admin::Console over the daemon's Inventory; no server connection is involved.
#include <algorithm>

#include "pgweir/admin/console.hpp"
#include "pgweir/core/limits.hpp"
#include "pgweir/core/log.hpp"
#include "pgweir/net/message_io.hpp"
#include "session_impl.hpp"

namespace pgweir::client {
namespace {
namespace fe = protocol::frontend;
}  // namespace

net::Task<void> Session::serve_console() {
  const auto& admins = settings_->config->admin;
  auto listed = [&](const std::vector<std::string>& users) {
    return std::find(users.begin(), users.end(), user()) != users.end();
  };
  admin::Role role;
  if (listed(admins.users)) {
    role = admin::Role::admin;
  } else if (listed(admins.stats_users)) {
    role = admin::Role::stats;
  } else {
    co_await fail(CloseReason::auth_failed, "28000",
                  "user \"" + user() + "\" is not in admin.users or admin.stats_users: no access to the console");
    co_return;
  }
  if (!env_.inventory) {
    co_await fail(CloseReason::server_unavailable, "55000", "the admin console is not available");
    co_return;
  }
  welcome_info();
  id_ = env_.registry.add(this);
  log::info("client_login", {{"client_id", id_}, {"peer", peer()}, {"database", database()}, {"user", user()},
                             {"console", role == admin::Role::admin ? "admin" : "stats"}});

  // After authenticate()'s AuthenticationOk: what drivers expect to be told at login; the console speaks UTF-8 and
  // ISO dates.
  std::string& welcome = login_->scratch;
  protocol::append_parameter_status(welcome, "server_version", "15.0 (pgweir " PGWEIR_VERSION ")");
  protocol::append_parameter_status(welcome, "server_encoding", "UTF8");
  protocol::append_parameter_status(welcome, "client_encoding", "UTF8");
  protocol::append_parameter_status(welcome, "DateStyle", "ISO, MDY");
  protocol::append_parameter_status(welcome, "integer_datetimes", "on");
  protocol::append_parameter_status(welcome, "standard_conforming_strings", "on");
  const auto* app = login_->startup.find("application_name");
  protocol::append_parameter_status(welcome, "application_name", app ? *app : "");
  protocol::append_backend_key_data(welcome, 0, 0);
  protocol::append_ready_for_query(welcome, 'I');
  if (co_await client_.write_all(welcome)) {
    reason_ = CloseReason::client_error;
    co_return;
  }

  admin::Console console;
  std::string buffer;
  bool skipping = false;  // an extended-protocol message was refused; ignore the rest up to Sync
  for (;;) {
    if (shutdown_requested_ || killed_) {
      reason_ = killed_ ? CloseReason::admin_kill : CloseReason::shutdown;
      co_return;
    }
    auto msg = co_await net::read_message(client_, buffer, limits::k_max_inspected_message);
    if (!msg) {
      reason_ = shutdown_requested_ ? CloseReason::shutdown
                : killed_           ? CloseReason::admin_kill
                : msg.error().message == "connection closed" ? CloseReason::client_eof
                                                             : CloseReason::protocol_violation;
      co_return;
    }
    std::string out;
    switch (msg->tag) {
      case fe::Query: {
        auto text = msg->body;
        if (!text.empty() && text.back() == '\0') text.remove_suffix(1);
        out = console.execute(text, role, *env_.inventory);
        break;
      }
      case fe::Terminate: reason_ = CloseReason::client_terminate; co_return;
      case fe::Sync:
        skipping = false;
        protocol::append_ready_for_query(out, 'I');
        break;
      default:
        if (!skipping) {
          protocol::append_error(out, "ERROR", "08P01", "the admin console supports only the simple query protocol");
          skipping = true;
        }
        break;
    }
    if (!out.empty() && co_await client_.write_all(out)) {
      reason_ = CloseReason::client_error;
      co_return;
    }
  }
}

}  // namespace pgweir::client
