// The one translation unit that compiles Asio's and Beast's implementation (separate compilation).
#include <boost/asio/detail/epoll_reactor.hpp>
#include <boost/asio/detail/object_pool.hpp>

#include <new>

#include "pgweir/core/slab.hpp"

// The reactor's per-socket state lives as long as its socket, or longer (Asio keeps freed ones for reuse). Made
// from the general heap, one per client among the passing allocations of that client's login, they kept pages of
// login memory from ever going back to the system; from the slab they sit with the sessions instead (see
// core/slab.hpp). Explicit specializations of Asio's allocation hooks, seen before the pool that uses them is
// compiled below.
namespace boost::asio::detail {

template <>
inline epoll_reactor::descriptor_state* object_pool_access::create<epoll_reactor::descriptor_state, bool>(bool locking) {
  void* p = pgweir::core::slab::allocate(sizeof(epoll_reactor::descriptor_state));
  return ::new (p) epoll_reactor::descriptor_state(locking);
}

template <>
inline void object_pool_access::destroy<epoll_reactor::descriptor_state>(epoll_reactor::descriptor_state* o) {
  o->~descriptor_state();
  pgweir::core::slab::deallocate(o, sizeof(epoll_reactor::descriptor_state));
}

}  // namespace boost::asio::detail

#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
