// Per-thread pool of relay buffers: a connection borrows one while bytes are in flight and gives it back when it
// goes idle, so idle connections hold no buffer.
#pragma once

#include <memory>
#include <vector>

#include "pgweir/core/limits.hpp"

namespace pgweir::net {

class Chunk {
 public:
  Chunk() = default;
  Chunk(Chunk&& o) noexcept : data_(std::move(o.data_)) {}
  Chunk& operator=(Chunk&& o) noexcept {
    reset();
    data_ = std::move(o.data_);
    return *this;
  }
  ~Chunk() { reset(); }

  char* data() { return data_.get(); }
  static constexpr std::size_t size() { return limits::k_relay_chunk; }
  bool empty() const { return !data_; }

  // Borrows a buffer from this thread's free list.
  void acquire();
  // Returns it.
  void reset();

 private:
  std::unique_ptr<char[]> data_;
};

}  // namespace pgweir::net
