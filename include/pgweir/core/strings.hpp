// Helpers for string buffers that a connection keeps between uses.
#pragma once

#include <string>

namespace pgweir::core {

// Empties `s` and gives back its heap buffer, if it has one; a string within its inline buffer is only cleared,
// which costs a store instead of a swap.
inline void clear_and_release(std::string& s) {
  if (s.capacity() > std::string().capacity()) {
    std::string().swap(s);
  } else {
    s.clear();
  }
}

}  // namespace pgweir::core
