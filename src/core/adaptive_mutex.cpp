// AdaptiveMutex's slow paths: the spin, the sleep and the wake-up.
#include "pgweir/core/adaptive_mutex.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace pgweir::core {
namespace {

// About as long as glibc's adaptive mutex spins at most (100 tries): a few microseconds with the pause below,
// longer than the pool's lock is ever held by a running thread, much shorter than a time slice.
constexpr int k_spins = 100;

void relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

long futex(std::atomic<int>& word, int op, int value) noexcept {
  static_assert(sizeof(std::atomic<int>) == sizeof(int));
  return ::syscall(SYS_futex, reinterpret_cast<int*>(&word), op | FUTEX_PRIVATE_FLAG, value, nullptr, nullptr, 0);
}

}  // namespace

void AdaptiveMutex::lock_contended() noexcept {
  for (int i = 0; i < k_spins; ++i) {
    relax();
    int expected = 0;
    if (word_.load(std::memory_order_relaxed) == 0 &&
        word_.compare_exchange_weak(expected, 1, std::memory_order_acquire, std::memory_order_relaxed))
      return;
  }
  // Sleep. The word is set to 2 before each sleep, so the holder's unlock knows to wake someone; taking the lock
  // this way leaves it at 2, which at worst costs one futex wake that finds nobody.
  while (word_.exchange(2, std::memory_order_acquire) != 0) futex(word_, FUTEX_WAIT, 2);
}

void AdaptiveMutex::wake_one() noexcept { futex(word_, FUTEX_WAKE, 1); }

}  // namespace pgweir::core
