// The pool's lock: it excludes, try_lock fails while it is held, and a thread that went to sleep on it is woken.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "pgweir/core/adaptive_mutex.hpp"

using pgweir::core::AdaptiveMutex;

TEST_CASE("AdaptiveMutex: four threads adding under it lose no increment") {
  AdaptiveMutex m;
  long counter = 0;  // plain: only the lock keeps the adds from racing (and ThreadSanitizer would say so)
  constexpr int k_threads = 4;
  constexpr int k_adds = 200000;
  std::vector<std::thread> threads;
  for (int t = 0; t < k_threads; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < k_adds; ++i) {
        std::lock_guard lock(m);
        long seen = counter;
        if (i % 1000 == 0) std::this_thread::yield();  // now and then, be preempted holding it: others must sleep
        counter = seen + 1;
      }
    });
  for (auto& t : threads) t.join();
  CHECK(counter == static_cast<long>(k_threads) * k_adds);
}

TEST_CASE("AdaptiveMutex: try_lock fails while it is held and succeeds once it is released") {
  AdaptiveMutex m;
  REQUIRE(m.try_lock());
  bool taken = true;
  std::thread([&] { taken = m.try_lock(); }).join();
  CHECK_FALSE(taken);
  m.unlock();
  std::thread([&] {
    taken = m.try_lock();
    if (taken) m.unlock();
  }).join();
  CHECK(taken);
}

TEST_CASE("AdaptiveMutex: a thread asleep on it is woken by the unlock") {
  AdaptiveMutex m;
  m.lock();
  std::atomic<bool> got{false};
  std::thread waiter([&] {
    std::lock_guard lock(m);
    got = true;
  });
  // Held far longer than the spin: the waiter has gone to sleep in the kernel by now.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK_FALSE(got.load());
  m.unlock();
  waiter.join();  // a lost wake-up hangs here, and ctest's timeout reports it
  CHECK(got.load());
  CHECK(m.try_lock());  // left free (the word may have been 2; the waiter's unlock cleared it)
  m.unlock();
}
