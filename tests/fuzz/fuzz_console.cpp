// fuzz_console: the admin console's parse_command and Console::execute (both roles) on arbitrary query text, with a
// fake Inventory; every response must be a well-formed message sequence ending in ReadyForQuery('I').
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"
#include "pgweir/admin/console.hpp"
#include "pgweir/core/limits.hpp"
#include "pgweir/protocol/messages.hpp"

namespace {

using namespace pgweir;
using namespace pgweir::admin;

class FakeInventory : public Inventory {
 public:
  FakeInventory() {
    PoolInfo p;
    p.snapshot.key = {"appdb", "app"};
    p.snapshot.idle = 3;
    p.snapshot.active = 2;
    p.snapshot.waiting = 1;
    p.snapshot.max_wait = std::chrono::microseconds(2'500'000);
    pools_.push_back(p);
    DatabaseInfo d;
    d.name = "appdb";
    d.host = "db.internal";
    d.database = "appdb";
    databases_.push_back(d);
    d.name = "*";
    d.host.reset();
    databases_.push_back(d);
    ConnectionInfo c;
    c.id = 42;
    c.user = "app";
    c.database = "appdb";
    c.state = "active";
    c.addr = "10.0.0.1";
    c.tls = "TLSv1.3/TLS_AES_256_GCM_SHA384";
    connections_.push_back(c);
    DatabaseStats s;
    s.database = "appdb";
    s.total.query_count = 7;
    stats_.push_back(s);
  }

  std::vector<PoolInfo> pools() override { return pools_; }
  std::vector<DatabaseStats> stats() override { return stats_; }
  std::vector<DatabaseInfo> databases() override { return databases_; }
  std::vector<ConnectionInfo> clients() override { return connections_; }
  std::vector<ConnectionInfo> servers() override { return connections_; }
  std::vector<UserInfo> users() override { return {{"app", std::nullopt}, {"backup", std::string("session")}}; }
  std::vector<ConfigEntry> config() override { return {{"pool.size", "20", "20", true}}; }
  ListCounts lists() override { return {7, 1, 6}; }
  std::string version() override { return "pgweir 0.1.0"; }

  Expected<void> pause(const std::optional<std::string>&) override { return act(); }
  Expected<void> resume(const std::optional<std::string>&) override { return act(); }
  Expected<void> reconnect(const std::optional<std::string>&) override { return act(); }
  Expected<void> kill(const std::string&) override { return act(); }
  Expected<void> kill_client(std::uint64_t id) override {
    if (id != 42) return make_error("no such client");
    return act();
  }
  Expected<void> reload() override { return act(); }
  Expected<void> shutdown(ShutdownMode) override { return act(); }

  bool fail_actions = false;

 private:
  Expected<void> act() {
    if (fail_actions) return make_error("action failed");
    return {};
  }
  std::vector<PoolInfo> pools_;
  std::vector<DatabaseInfo> databases_;
  std::vector<ConnectionInfo> connections_;
  std::vector<DatabaseStats> stats_;
};

// What a client would see: whole messages only, rows as wide as their RowDescription, ReadyForQuery('I') last.
void check_response(std::string_view wire, bool parsed) {
  std::optional<std::size_t> columns;
  bool first = true;
  for (;;) {
    const auto f = protocol::peek_message(wire, limits::k_max_message);
    FUZZ_CHECK(f.status == protocol::FrameStatus::ok);
    const std::string_view body = wire.substr(protocol::k_header_size, f.frame.body_size());
    if (first && !parsed) FUZZ_CHECK(f.frame.tag == 'E');
    first = false;
    switch (f.frame.tag) {
      case 'T': {
        auto fields = protocol::parse_row_description(body);
        FUZZ_CHECK(fields.has_value());
        columns = fields->size();
        break;
      }
      case 'D': {
        auto values = protocol::parse_data_row(body);
        FUZZ_CHECK(values.has_value() && columns && values->size() == *columns);
        break;
      }
      case 'C': FUZZ_CHECK(protocol::parse_command_complete(body).has_value()); break;
      case 'E':
      case 'N': {
        auto fields = protocol::parse_error_fields(body);
        FUZZ_CHECK(fields.has_value() && fields->code.size() == 5 && !fields->message.empty());
        break;
      }
      case 'I': FUZZ_CHECK(body.empty()); break;
      case 'Z': {
        FUZZ_CHECK(protocol::parse_ready_for_query(body).has_value() && body == "I");
        FUZZ_CHECK(f.frame.size() == wire.size());  // last message
        return;
      }
      default: FUZZ_CHECK(false && "unexpected message tag in a console response");
    }
    wire.remove_prefix(f.frame.size());
  }
}

}  // namespace

// Input: one options byte (bit 0: actions fail), then the query text.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view query = fuzz::as_view(data + 1, size - 1);
  const bool parsed = parse_command(query).has_value();
  FakeInventory inventory;
  inventory.fail_actions = (data[0] & 1) != 0;
  Console console;
  for (Role role : {Role::admin, Role::stats}) check_response(console.execute(query, role, inventory), parsed);
  return 0;
}
