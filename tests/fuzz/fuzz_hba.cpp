// fuzz_hba: hba::parse on arbitrary pg_hba.conf text, then hba::match for a fixed set of clients; and
// IpAddress::parse on short inputs.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "fuzz_support.hpp"
#include "pgweir/hba/hba.hpp"

namespace {

using namespace pgweir;
using namespace pgweir::hba;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = fuzz::as_view(data, size);
  if (size <= 64) (void)IpAddress::parse(text);

  const HbaFile file = parse(text);
  int previous = 0;
  for (const Rule& r : file.rules) {
    FUZZ_CHECK(r.line > previous);  // one rule per line, in file order
    previous = r.line;
    FUZZ_CHECK(!r.databases.empty() && !r.users.empty());
    (void)to_string(r.method);
    (void)to_string(r.type);
  }
  for (const LoadError& e : file.errors) FUZZ_CHECK(e.line >= 1 && e.column >= 1 && !e.message.empty());

  const auto v4 = IpAddress::parse("10.1.2.3");
  const auto mapped = IpAddress::parse("::ffff:10.1.2.3");
  const auto v6 = IpAddress::parse("fe80::1");
  FUZZ_CHECK(v4 && mapped && v6);
  const ClientInfo clients[] = {
      {true, false, std::nullopt, "appdb", "app"},
      {false, false, v4, "appdb", "app"},
      {false, true, v4, "all", "all"},
      {false, true, mapped, "replication", "postgres"},
      {false, false, v6, "pgweir", "admin"},
      {false, true, v6, "", ""},
  };
  for (const ClientInfo& c : clients) {
    const Rule* rule = match(file, c);
    if (rule != nullptr) FUZZ_CHECK(rule >= file.rules.data() && rule < file.rules.data() + file.rules.size());
  }
  return 0;
}
