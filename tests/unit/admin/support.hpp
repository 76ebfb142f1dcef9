// A fake Inventory that records the actions it is asked for, and a decoder that splits a console response into the
// messages a client would see.
#pragma once

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "pgweir/admin/console.hpp"
#include "pgweir/core/limits.hpp"
#include "pgweir/protocol/messages.hpp"

namespace pgweir::admin::test {

class FakeInventory : public Inventory {
 public:
  FakeInventory() {
    PoolInfo p;
    p.snapshot.key = {"appdb", "app"};
    p.snapshot.settings.mode = config::PoolMode::transaction;
    p.snapshot.idle = 3;
    p.snapshot.active = 2;
    p.snapshot.connecting = 1;
    p.snapshot.testing = 1;
    p.snapshot.waiting = 4;
    p.snapshot.max_wait = std::chrono::microseconds(2'500'000);
    p.clients_active = 5;
    pools_.push_back(p);
    DatabaseInfo d;
    d.name = "appdb";
    d.host = "db.internal";
    d.database = "appdb";
    d.pool_size = 30;
    d.reserve_pool = 10;
    databases_.push_back(d);
    users_.push_back({"app", std::nullopt});
    users_.push_back({"backupuser", std::string("session")});
  }

  std::vector<PoolInfo> pools() override { return pools_; }
  std::vector<DatabaseStats> stats() override { return stats_; }
  std::vector<DatabaseInfo> databases() override { return databases_; }
  std::vector<ConnectionInfo> clients() override { return clients_; }
  std::vector<ConnectionInfo> servers() override { return servers_; }
  std::vector<UserInfo> users() override { return users_; }
  std::vector<ConfigEntry> config() override { return {{"pool.size", "20", "20", true}}; }
  ListCounts lists() override { return {7, 1, 6}; }
  std::string version() override { return "pgweir 0.1.0"; }

  Expected<void> pause(const std::optional<std::string>& db) override { return act("pause", db); }
  Expected<void> resume(const std::optional<std::string>& db) override { return act("resume", db); }
  Expected<void> reconnect(const std::optional<std::string>& db) override { return act("reconnect", db); }
  Expected<void> kill(const std::string& db) override { return act("kill", db); }
  Expected<void> kill_client(std::uint64_t id) override { return act("kill_client", std::to_string(id)); }
  Expected<void> reload() override { return act("reload", std::nullopt); }
  Expected<void> shutdown(ShutdownMode mode) override {
    return act("shutdown", std::to_string(static_cast<int>(mode)));
  }

  std::vector<std::string> actions;  // "pause appdb", "reload", …
  std::optional<std::string> fail_with;  // next action fails with this text
  std::vector<PoolInfo> pools_;
  std::vector<DatabaseStats> stats_;
  std::vector<DatabaseInfo> databases_;
  std::vector<ConnectionInfo> clients_, servers_;
  std::vector<UserInfo> users_;

 private:
  Expected<void> act(const std::string& what, const std::optional<std::string>& arg) {
    actions.push_back(arg ? what + " " + *arg : what);
    if (fail_with) return make_error(*fail_with);
    return {};
  }
};

struct Column {
  std::string name;
  std::uint32_t type_oid = 0;
  std::int16_t type_size = 0;
};

// What a client sees for one query.
struct Reply {
  std::vector<Column> columns;
  std::vector<std::vector<std::optional<std::string>>> rows;
  std::string command_tag;
  std::string error_code, error_message;
  std::string notice_detail;
  bool empty_query = false;
  char ready_status = 0;
  std::vector<char> tags;  // every message tag, in order

  std::vector<std::string> column_names() const {
    std::vector<std::string> out;
    for (const auto& c : columns) out.push_back(c.name);
    return out;
  }
  // Row i's value in the named column.
  std::optional<std::string> at(std::size_t row, const std::string& column) const {
    for (std::size_t i = 0; i < columns.size(); ++i)
      if (columns[i].name == column) return rows.at(row).at(i);
    FAIL("no column " << column);
    return std::nullopt;
  }
};

inline Reply decode(std::string_view wire) {
  Reply r;
  while (!wire.empty()) {
    const auto f = protocol::peek_message(wire, limits::k_max_message);
    REQUIRE(f.status == protocol::FrameStatus::ok);
    const std::string_view body = wire.substr(protocol::k_header_size, f.frame.body_size());
    r.tags.push_back(f.frame.tag);
    switch (f.frame.tag) {
      case 'T': {
        auto fields = protocol::parse_row_description(body);
        REQUIRE(fields);
        for (const auto& fd : *fields) r.columns.push_back({std::string(fd.name), fd.type_oid, fd.type_size});
        break;
      }
      case 'D': {
        auto values = protocol::parse_data_row(body);
        REQUIRE(values);
        std::vector<std::optional<std::string>> row;
        for (const auto& v : *values) row.push_back(v ? std::optional<std::string>(std::string(*v)) : std::nullopt);
        REQUIRE(row.size() == r.columns.size());
        r.rows.push_back(std::move(row));
        break;
      }
      case 'C': {
        auto tag = protocol::parse_command_complete(body);
        REQUIRE(tag);
        r.command_tag = std::string(*tag);
        break;
      }
      case 'E': {
        auto e = protocol::parse_error_fields(body);
        REQUIRE(e);
        r.error_code = e->code;
        r.error_message = e->message;
        break;
      }
      case 'N': {
        auto e = protocol::parse_error_fields(body);
        REQUIRE(e);
        r.notice_detail = e->detail;
        break;
      }
      case 'I': r.empty_query = true; break;
      case 'Z': {
        auto s = protocol::parse_ready_for_query(body);
        REQUIRE(s);
        r.ready_status = *s;
        break;
      }
      default: FAIL("unexpected message tag " << f.frame.tag);
    }
    wire.remove_prefix(f.frame.size());
  }
  REQUIRE(!r.tags.empty());
  CHECK(r.tags.back() == 'Z');  // every response ends with ReadyForQuery, exactly once
  CHECK(std::count(r.tags.begin(), r.tags.end(), 'Z') == 1);
  return r;
}

inline Reply run(FakeInventory& inv, std::string_view query, Role role = Role::admin) {
  Console console;
  return decode(console.execute(query, role, inv));
}

}  // namespace pgweir::admin::test
