// A mutex that spins for a moment before it sleeps, for the locks every event-loop thread takes once or twice per
// transaction for a fraction of a microsecond (a pool's). With std::mutex a thread that finds such a lock held goes
// to sleep in futex() at once, and the holder, done some hundred nanoseconds later, has to wake it with a second
// futex(): two system calls and two context switches for a wait shorter than either. glibc's adaptive mutex retries
// for a bounded number of spins (it learns how many the lock usually needs) and only then sleeps, so a holder that
// is running on another core is waited for where it is.
#pragma once

#include <pthread.h>

namespace pgweir::core {

class AdaptiveMutex {
 public:
  AdaptiveMutex() noexcept = default;
  ~AdaptiveMutex() { pthread_mutex_destroy(&mutex_); }
  AdaptiveMutex(const AdaptiveMutex&) = delete;
  AdaptiveMutex& operator=(const AdaptiveMutex&) = delete;

  // Lockable, for std::lock_guard and std::unique_lock. Locking a mutex the thread already holds is undefined, as
  // for std::mutex.
  void lock() noexcept { pthread_mutex_lock(&mutex_); }
  bool try_lock() noexcept { return pthread_mutex_trylock(&mutex_) == 0; }
  void unlock() noexcept { pthread_mutex_unlock(&mutex_); }

 private:
  pthread_mutex_t mutex_ = PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP;
};

}  // namespace pgweir::core
