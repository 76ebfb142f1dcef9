// A mutex that spins for a moment before it sleeps, for the locks every event-loop thread takes once or twice per
// transaction for a fraction of a microsecond (a pool's). With std::mutex a thread that finds such a lock held goes
// to sleep in futex() at once, and the holder, done some hundred nanoseconds later, has to wake it with a second
// futex(): two system calls and two context switches for a wait shorter than either. This one retries for a bounded
// number of spins, so a holder that is running on another core is waited for where it is, and only then sleeps.
//
// Our own rather than glibc's adaptive pthread mutex: taking and releasing a free lock is one atomic instruction
// each, inline, where pthread_mutex_lock and pthread_mutex_unlock cost about 60 instructions a pair through the PLT
// and their type dispatch (two pairs per transaction).
//
// The word is 0 when free, 1 when held, 2 when held and a thread may be asleep on it (futex, as in Drepper's
// "Futexes Are Tricky", mutex 3): only an unlock that finds 2 makes a system call.
#pragma once

#include <atomic>

namespace pgweir::core {

class AdaptiveMutex {
 public:
  AdaptiveMutex() noexcept = default;
  AdaptiveMutex(const AdaptiveMutex&) = delete;
  AdaptiveMutex& operator=(const AdaptiveMutex&) = delete;

  // Lockable, for std::lock_guard and std::unique_lock. Locking a mutex the thread already holds deadlocks, as it
  // may for std::mutex.
  void lock() noexcept {
    int expected = 0;
    if (!word_.compare_exchange_strong(expected, 1, std::memory_order_acquire, std::memory_order_relaxed))
      lock_contended();
  }
  bool try_lock() noexcept {
    int expected = 0;
    return word_.compare_exchange_strong(expected, 1, std::memory_order_acquire, std::memory_order_relaxed);
  }
  void unlock() noexcept {
    if (word_.exchange(0, std::memory_order_release) == 2) wake_one();
  }

 private:
  void lock_contended() noexcept;
  void wake_one() noexcept;

  std::atomic<int> word_{0};
};

}  // namespace pgweir::core
