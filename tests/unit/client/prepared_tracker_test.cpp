// PreparedTracker driven message by message, as the relay drives it: the retry of a segment whose plan went stale
// ("cached plan must not change result type") and each reason not to retry, including those no integration test
// can time (the client sending more while the server's error is held back).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "../../../src/client/prepared_tracker.hpp"
#include "pgweir/metrics/pgweir_metrics.hpp"

namespace {

using namespace pgweir;
namespace fe = protocol::frontend;
namespace be = protocol::backend;

std::string message(char tag, const std::string& body) {
  std::string out(1, tag);
  auto len = static_cast<std::uint32_t>(body.size() + 4);
  for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>(len >> shift);
  return out + body;
}
std::string cstr(const std::string& s) { return s + '\0'; }

std::string parse(const std::string& name, const std::string& sql) {
  return message(fe::Parse, cstr(name) + cstr(sql) + std::string(2, '\0'));
}
// No parameters, no result format codes.
std::string bind_statement(const std::string& statement, const std::string& params = std::string(2, '\0')) {
  return message(fe::Bind, cstr("") + cstr(statement) + std::string(2, '\0') + params + std::string(2, '\0'));
}
std::string describe_portal() { return message(fe::Describe, "P" + cstr("")); }
std::string execute() { return message(fe::Execute, cstr("") + std::string(4, '\0')); }
std::string sync() { return message(fe::Sync, ""); }
std::string flush() { return message(fe::Flush, ""); }

std::string ready(char status) { return message(be::ReadyForQuery, std::string(1, status)); }
std::string error(const std::string& sqlstate, const std::string& text, const std::string& routine) {
  std::string body = "SERROR" + std::string(1, '\0') + "VERROR" + std::string(1, '\0') + "C" + cstr(sqlstate) + "M" +
                     cstr(text) + "Fplancache.c" + std::string(1, '\0') + "R" + cstr(routine);
  return message(be::ErrorResponse, body + '\0');
}
std::string stale_error() { return error("0A000", "cached plan must not change result type", "RevalidateCachedQuery"); }
std::string simple(char tag) { return message(tag, ""); }
std::string data_row() { return message(be::DataRow, std::string(2, '\0')); }

// Messages in `bytes`, one word each: the tag, and for Parse/Bind/Close/Describe the statement name.
std::string words(const std::string& bytes, bool frontend) {
  std::string out;
  std::size_t pos = 0;
  while (pos + 5 <= bytes.size()) {
    char tag = bytes[pos];
    auto size = 1 + static_cast<std::size_t>(protocol::read_u32(bytes.data() + pos + 1));
    auto body = bytes.substr(pos + 5, size - 5);
    std::string w(1, tag);
    if (frontend && tag == fe::Parse) w += "(" + body.substr(0, body.find('\0')) + ")";
    if (frontend && tag == fe::Bind) {
      auto name = body.substr(body.find('\0') + 1);
      w += "(" + name.substr(0, name.find('\0')) + ")";
    }
    if (frontend && (tag == fe::Close || tag == fe::Describe)) w += "(" + body.substr(0, body.find('\0')) + ")";
    if (!frontend && tag == be::ReadyForQuery) w += body;
    out += (out.empty() ? "" : " ") + w;
    pos += size;
  }
  return out;
}

// A tracker in front of one server connection that never touches its socket. Whatever pgweir would send either
// way is collected in to_server / to_client.
struct Rig {
  boost::asio::io_context io;
  metrics::Registry registry;
  metrics::Metrics metrics{registry, "test"};
  pool::ConnectionCaps caps;
  std::shared_ptr<pool::Pool> pool;
  server::ServerConnection server{net::Transport(net::Socket(io)), server::Endpoint{}};
  client::PreparedTracker tracker;
  std::string to_server, to_client;

  Rig() {
    pool = std::make_shared<pool::Pool>(pool::PoolKey{"db", "u"}, config::PoolSettings{}, server::LoginSpec{}, caps,
                                        metrics.for_pool("db", "u"), &metrics);
    tracker.enable(pool.get(), 10);
    server.set_transaction_status('I');
  }

  // The client sends `bytes` (whole messages), relayed as pump_client relays them.
  void client(const std::string& bytes) {
    for_each(bytes, [&](char tag, std::string_view whole) {
      auto length = static_cast<std::uint32_t>(whole.size() - 1);
      if (!tracker.wants_client(tag, length)) {
        tracker.on_client_passthrough(tag);
        to_server += whole;
        return;
      }
      auto v = tracker.on_client_message(tag, whole, server);
      if (v == net::Verdict::forward) to_server += whole;
      if (v == net::Verdict::replace) to_server += tracker.replacement();
    });
    tracker.chunk_written();
  }

  // The server answers `bytes`, relayed as pump_server relays them (a retry is sent after the chunk).
  void answer(const std::string& bytes) {
    for_each(bytes, [&](char tag, std::string_view whole) {
      auto length = static_cast<std::uint32_t>(whole.size() - 1);
      net::Verdict v = net::Verdict::forward;
      if (tag == be::ReadyForQuery) {
        v = tracker.on_ready_for_query(whole[5], whole, server);
        if (v != net::Verdict::drop) server.set_transaction_status(whole[5]);
      } else if (tracker.wants_server(tag, length)) {
        v = tracker.on_server_message(tag, whole, server);
      } else {
        tracker.on_server_passthrough(tag);
      }
      if (v == net::Verdict::forward) to_client += whole;
      if (v == net::Verdict::replace) to_client += tracker.server_replacement();
    });
    if (!tracker.retry().empty()) {
      to_server += tracker.retry();
      tracker.retry_sent();
    }
  }

  std::string sent() { return words(std::exchange(to_server, {}), true); }
  std::string received() { return words(std::exchange(to_client, {}), false); }
  std::uint64_t retries() { return metrics.prepared_retries.with({"db", "u"}).value(); }

  template <class F>
  static void for_each(const std::string& bytes, F f) {
    std::size_t pos = 0;
    while (pos < bytes.size()) {
      auto size = 1 + static_cast<std::size_t>(protocol::read_u32(bytes.data() + pos + 1));
      f(bytes[pos], std::string_view(bytes).substr(pos, size));
      pos += size;
    }
  }

  // The client prepares `name` and executes it once, successfully.
  void prepared(const std::string& name, const std::string& sql) {
    client(parse(name, sql) + sync());
    answer(simple(be::ParseComplete) + ready('I'));
    client(bind_statement(name) + describe_portal() + execute() + sync());
    answer(simple(be::BindComplete) + simple(be::NoData) + message(be::CommandComplete, cstr("SELECT 0")) + ready('I'));
    sent();
    received();
  }
};

TEST_CASE("a stale plan: the error and its ReadyForQuery are swallowed, the segment goes again after Close+Parse") {
  Rig r;
  r.prepared("s", "SELECT * FROM t");
  r.client(bind_statement("s") + describe_portal() + execute() + sync());
  CHECK(r.sent() == "B(pgweir_1) D(P) E S");
  r.answer(stale_error() + ready('I'));
  CHECK(r.received() == "");
  CHECK(r.sent() == "C(Spgweir_1) P(pgweir_1) B(pgweir_1) D(P) E S");
  CHECK(r.retries() == 1);
  r.answer(simple(be::CloseComplete) + simple(be::ParseComplete) + simple(be::BindComplete) + data_row() +
           message(be::CommandComplete, cstr("SELECT 1")) + ready('I'));
  CHECK(r.received() == "2 D C ZI");
  // The statement is prepared there: the next execution goes as it is.
  r.client(bind_statement("s") + execute() + sync());
  CHECK(r.sent() == "B(pgweir_1) E S");
}

TEST_CASE("a pipeline of executions in one segment goes again whole, with statements the error left unprepared") {
  Rig r;
  r.prepared("s", "SELECT * FROM t");
  r.prepared("u", "SELECT 2");
  // u is not prepared on this server any more (another server, say): its Parse comes before its Bind.
  r.server.prepared().remove("pgweir_2");
  r.client(bind_statement("s") + execute() + flush() + bind_statement("u") + execute() + sync());
  CHECK(r.sent() == "B(pgweir_1) E H P(pgweir_2) B(pgweir_2) E S");
  // The server skipped u's Parse along with the rest: the retry prepares it again.
  r.answer(stale_error() + ready('I'));
  CHECK(r.sent() == "C(Spgweir_1) P(pgweir_1) B(pgweir_1) E H P(pgweir_2) B(pgweir_2) E S");
  r.answer(simple(be::CloseComplete) + simple(be::ParseComplete) + simple(be::BindComplete) +
           message(be::CommandComplete, cstr("SELECT 0")) + simple(be::ParseComplete) + simple(be::BindComplete) +
           message(be::CommandComplete, cstr("SELECT 1")) + ready('I'));
  CHECK(r.received() == "2 C 2 C ZI");
}

TEST_CASE("the stale plan error passes through unchanged when a retry could change what the client sees") {
  Rig r;
  r.prepared("s", "SELECT * FROM t");
  r.prepared("u", "SELECT 2");
  const std::string stale = stale_error();

  SUBCASE("inside a transaction block") {
    r.server.set_transaction_status('T');
    r.client(bind_statement("s") + execute() + sync());
    r.sent();
    r.answer(stale + ready('E'));
    CHECK(r.to_client == stale + ready('E'));
  }
  SUBCASE("after part of the segment's answer reached the client") {
    r.client(bind_statement("u") + execute() + bind_statement("s") + execute() + sync());
    r.sent();
    r.answer(simple(be::BindComplete) + message(be::CommandComplete, cstr("SELECT 1")) + stale + ready('I'));
    CHECK(r.received() == "2 C E ZI");
    CHECK(r.sent() == "");
  }
  SUBCASE("when the client sent another segment behind it") {
    r.client(bind_statement("s") + execute() + sync() + bind_statement("u") + execute() + sync());
    r.sent();
    r.answer(stale + ready('I'));
    CHECK(r.to_client == stale + ready('I'));
    CHECK(r.sent() == "");
  }
  SUBCASE("when the client sends more while the error is held back") {
    r.client(bind_statement("s") + execute() + sync());
    r.sent();
    r.answer(stale);
    CHECK(r.to_client.empty());
    r.client(bind_statement("u") + execute() + sync());
    r.answer(ready('I'));
    CHECK(r.to_client == stale + ready('I'));
    CHECK(r.sent() == "B(pgweir_2) E S");
  }
  SUBCASE("a segment that does more than execute") {
    r.client(bind_statement("s") + execute() + parse("v", "SELECT 3") + sync());
    r.sent();
    r.answer(stale + ready('I'));
    CHECK(r.to_client == stale + ready('I'));
  }
  SUBCASE("a segment that does not begin with the Bind") {
    r.client(describe_portal() + bind_statement("s") + execute() + sync());
    r.sent();
    r.answer(stale + ready('I'));
    CHECK(r.to_client == stale + ready('I'));
  }
  SUBCASE("a segment without its Sync yet") {
    r.client(bind_statement("s") + execute() + flush());
    r.sent();
    r.answer(stale);
    CHECK(r.to_client == stale);
    r.client(sync());
    r.answer(ready('I'));
    CHECK(r.to_client == stale + ready('I'));
  }
  SUBCASE("a segment longer than k_max_replayed_segment") {
    std::string big(limits::k_max_replayed_segment / 2, 'x');
    std::string params = std::string("\0\1", 2);  // one parameter
    auto len = static_cast<std::uint32_t>(big.size());
    for (int shift = 24; shift >= 0; shift -= 8) params += static_cast<char>(len >> shift);
    params += big;
    r.client(bind_statement("s", params) + execute() + bind_statement("s", params) + execute() + sync());
    r.sent();
    r.answer(stale + ready('I'));
    CHECK(r.to_client == stale + ready('I'));
  }
  CHECK(r.retries() == 0);
}

TEST_CASE("the stale plan error is known by its SQLSTATE and routine, or by its English text") {
  Rig r;
  r.prepared("s", "SELECT * FROM t");
  auto retried = [&](const std::string& err) {
    r.client(bind_statement("s") + execute() + sync());
    r.sent();
    r.answer(err + ready('I'));
    if (!r.to_client.empty()) return false;
    r.answer(simple(be::CloseComplete) + simple(be::ParseComplete) + simple(be::BindComplete) +
             message(be::CommandComplete, cstr("SELECT 0")) + ready('I'));
    CHECK(r.received() == "2 C ZI");
    CHECK(r.sent() == "C(Spgweir_1) P(pgweir_1) B(pgweir_1) E S");
    return true;
  };
  CHECK_FALSE(retried(error("0A000", "something else", "ExecInitNode")));
  CHECK(r.received() == "E ZI");
  CHECK_FALSE(retried(error("42P01", "cached plan must not change result type", "RevalidateCachedQuery")));
  CHECK(r.received() == "E ZI");
  CHECK(retried(error("0A000", "le plan en cache ne doit pas modifier le type de résultat", "RevalidateCachedQuery")));
  CHECK(retried(error("0A000", "cached plan must not change result type", "")));
  CHECK(r.retries() == 2);
}

TEST_CASE("a retry is tried once: its own error reaches the client") {
  Rig r;
  r.prepared("s", "SELECT * FROM t");
  r.client(bind_statement("s") + execute() + sync());
  r.sent();
  r.answer(stale_error() + ready('I'));
  CHECK(r.sent() == "C(Spgweir_1) P(pgweir_1) B(pgweir_1) E S");
  // The table is gone meanwhile: the Parse fails, and the client gets PostgreSQL's answer to it.
  auto gone = error("42P01", "relation \"t\" does not exist", "parserOpenTable");
  r.answer(simple(be::CloseComplete) + gone + ready('I'));
  CHECK(r.to_client == gone + ready('I'));
  CHECK(r.retries() == 1);
  // Not prepared there any more: the next Bind brings its Parse again.
  r.client(bind_statement("s") + execute() + sync());
  CHECK(r.sent() == "P(pgweir_1) B(pgweir_1) E S");
}

TEST_CASE("segments that do not start with a tracked Bind keep Execute and Sync unseen") {
  Rig r;
  r.prepared("s", "SELECT 1");
  CHECK_FALSE(r.tracker.wants_client(fe::Execute, 9));
  CHECK_FALSE(r.tracker.wants_client(fe::Sync, 4));
  r.client(bind_statement("s"));
  CHECK(r.tracker.wants_client(fe::Execute, 9));
  r.client(execute() + sync());
  CHECK_FALSE(r.tracker.wants_client(fe::Sync, 4));
  r.client(bind_statement("unknown"));
  CHECK_FALSE(r.tracker.wants_client(fe::Execute, 9));
}

TEST_CASE("unnamed statements stream through: Bind and Describe are looked at only once the client names one") {
  Rig r;
  CHECK_FALSE(r.tracker.wants_client(fe::Bind, 12));
  CHECK_FALSE(r.tracker.wants_client(fe::Describe, 6));
  r.client(parse("", "SELECT 1") + bind_statement("") + describe_portal() + execute() + sync());
  CHECK(r.sent() == "P() B() D(P) E S");
  r.answer(simple(be::ParseComplete) + simple(be::BindComplete) + simple(be::NoData) +
           message(be::CommandComplete, cstr("SELECT 0")) + ready('I'));
  CHECK(r.received() == "1 2 n C ZI");
  r.prepared("s", "SELECT 2");
  CHECK(r.tracker.wants_client(fe::Bind, 12));
  CHECK(r.tracker.wants_client(fe::Describe, 6));
  r.client(bind_statement("s") + execute() + sync());
  CHECK(r.sent() == "B(pgweir_1) E S");
}

// The client's unnamed Parses are counted, not queued, while none of pgweir's own is awaited: the answers still
// reach the right reader when pgweir's Parses follow them, and an error forgets the Parses the server skipped.
TEST_CASE("an unnamed Parse ahead of pgweir's own Parse: the client's ParseComplete is forwarded, pgweir's dropped") {
  Rig r;
  r.prepared("s", "SELECT 2");
  r.server.prepared().clear();  // as on a server connection that never had "s"
  r.client(parse("", "SELECT 1") + bind_statement("s") + execute() + sync());
  CHECK(r.sent() == "P() P(pgweir_1) B(pgweir_1) E S");
  r.answer(simple(be::ParseComplete) + simple(be::ParseComplete) + simple(be::BindComplete) +
           message(be::CommandComplete, cstr("SELECT 0")) + ready('I'));
  CHECK(r.received() == "1 2 C ZI");
}

TEST_CASE("a counted Parse is something in flight until its ParseComplete") {
  Rig r;
  r.client(parse("", "SELECT 1") + sync());
  CHECK_FALSE(r.tracker.holds_nothing());  // a parked session would drop a tracker that holds nothing
  r.answer(simple(be::ParseComplete) + ready('I'));
  CHECK(r.received() == "1 ZI");
  CHECK(r.tracker.holds_nothing());
}

TEST_CASE("an error forgets the unnamed Parses of its segment, whether it streams through or is looked at") {
  for (bool pipelined : {false, true}) {
    CAPTURE(pipelined);
    Rig r;
    r.prepared("s", "SELECT 2");
    r.server.prepared().clear();
    // The error's segment holds two unnamed Parses; the server answers neither.
    std::string failing = parse("", "SELEC 1") + parse("", "SELECT 1") + sync();
    std::string next = parse("", "SELECT 1") + bind_statement("s") + execute() + sync();
    if (pipelined) {
      // The next segment is sent before the error arrives: its Parses queue behind the counted ones.
      r.client(failing + next);
      CHECK(r.sent() == "P() P() S P() P(pgweir_1) B(pgweir_1) E S");
      r.answer(error("42601", "syntax error", "scanner_yyerror") + ready('I'));
    } else {
      r.client(failing);
      r.answer(error("42601", "syntax error", "scanner_yyerror") + ready('I'));
      r.client(next);
      CHECK(r.sent() == "P() P() S P() P(pgweir_1) B(pgweir_1) E S");
    }
    CHECK(r.received() == "E ZI");
    r.answer(simple(be::ParseComplete) + simple(be::ParseComplete) + simple(be::BindComplete) +
             message(be::CommandComplete, cstr("SELECT 0")) + ready('I'));
    CHECK(r.received() == "1 2 C ZI");
  }
}

}  // namespace
