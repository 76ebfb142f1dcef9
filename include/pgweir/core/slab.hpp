// Blocks for what a client keeps for as long as it is connected (its session object, the record it shares with the
// console and cancel requests, its registry entries), carved from chunks of their own instead of the general heap.
//
// Why: a login allocates and frees many short-lived things (coroutine frames, SCRAM state, strings). Objects that
// live on are placed by malloc among them, and each such object keeps a page of freed chunks resident for as long as
// its client stays connected: with 100 logins in flight that was 0.6-0.9 KB per idle client. In chunks of their own,
// long-lived objects share pages only with each other.
//
// Blocks come in sizes rounded up to 16 bytes, up to k_max_block; larger requests go to operator new. A chunk whose
// blocks are all free goes back to the system, but for one kept per size so that clients coming and going do not map
// and unmap. Thread-safe (one mutex: allocations happen per connection, not per query).
#pragma once

#include <cstddef>
#include <new>

namespace pgweir::core::slab {

inline constexpr std::size_t k_max_block = 1024;
inline constexpr std::size_t k_alignment = 16;

void* allocate(std::size_t size);
void deallocate(void* p, std::size_t size) noexcept;

struct Stats {
  std::size_t chunks = 0;  // chunks mapped, spares included
  std::size_t blocks = 0;  // blocks handed out and not given back
};
Stats stats();

// For containers and allocate_shared.
template <class T>
struct Allocator {
  static_assert(alignof(T) <= k_alignment);
  using value_type = T;
  Allocator() noexcept = default;
  template <class U>
  Allocator(const Allocator<U>&) noexcept {}
  T* allocate(std::size_t n) { return static_cast<T*>(slab::allocate(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) noexcept { slab::deallocate(p, n * sizeof(T)); }
  template <class U>
  bool operator==(const Allocator<U>&) const noexcept {
    return true;
  }
};

}  // namespace pgweir::core::slab
