// The worker's io_uring and its pump (include/pgweir/net/ring.hpp).
#include "pgweir/net/ring.hpp"

#include <poll.h>
#include <pthread.h>

#include <sys/socket.h>

#include <cerrno>
#include <deque>
#include <cstring>
#include <utility>

#include <boost/asio/detail/scheduler.hpp>
#include <boost/asio/detail/scheduler_thread_info.hpp>
#include <boost/asio/detail/thread_context.hpp>
#include <boost/version.hpp>

#include "reactor_read.hpp"
#include "pgweir/core/log.hpp"

#if PGWEIR_HAVE_IO_URING
#include <liburing.h>
#endif

namespace pgweir::net {

namespace ad = boost::asio::detail;
static_assert(BOOST_VERSION / 100 == 1081, "the ring's pump uses Asio 1.81's scheduler internals: review it");

namespace detail {

// The scheduler's private state the pump reads (see ExposeMember in reactor_read.hpp).
struct SchedMutex { friend constexpr auto exposed(SchedMutex); };
template struct ExposeMember<&ad::scheduler::mutex_, SchedMutex>;
struct SchedQueue { friend constexpr auto exposed(SchedQueue); };
template struct ExposeMember<&ad::scheduler::op_queue_, SchedQueue>;
struct SchedTaskOp { friend constexpr auto exposed(SchedTaskOp); };
template struct ExposeMember<&ad::scheduler::task_operation_, SchedTaskOp>;
struct SchedInterrupted { friend constexpr auto exposed(SchedInterrupted); };
template struct ExposeMember<&ad::scheduler::task_interrupted_, SchedInterrupted>;
struct SchedStopped { friend constexpr auto exposed(SchedStopped); };
template struct ExposeMember<&ad::scheduler::stopped_, SchedStopped>;

}  // namespace detail

namespace {

// user_data of the requests that are not RingOps: the multishot poll of Asio's epoll descriptor, and
// cancellations (their own completions say nothing pgweir needs).
constexpr std::uint64_t k_reactor_tag = 1;
constexpr std::uint64_t k_ignored_tag = 2;

}  // namespace

struct Ring::State {
#if PGWEIR_HAVE_IO_URING
  io_uring ring{};
#endif
  asio::io_context* io = nullptr;
  ad::scheduler* scheduler = nullptr;
  int epoll_fd = -1;
  bool reactor_ready = false;  // Asio's epoll descriptor reported readable since Asio's last turn
  bool watching = false;       // the multishot poll of it is armed
  bool closed = false;         // shut down: nothing more is queued
  bool sends_queued = false;   // a send is queued and not yet submitted
  pthread_t owner{};           // the loop's thread: the only one the ring takes requests from
#if PGWEIR_HAVE_IO_URING
  std::deque<__kernel_timespec> timeouts;  // of timeout requests not yet submitted
#endif
  boost::intrusive::list<RingOp, boost::intrusive::member_hook<RingOp, decltype(RingOp::hook), &RingOp::hook>>
      pending;
};

Ring::Ring(asio::execution_context& context) : service(context), state_(std::make_unique<State>()) {}

Ring::~Ring() { shutdown(); }

Ring* Ring::of(const Executor& executor) {
  auto& context = executor.context();
  return asio::has_service<Ring>(context) ? &asio::use_service<Ring>(context) : nullptr;
}

#if PGWEIR_HAVE_IO_URING

namespace {

constexpr unsigned k_entries = 256;

// A request's user_data: its RingOp's address in the low 48 bits (user space addresses on the 64-bit targets
// pgweir runs on), the op's generation above.
constexpr int k_generation_shift = 48;
constexpr std::uint64_t k_address_mask = (std::uint64_t{1} << k_generation_shift) - 1;
static_assert(sizeof(void*) == 8, "a request's user_data packs a 48-bit address and a generation");

std::uint64_t user_data(const RingOp* op) {
  return reinterpret_cast<std::uintptr_t>(op) | (std::uint64_t{op->generation} << k_generation_shift);
}
RingOp* op_of(std::uint64_t data) {
  return reinterpret_cast<RingOp*>(static_cast<std::uintptr_t>(data & k_address_mask));
}

int setup(io_uring& ring) {
  io_uring_params params{};
  params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL;
  params.flags |= IORING_SETUP_CQSIZE;
  params.cq_entries = k_entries * 16;
  return io_uring_queue_init_params(k_entries, &ring, &params);
}

}  // namespace

std::string Ring::probe() {
  io_uring ring{};
  if (int r = setup(ring); r < 0) return std::string("io_uring_setup: ") + std::strerror(-r);
  io_uring_queue_exit(&ring);
  return {};
}

std::string Ring::create(asio::io_context& io) {
  auto ring = std::make_unique<Ring>(io);
  if (int r = setup(ring->state_->ring); r < 0) return std::string("io_uring_setup: ") + std::strerror(-r);
  auto* raw = ring.get();
  // The reactor first: services shut down in the reverse order of their making, and the ring's requests (which
  // may hold coroutines that close sockets) must go while the reactor and the scheduler are whole.
  asio::use_service<ad::epoll_reactor>(io);
  asio::add_service<Ring>(io, ring.release());
  raw->start(io);
  return {};
}

void Ring::start(asio::io_context& io) {
  auto& s = *state_;
  s.io = &io;
  s.scheduler = &asio::use_service<ad::scheduler>(io);
  s.scheduler->init_task();  // the reactor's turn is in the loop's queue: it is what a cross-thread post interrupts
  s.owner = pthread_self();
  s.epoll_fd = asio::use_service<ad::epoll_reactor>(io).*exposed(detail::EpollFd{});
  watch_reactor();
  asio::post(io, [this] { pump(); });
}

void* Ring::next_sqe() {
  auto& ring = state_->ring;
  io_uring_sqe* sqe = io_uring_get_sqe(&ring);
  while (!sqe) {
    // Full: what is queued goes to the kernel now.
    submit();
    sqe = io_uring_get_sqe(&ring);
  }
  return sqe;
}

void Ring::watch_reactor() {
  auto* sqe = static_cast<io_uring_sqe*>(next_sqe());
  io_uring_prep_poll_multishot(sqe, state_->epoll_fd, POLLIN);
  io_uring_sqe_set_data64(sqe, k_reactor_tag);
  state_->watching = true;
}

// After shutdown (a request started while the loop's pending requests are being destroyed), or off the loop's
// thread (what is destroyed after the loop has ended): destroyed at once.
bool Ring::refusing() const {
  return state_->closed || !pthread_equal(state_->owner, pthread_self());
}

bool Ring::refuse(RingOp* op) {
  if (!refusing()) return false;
  if (op->owner) *op->owner = nullptr;
  op->owner = nullptr;
  op->complete(op, -ECANCELED, true);
  return true;
}

// The submission entry of a new request made with `op`, which is pending from now on.
void* Ring::begin(RingOp* op) {
  op->cancel_sent = op->abandoned = false;
  ++op->generation;
  auto* sqe = static_cast<io_uring_sqe*>(next_sqe());
  state_->pending.push_back(*op);
  return sqe;
}

void Ring::recv(int fd, char* data, std::size_t size, RingOp* op) {
  if (refuse(op)) return;
  auto* sqe = static_cast<io_uring_sqe*>(begin(op));
  io_uring_prep_recv(sqe, fd, data, size, 0);
  io_uring_sqe_set_data64(sqe, user_data(op));
}

void Ring::send(int fd, const char* data, std::size_t size, RingOp* op) {
  if (refuse(op)) return;
  auto* sqe = static_cast<io_uring_sqe*>(begin(op));
  io_uring_prep_send(sqe, fd, data, size, MSG_NOSIGNAL);
  io_uring_sqe_set_data64(sqe, user_data(op));
  state_->sends_queued = true;
}

void Ring::timeout(std::chrono::milliseconds after, RingOp* op) {
  if (refuse(op)) return;
  auto* sqe = static_cast<io_uring_sqe*>(begin(op));  // may submit what is queued: before the timespec is kept
  // The kernel reads the timespec when the request is submitted: it lives in the ring until then.
  auto& ts = state_->timeouts.emplace_back();
  ts.tv_sec = after.count() / 1000;
  ts.tv_nsec = (after.count() % 1000) * 1'000'000;
  io_uring_prep_timeout(sqe, &ts, 0, 0);
  io_uring_sqe_set_data64(sqe, user_data(op));
  submit();
}

void Ring::submitted() {
  state_->sends_queued = false;
  // A submission the kernel turned away (EBUSY) leaves its entries queued, and their timespecs are still read.
  if (io_uring_sq_ready(&state_->ring) == 0) state_->timeouts.clear();
}

void Ring::submit() {
  if (refusing()) return;
  io_uring_submit(&state_->ring);
  submitted();
}

bool Ring::closed() const { return refusing(); }

void Ring::poll(int fd, unsigned events, RingOp* op) {
  if (refuse(op)) return;
  auto* sqe = static_cast<io_uring_sqe*>(begin(op));
  io_uring_prep_poll_add(sqe, fd, events);
  io_uring_sqe_set_data64(sqe, user_data(op));
}

void Ring::cancel(RingOp* op) {
  if (op->cancel_sent) return;
  op->cancel_sent = true;
  if (refusing()) return;
  auto* sqe = static_cast<io_uring_sqe*>(next_sqe());
  io_uring_prep_cancel64(sqe, user_data(op), 0);
  io_uring_sqe_set_data64(sqe, k_ignored_tag);
}

// Completes what the kernel has completed. A completion may queue requests and post handlers.
void Ring::reap() {
  auto& s = *state_;
  for (;;) {
    io_uring_cqe* cqe = nullptr;
    if (io_uring_peek_cqe(&s.ring, &cqe) != 0 || !cqe) return;
    std::uint64_t data = cqe->user_data;
    int result = cqe->res;
    unsigned flags = cqe->flags;
    io_uring_cqe_seen(&s.ring, cqe);
    if (data == k_reactor_tag) {
      s.reactor_ready = true;
      if ((flags & IORING_CQE_F_MORE) == 0) s.watching = false;  // the kernel ended the multishot poll
      continue;
    }
    if (data == k_ignored_tag) continue;
    auto* op = op_of(data);
    s.pending.erase(s.pending.iterator_to(*op));
    if (op->owner) {
      *op->owner = nullptr;
      op->owner = nullptr;
    }
    op->complete(op, op->abandoned ? -ECANCELED : result, false);
  }
}

// Whether Asio has handlers to run: posted to this thread during the pump (its private queue), or queued for the
// loop by anyone. When it has none, a handler posted from another thread from now on interrupts Asio's reactor
// (its epoll descriptor turns readable, which the ring reports). Asio re-enables that only when its reactor runs
// as the loop's blocking wait, which with a ring it never is.
bool Ring::asio_has_work() {
  auto* this_thread = static_cast<ad::scheduler_thread_info*>(ad::thread_context::top_of_thread_call_stack());
  if (this_thread && !this_thread->private_op_queue.empty()) return true;
  auto& sched = *state_->scheduler;
  ad::conditionally_enabled_mutex::scoped_lock lock(sched.*exposed(detail::SchedMutex{}));
  if (sched.*exposed(detail::SchedStopped{})) return true;
  auto& queue = sched.*exposed(detail::SchedQueue{});
  ad::scheduler_operation* task = &(sched.*exposed(detail::SchedTaskOp{}));
  for (ad::scheduler_operation* o = queue.front(); o; o = ad::op_queue_access::next(o)) {
    if (o != task) return true;
  }
  sched.*exposed(detail::SchedInterrupted{}) = false;
  return false;
}

// A handler of the loop: completes the ring's requests and sleeps in the ring until Asio has something to do,
// then lets Asio take its turn and is posted again behind it.
void Ring::pump() {
  auto& s = *state_;
  if (s.closed) return;
  for (;;) {
    reap();
    if (!s.watching) watch_reactor();
    if (s.reactor_ready || asio_has_work()) break;
    if (s.sends_queued) {
      // Sends go to the kernel in an io_uring_enter of their own, which returns to user space before the loop
      // waits: the peer a send wakes (PostgreSQL with a query, a client with its result) can take this CPU at
      // once while this thread stays runnable, as with epoll's send(). Submitted with the wait instead, the
      // thread is asleep by the time the peer runs, and at a light fixed rate (2 000 tx/s, 10 clients, two
      // cores) that cost 10-30 us of median latency per transaction (bench/RESULTS.md, seventeenth session), for
      // the one system call this saves. The sends' completions, posted at their submission, are reaped first.
      io_uring_submit(&s.ring);
      submitted();
      continue;
    }
    int r = io_uring_submit_and_wait(&s.ring, 1);
    submitted();
    if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
      // Not expected of a ring that was set up (EINTR is a signal, EAGAIN and EBUSY a full queue that the next
      // reap empties): logged, and Asio takes its turn before the next try.
      log::error("io_uring_enter_failed", {{"error", std::strerror(-r)}});
      break;
    }
  }
  s.reactor_ready = false;
  // What the completions queued starts now: Asio's turn may take a while.
  submit();
  asio::post(*s.io, [this] { pump(); });
}

// With the loop's io_context: the kernel lets go of every buffer first (io_uring_queue_exit cancels what is
// pending and waits for it), then each request pending is completed as destroyed. Its owner let go of none of
// them: the transports' slots are cleared before any completion runs, as a completion may destroy transports.
void Ring::shutdown() {
  auto& s = *state_;
  if (s.closed) return;
  s.closed = true;
  if (s.io) io_uring_queue_exit(&s.ring);
  for (auto& op : s.pending) {
    if (op.owner) *op.owner = nullptr;
    op.owner = nullptr;
  }
  while (!s.pending.empty()) {
    RingOp& op = s.pending.front();
    s.pending.pop_front();
    op.complete(&op, -ECANCELED, true);
  }
}

#else  // !PGWEIR_HAVE_IO_URING

std::string Ring::probe() { return "pgweir was built without liburing"; }
std::string Ring::create(asio::io_context&) { return probe(); }
void Ring::start(asio::io_context&) {}
void* Ring::next_sqe() { return nullptr; }
void Ring::watch_reactor() {}
bool Ring::refuse(RingOp*) { return true; }
bool Ring::refusing() const { return true; }
void Ring::recv(int, char*, std::size_t, RingOp*) {}
void Ring::send(int, const char*, std::size_t, RingOp*) {}
void* Ring::begin(RingOp*) { return nullptr; }
void Ring::submitted() {}
void Ring::timeout(std::chrono::milliseconds, RingOp*) {}
void Ring::submit() {}
bool Ring::closed() const { return true; }
void Ring::poll(int, unsigned, RingOp*) {}
void Ring::cancel(RingOp*) {}
void Ring::reap() {}
bool Ring::asio_has_work() { return true; }
void Ring::pump() {}
void Ring::shutdown() { state_->closed = true; }

#endif

}  // namespace pgweir::net
