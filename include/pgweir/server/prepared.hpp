// Named prepared statements in transaction mode: the statement a client prepared, under a server-side name that
// cannot collide, and the LRU set of those names one server connection has prepared.
#pragma once

#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace pgweir::server {

struct Statement {
  std::uint64_t id = 0;
  std::string name;         // server-side name: "pgweir_<id>"
  std::string query;
  std::string param_types;  // Parse's int16 count and int32 type OIDs, as sent
};

class PreparedCache {
 public:
  bool contains(const std::string& name) const { return index_.contains(name); }
  std::size_t size() const { return index_.size(); }
  void touch(const std::string& name);
  void add(const std::string& name);
  void remove(const std::string& name);
  // The least recently used name, if any.
  std::optional<std::string> oldest() const;
  void clear();

 private:
  std::list<std::string> lru_;  // front = oldest
  std::unordered_map<std::string, std::list<std::string>::iterator> index_;
};

}  // namespace pgweir::server
