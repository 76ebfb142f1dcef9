// Every size limit and protocol constant pgweir enforces, in one place.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace pgweir::limits {

// Startup-phase packets (StartupMessage, SSLRequest, CancelRequest): PostgreSQL refuses longer ones too.
inline constexpr std::uint32_t k_max_startup_packet = 10000;
inline constexpr std::uint32_t k_min_startup_packet = 8;
// Parameters in one StartupMessage.
inline constexpr std::size_t k_max_startup_parameters = 64;

// Messages exchanged during authentication (PasswordMessage, SASL*). PostgreSQL caps auth tokens at 65535.
inline constexpr std::uint32_t k_max_auth_message = 65536;
// Any message pgweir must hold whole to inspect (ParameterStatus, ErrorResponse, BackendKeyData, Parse …).
inline constexpr std::uint32_t k_max_inspected_message = 1 << 20;
// A client's Bind…Sync segment kept to be sent again when its statement's plan went stale after DDL; a longer
// segment is not kept, and the server's error reaches the client.
inline constexpr std::size_t k_max_replayed_segment = k_max_inspected_message;
// A regular message's declared length: PostgreSQL's own upper bound (1 GiB - 1). Bodies stream through.
inline constexpr std::uint32_t k_max_message = 0x3fffffff;
// Backend messages during server login (Authentication*, ParameterStatus, ErrorResponse).
inline constexpr std::uint32_t k_max_server_login_message = 65536;

// Relay chunk: the buffer a connection borrows while bytes are in flight and returns when idle.
inline constexpr std::size_t k_relay_chunk = 16 * 1024;
// Each client's own read buffer for the read that waits while it is idle: a typical OLTP message batch (a simple
// Query, or Parse/Bind/Describe/Execute/Sync) fits, so one recv takes it whole; longer input continues in a chunk.
inline constexpr std::size_t k_client_inbox = 256;

// SCRAM iterations pgweir uses when it derives a verifier from a plain password.
inline constexpr int k_scram_iterations = 4096;
// The most SCRAM iterations pgweir computes for a server that asks: PBKDF2 runs on an event loop, and a hostile
// server asking for 2^31 would stall it for minutes (about 30 ms at this cap).
inline constexpr int k_max_server_scram_iterations = 100'000;

// Protocol version codes.
inline constexpr std::uint32_t k_protocol_v3 = 196608;        // 3.0
inline constexpr std::uint32_t k_ssl_request_code = 80877103;
inline constexpr std::uint32_t k_gssenc_request_code = 80877104;
inline constexpr std::uint32_t k_cancel_request_code = 80877102;

// How long a CancelRequest to a backend may take before pgweir gives up on it.
inline constexpr std::chrono::seconds k_cancel_timeout{5};
// Accept loop back-off when the process is out of file descriptors.
inline constexpr std::chrono::milliseconds k_accept_backoff{100};
// Idle server connections older than this get a non-blocking peek before they are lent (a terminated server shows
// as EOF or its FATAL message). A connection idle for less was in use a moment ago: losing it now is the same race
// as losing it mid-transaction, and the hot path skips the syscall.
inline constexpr std::chrono::milliseconds k_idle_check_after{5};
// How often each event loop looks for pool clients idle for server.client_park_after (parking, see ParkingLot).
inline constexpr std::chrono::milliseconds k_park_sweep_period{250};
// After this many parks, a sweep asks malloc to hand free pages back to the system (malloc_trim): at the first sweep
// that finds no new park, or once per interval while parks keep coming. The walk over the heap costs milliseconds
// with tens of thousands of clients; a batch of parks between two trims keeps them rare.
inline constexpr std::size_t k_parks_before_trim = 64;
inline constexpr std::chrono::seconds k_trim_interval{2};
// Sets of server parameters a pool keeps to welcome clients without a server (one per set of startup parameters);
// past this many the pool forgets them all and learns them again from the next server logins.
inline constexpr std::size_t k_welcome_sets = 64;
// Janitor period: idle/lifetime reaping and min_idle upkeep.
inline constexpr std::chrono::milliseconds k_janitor_period{500};
// A server connection given back goes to the oldest client waiting on the same event loop, which needs no move of
// the socket to another loop; a waiter on another loop is passed over this many times at most, then served next.
inline constexpr int k_max_waiter_bypass = 16;
// How far down the queue of waiters a give-back looks for one on its own event loop.
inline constexpr std::size_t k_waiter_scan = 64;

}  // namespace pgweir::limits
