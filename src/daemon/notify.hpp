// systemd notifications (sd_notify protocol, written directly to $NOTIFY_SOCKET): READY, RELOADING, STOPPING and
// the watchdog keep-alive. Every call is a no-op when NOTIFY_SOCKET is unset.
#pragma once

#include <boost/asio/io_context.hpp>

namespace pgweir::daemon::notify {

void ready();
void reloading();
void stopping();
// Sends WATCHDOG=1 every half WATCHDOG_USEC on `io` when the watchdog is enabled for this process.
void start_watchdog(boost::asio::io_context& io);

}  // namespace pgweir::daemon::notify
