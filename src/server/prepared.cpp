// PreparedCache: an LRU set of statement names prepared on one server connection.
#include "pgweir/server/prepared.hpp"

namespace pgweir::server {

void PreparedCache::touch(const std::string& name) {
  auto it = index_.find(name);
  if (it == index_.end()) return;
  lru_.splice(lru_.end(), lru_, it->second);
}

void PreparedCache::add(const std::string& name) {
  if (index_.contains(name)) {
    touch(name);
    return;
  }
  lru_.push_back(name);
  index_.emplace(name, std::prev(lru_.end()));
}

void PreparedCache::remove(const std::string& name) {
  auto it = index_.find(name);
  if (it == index_.end()) return;
  lru_.erase(it->second);
  index_.erase(it);
}

std::optional<std::string> PreparedCache::oldest() const {
  if (lru_.empty()) return std::nullopt;
  return lru_.front();
}

void PreparedCache::clear() {
  lru_.clear();
  index_.clear();
}

}  // namespace pgweir::server
