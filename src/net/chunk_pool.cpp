// The per-thread free list behind Chunk.
#include "pgweir/net/chunk_pool.hpp"

namespace pgweir::net {
namespace {

// Enough to serve bursts without holding much memory after them.
constexpr std::size_t k_max_free_chunks = 64;

std::vector<std::unique_ptr<char[]>>& free_list() {
  thread_local std::vector<std::unique_ptr<char[]>> list;
  return list;
}

}  // namespace

void Chunk::acquire() {
  if (data_) return;
  auto& list = free_list();
  if (!list.empty()) {
    data_ = std::move(list.back());
    list.pop_back();
  } else {
    data_ = std::make_unique_for_overwrite<char[]>(limits::k_relay_chunk);
  }
}

void Chunk::reset() {
  if (!data_) return;
  auto& list = free_list();
  if (list.size() < k_max_free_chunks) list.push_back(std::move(data_));
  data_.reset();
}

}  // namespace pgweir::net
