// recv, send and sendmsg for the relay's sockets, without glibc's cancellation-point wrappers.
//
// glibc makes recv, send and sendmsg cancellation points: in a process with more than one thread (pgweir always has
// its control and health threads) each call switches asynchronous cancellation on before the system call and off
// after it, about 35 instructions a call. pgweir never cancels a thread, so that work buys nothing; a transaction
// makes two reads and two writes. syscall() is not a cancellation point and sets errno the same way. x86-64 and
// AArch64 have no recv or send system call of their own: glibc implements both with recvfrom and sendto, as here.
#pragma once

#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstddef>

namespace pgweir::net::detail {

inline ssize_t plain_recv(int fd, void* data, std::size_t size, int flags) noexcept {
  return ::syscall(SYS_recvfrom, fd, data, size, flags, nullptr, nullptr);
}

inline ssize_t plain_send(int fd, const void* data, std::size_t size, int flags) noexcept {
  return ::syscall(SYS_sendto, fd, data, size, flags, nullptr, 0);
}

inline ssize_t plain_sendmsg(int fd, const msghdr* msg, int flags) noexcept {
  return ::syscall(SYS_sendmsg, fd, msg, flags);
}

}  // namespace pgweir::net::detail
