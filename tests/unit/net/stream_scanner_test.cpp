// StreamScanner: message boundaries found in a relayed stream however it is split, bodies never buffered.
#include <doctest/doctest.h>

#include <random>
#include <string>
#include <vector>

#include "pgweir/net/stream_scanner.hpp"
#include "pgweir/protocol/messages.hpp"

using namespace pgweir;

namespace {

struct Recorder {
  std::string inspect_tags = "ZS";
  std::string drop_tags;
  std::vector<std::string> whole;   // inspected messages, header included
  std::string passthrough_tags;
  bool inspect(char tag, std::uint32_t) { return inspect_tags.find(tag) != std::string::npos; }
  net::Verdict on_message(char tag, std::string_view msg) {
    whole.emplace_back(msg);
    return drop_tags.find(tag) != std::string::npos ? net::Verdict::drop : net::Verdict::forward;
  }
  void on_passthrough(char tag, std::uint32_t) { passthrough_tags += tag; }
};

std::string message(char tag, std::string_view body) {
  std::string m(1, tag);
  std::uint32_t len = static_cast<std::uint32_t>(body.size() + 4);
  m += static_cast<char>(len >> 24);
  m += static_cast<char>(len >> 16);
  m += static_cast<char>(len >> 8);
  m += static_cast<char>(len);
  m += body;
  return m;
}

// Feeds `stream` in pieces cut at `cuts` and returns what would be forwarded.
std::string feed_split(const std::string& stream, const std::vector<std::size_t>& cuts, Recorder& rec,
                       const char** error = nullptr) {
  net::StreamScanner scanner;
  std::string forwarded;
  std::size_t at = 0;
  auto feed = [&](std::size_t end) {
    net::Segments out;
    const char* err = scanner.feed(std::string_view(stream).substr(at, end - at), rec, out);
    if (err && error) *error = err;
    for (auto s : out) forwarded += s;
    at = end;
  };
  for (auto c : cuts) feed(c);
  feed(stream.size());
  return forwarded;
}

std::string sample_stream() {
  std::string s;
  s += message('T', std::string(40, 'r'));
  s += message('D', std::string(3000, 'x'));
  s += message('S', std::string("TimeZone\0UTC\0", 13));
  s += message('D', "");
  s += message('C', std::string("SELECT 1\0", 9));
  s += message('Z', "I");
  return s;
}

}  // namespace

TEST_CASE("a split at every byte forwards the same bytes and sees the same messages") {
  const std::string stream = sample_stream();
  Recorder whole_rec;
  const std::string expected = feed_split(stream, {}, whole_rec);
  CHECK(expected == stream);
  REQUIRE(whole_rec.whole.size() == 2);
  CHECK(whole_rec.passthrough_tags == "TDDC");
  for (std::size_t cut = 1; cut < stream.size(); ++cut) {
    Recorder rec;
    CHECK(feed_split(stream, {cut}, rec) == stream);
    CHECK(rec.whole == whole_rec.whole);
    CHECK(rec.passthrough_tags == whole_rec.passthrough_tags);
  }
}

TEST_CASE("one byte at a time") {
  const std::string stream = sample_stream();
  std::vector<std::size_t> cuts;
  for (std::size_t i = 1; i < stream.size(); ++i) cuts.push_back(i);
  Recorder rec;
  CHECK(feed_split(stream, cuts, rec) == stream);
  CHECK(rec.whole.size() == 2);
}

TEST_CASE("dropped messages are cut out, split or not") {
  std::string stream = message('Q', std::string("select 1\0", 9)) + message('X', "") ;
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    Recorder rec;
    rec.inspect_tags = "X";
    rec.drop_tags = "X";
    std::vector<std::size_t> cuts;
    if (cut > 0 && cut < stream.size()) cuts.push_back(cut);
    CHECK(feed_split(stream, cuts, rec) == message('Q', std::string("select 1\0", 9)));
    CHECK(rec.whole.size() == 1);
  }
}

TEST_CASE("boundary tracking: at_boundary only between messages") {
  net::StreamScanner scanner;
  Recorder rec;
  net::Segments out;
  std::string m = message('D', std::string(100, 'y'));
  CHECK(scanner.at_boundary());
  CHECK(scanner.feed(std::string_view(m).substr(0, 3), rec, out) == nullptr);
  CHECK_FALSE(scanner.at_boundary());
  CHECK(scanner.feed(std::string_view(m).substr(3, 50), rec, out) == nullptr);
  CHECK_FALSE(scanner.at_boundary());
  CHECK(scanner.feed(std::string_view(m).substr(53), rec, out) == nullptr);
  CHECK(scanner.at_boundary());
}

TEST_CASE("invalid lengths are reported, not buffered") {
  Recorder rec;
  const char* err = nullptr;
  std::string bad = "D";
  bad += std::string("\x00\x00\x00\x02", 4);  // length < 4
  feed_split(bad, {}, rec, &err);
  CHECK(err != nullptr);

  err = nullptr;
  std::string huge = "Z";
  huge += std::string("\x7f\xff\xff\xff", 4);  // inspected and oversize
  Recorder rec2;
  feed_split(huge, {}, rec2, &err);
  CHECK(err != nullptr);
}

TEST_CASE("large pass-through bodies stream without being assembled") {
  std::string body(1 << 20, 'z');
  std::string stream = message('d', body) + message('Z', "T");
  Recorder rec;
  std::vector<std::size_t> cuts;
  for (std::size_t i = 16384; i < stream.size(); i += 16384) cuts.push_back(i);
  CHECK(feed_split(stream, cuts, rec) == stream);
  REQUIRE(rec.whole.size() == 1);
  CHECK(rec.whole[0] == message('Z', "T"));
}

TEST_CASE("random garbage never crashes and never forwards more than it was given") {
  std::mt19937 rng(12345);
  for (int round = 0; round < 10000; ++round) {
    std::string data(rng() % 64, '\0');
    for (auto& c : data) c = static_cast<char>(rng());
    net::StreamScanner scanner;
    Recorder rec;
    net::Segments out;
    std::size_t at = 0;
    std::size_t forwarded = 0;
    while (at < data.size()) {
      std::size_t n = 1 + rng() % (data.size() - at);
      if (scanner.feed(std::string_view(data).substr(at, n), rec, out)) break;
      at += n;
    }
    for (auto s : out) forwarded += s.size();
    CHECK(forwarded <= data.size());
  }
}
