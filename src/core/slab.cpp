// Chunks are 64 KiB mappings aligned to their size, so a block finds its chunk by masking its address. A chunk
// hands out never-used blocks from its end (`fresh`) before it touches them, so a new chunk costs a page of RSS,
// not 64 KiB; blocks given back go on the chunk's own free list.
#include "pgweir/core/slab.hpp"

#include <sys/mman.h>

#include <cstdint>
#include <mutex>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/lsan_interface.h>
#endif

namespace pgweir::core::slab {
namespace {

constexpr std::size_t k_chunk = 64 * 1024;
constexpr std::size_t k_header = 64;  // the Chunk record, rounded up; blocks start 16-aligned after it
constexpr std::size_t k_classes = k_max_block / k_alignment + 1;

struct FreeBlock {
  FreeBlock* next;
};

// A chunk is in its size's list exactly while it has a free block (not full()).
struct Chunk {
  Chunk* prev;
  Chunk* next;
  FreeBlock* free;    // blocks given back
  std::uint32_t fresh;  // offset of the first block never handed out
  std::uint32_t used;   // blocks handed out
  std::uint32_t block;  // block size
};
static_assert(sizeof(Chunk) <= k_header);

struct Size {
  Chunk* open;  // chunks with a free block
};

struct State {
  std::mutex mutex;
  Size sizes[k_classes];
  std::size_t chunks;
  std::size_t blocks;
};
// Trivially destructible: sessions destroyed while the process exits still find it.
constinit State g_state{};

void poison(void* p, std::size_t n) {
#if defined(__SANITIZE_ADDRESS__)
  ASAN_POISON_MEMORY_REGION(p, n);
#else
  (void)p, (void)n;
#endif
}

void unpoison(void* p, std::size_t n) {
#if defined(__SANITIZE_ADDRESS__)
  ASAN_UNPOISON_MEMORY_REGION(p, n);
#else
  (void)p, (void)n;
#endif
}

Chunk* chunk_of(void* p) { return reinterpret_cast<Chunk*>(reinterpret_cast<std::uintptr_t>(p) & ~(k_chunk - 1)); }

bool full(const Chunk* c) { return !c->free && c->fresh + c->block > k_chunk; }

Chunk* map_chunk(std::uint32_t block) {
  // Twice the size, then the unaligned ends are unmapped.
  void* raw = ::mmap(nullptr, 2 * k_chunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  auto start = reinterpret_cast<std::uintptr_t>(raw);
  auto aligned = (start + k_chunk - 1) & ~(k_chunk - 1);
  if (aligned > start) ::munmap(raw, aligned - start);
  if (auto tail = start + 2 * k_chunk - (aligned + k_chunk); tail > 0)
    ::munmap(reinterpret_cast<void*>(aligned + k_chunk), tail);
  auto* c = reinterpret_cast<Chunk*>(aligned);
  *c = Chunk{nullptr, nullptr, nullptr, static_cast<std::uint32_t>(k_header), 0, block};
#if defined(__SANITIZE_ADDRESS__)
  // LeakSanitizer does not look inside mappings of our own: what live blocks point to would look leaked.
  __lsan_register_root_region(c, k_chunk);
#endif
  poison(reinterpret_cast<std::byte*>(c) + k_header, k_chunk - k_header);
  ++g_state.chunks;
  return c;
}

void unmap_chunk(Chunk* c) {
#if defined(__SANITIZE_ADDRESS__)
  __lsan_unregister_root_region(c, k_chunk);
  unpoison(c, k_chunk);
#endif
  ::munmap(c, k_chunk);
  --g_state.chunks;
}

void link(Size& s, Chunk* c) {
  c->prev = nullptr;
  c->next = s.open;
  if (s.open) s.open->prev = c;
  s.open = c;
}

void unlink(Size& s, Chunk* c) {
  if (c->prev) {
    c->prev->next = c->next;
  } else {
    s.open = c->next;
  }
  if (c->next) c->next->prev = c->prev;
  c->prev = c->next = nullptr;
}

std::size_t size_index(std::size_t size) { return ((size == 0 ? 1 : size) + k_alignment - 1) / k_alignment; }

}  // namespace

void* allocate(std::size_t size) {
  if (size > k_max_block) return ::operator new(size);
  auto index = size_index(size);
  auto block = static_cast<std::uint32_t>(index * k_alignment);
  std::lock_guard lock(g_state.mutex);
  auto& s = g_state.sizes[index];
  Chunk* c = s.open;
  if (!c) {
    c = map_chunk(block);
    if (!c) throw std::bad_alloc();
    link(s, c);
  }
  void* p;
  if (c->free) {
    p = c->free;
    unpoison(p, block);
    c->free = c->free->next;
  } else {
    p = reinterpret_cast<std::byte*>(c) + c->fresh;
    unpoison(p, block);
    c->fresh += block;
  }
  ++c->used;
  ++g_state.blocks;
  if (full(c)) unlink(s, c);
  return p;
}

void deallocate(void* p, std::size_t size) noexcept {
  if (!p) return;
  if (size > k_max_block) {
    ::operator delete(p);
    return;
  }
  Chunk* c = chunk_of(p);
  auto& s = g_state.sizes[c->block / k_alignment];  // the chunk's own size, whatever the caller passed
  std::lock_guard lock(g_state.mutex);
  bool was_full = full(c);
  auto* b = static_cast<FreeBlock*>(p);
  b->next = c->free;
  c->free = b;
  poison(p, c->block);
  --c->used;
  --g_state.blocks;
  if (was_full) link(s, c);
  // An empty chunk is unmapped when another one of its size has room; otherwise it stays for the next client.
  if (c->used == 0 && (s.open != c || c->next)) {
    unlink(s, c);
    unmap_chunk(c);
  }
}

Stats stats() {
  std::lock_guard lock(g_state.mutex);
  return Stats{g_state.chunks, g_state.blocks};
}

}  // namespace pgweir::core::slab
