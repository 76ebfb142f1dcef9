// The slab that holds what connected clients keep: blocks are distinct, aligned and reused, empty chunks go back
// to the system, and it stays consistent under threads allocating and freeing at once.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include "pgweir/core/slab.hpp"

using namespace pgweir::core;

TEST_CASE("blocks are distinct, 16-aligned and hold what is written to them") {
  auto before = slab::stats();
  std::vector<void*> blocks;
  for (int i = 0; i < 1000; ++i) {
    void* p = slab::allocate(800);
    CHECK(reinterpret_cast<std::uintptr_t>(p) % slab::k_alignment == 0);
    std::memset(p, i & 0xff, 800);
    blocks.push_back(p);
  }
  CHECK(std::set<void*>(blocks.begin(), blocks.end()).size() == blocks.size());
  // 800-byte blocks, 81 to a 64 KiB chunk: 1 000 of them take 13 chunks.
  CHECK(slab::stats().blocks == before.blocks + 1000);
  CHECK(slab::stats().chunks == before.chunks + 13);
  for (int i = 0; i < 1000; ++i) {
    auto* bytes = static_cast<unsigned char*>(blocks[i]);
    CHECK(bytes[0] == (i & 0xff));
    CHECK(bytes[799] == (i & 0xff));
  }
  for (void* p : blocks) slab::deallocate(p, 800);
  CHECK(slab::stats().blocks == before.blocks);
  // All but one spare chunk went back to the system.
  CHECK(slab::stats().chunks == before.chunks + 1);
}

TEST_CASE("a block given back is handed out again before a new chunk is mapped") {
  void* a = slab::allocate(100);
  auto chunks = slab::stats().chunks;
  slab::deallocate(a, 100);
  void* b = slab::allocate(100);
  CHECK(b == a);
  CHECK(slab::stats().chunks == chunks);
  slab::deallocate(b, 100);
}

TEST_CASE("sizes share a block size when they round to the same 16 bytes, and large ones use the heap") {
  void* a = slab::allocate(97);
  slab::deallocate(a, 97);
  void* b = slab::allocate(112);
  CHECK(b == a);
  slab::deallocate(b, 112);
  auto before = slab::stats();
  void* big = slab::allocate(slab::k_max_block + 1);
  CHECK(big != nullptr);
  CHECK(slab::stats().blocks == before.blocks);
  slab::deallocate(big, slab::k_max_block + 1);
  void* zero = slab::allocate(0);
  CHECK(zero != nullptr);
  slab::deallocate(zero, 0);
}

TEST_CASE("the allocator serves allocate_shared and node containers") {
  auto before = slab::stats();
  {
    struct Record {
      std::string name;
      int value = 0;
    };
    auto r = std::allocate_shared<Record>(slab::Allocator<Record>(), Record{"client", 7});
    std::weak_ptr<Record> w = r;
    std::map<int, int, std::less<>, slab::Allocator<std::pair<const int, int>>> m;
    for (int i = 0; i < 500; ++i) m.emplace(i, i * i);
    CHECK(m.at(20) == 400);
    CHECK(r->name == "client");
    CHECK(slab::stats().blocks == before.blocks + 501);
    r.reset();
    CHECK(w.expired());
  }
  CHECK(slab::stats().blocks == before.blocks);
}

TEST_CASE("threads allocating and freeing at once leave it consistent") {
  auto before = slab::stats();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t] {
      std::vector<std::pair<void*, std::size_t>> held;
      for (int i = 0; i < 20000; ++i) {
        std::size_t size = 16 + static_cast<std::size_t>((i * 7 + t * 13) % 60) * 16;
        void* p = slab::allocate(size);
        std::memset(p, t, size);
        held.emplace_back(p, size);
        if (held.size() > 300) {
          for (auto [q, n] : held) {
            REQUIRE(static_cast<unsigned char*>(q)[n - 1] == t);
            slab::deallocate(q, n);
          }
          held.clear();
        }
      }
      for (auto [q, n] : held) slab::deallocate(q, n);
    });
  }
  for (auto& th : threads) th.join();
  CHECK(slab::stats().blocks == before.blocks);
  // At most one spare chunk per block size (60 sizes were used).
  CHECK(slab::stats().chunks <= before.chunks + 60);
}
