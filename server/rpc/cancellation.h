// A call's "stop", raised when its caller goes away (a gRPC client cancels or disconnects, an HTTP
// client closes its connection). Work done for the call registers what stopping it means, e.g.
// the database pool cancels the statement running on the call's connection, so an abandoned
// call stops using PostgreSQL at once instead of at its deadline.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>

#include "server/rpc/call_local.h"

namespace hotpath::rpc {

class Cancellation final : public CallLocal<Cancellation> {
 public:
  // Any thread; the first call runs the registered action, later ones do nothing.
  void Cancel() {
    std::lock_guard lock(mu_);
    if (cancelled_) return;
    cancelled_ = true;
    // Under the lock: ClearOnCancel waits for it, so the action never touches what its
    // registrant released.
    if (action_) std::exchange(action_, nullptr)();
  }
  // Any thread, at once and without running the action (Cancel runs it, later): the caller is
  // gone, so work that has not started yet does not (cancelled() is true, OnCancel refuses).
  void MarkDeparted() { departed_.store(true, std::memory_order_relaxed); }
  bool cancelled() const {
    if (departed_.load(std::memory_order_relaxed)) return true;
    std::lock_guard lock(mu_);
    return cancelled_;
  }
  // What Cancel does from now on (replacing any previous action). False, and not kept, when the
  // call is cancelled (or its caller departed) already.
  bool OnCancel(std::function<void()> action) {
    std::lock_guard lock(mu_);
    if (cancelled_ || departed_.load(std::memory_order_relaxed)) return false;
    action_ = std::move(action);
    return true;
  }
  // Forgets the action; returns once no Cancel is running it.
  void ClearOnCancel() {
    std::lock_guard lock(mu_);
    action_ = nullptr;
  }

  // Current() and Scope (call_local.h): the cancellation of the call this thread works for.

 private:
  mutable std::mutex mu_;              // guards the two below
  bool cancelled_ = false;             // Cancel was called
  std::function<void()> action_;       // what Cancel runs, if anything
  std::atomic<bool> departed_{false};  // MarkDeparted was called
};

// Runs departures' cancellations one at a time on one thread of its own: a cancel action may take
// a network round trip (the pool's sends a cancel request to PostgreSQL), and those who learn of a
// departure are completion-queue and event-loop threads, which must never block. The queue is
// bounded, so a storm of departures (a deadline storm, a client that cancels everything) costs
// neither a thread each nor unbounded memory: past kMaxQueued waiting, a cancellation is dropped,
// and the statement it would have stopped ends at its statement_timeout, which the call's
// deadline bounds.
class Canceller final {
 public:
  static constexpr std::size_t kMaxQueued = 1024;

  // The process's canceller; its thread starts on first use and runs until the process exits.
  static Canceller& Instance();

  // Queues cancellation->Cancel(); false when kMaxQueued are already waiting (then dropped).
  bool Submit(std::shared_ptr<Cancellation> cancellation);

  std::int64_t cancelled() const { return cancelled_.load(std::memory_order_relaxed); }
  std::int64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

 private:
  Canceller();
  void Run();

  std::mutex mu_;                                    // guards queue_
  std::condition_variable wake_;                     // signalled when queue_ gains work
  std::deque<std::shared_ptr<Cancellation>> queue_;  // waiting to be cancelled
  std::atomic<std::int64_t> cancelled_{0};           // cancellations run
  std::atomic<std::int64_t> dropped_{0};             // refused because the queue was full
};

// Marks the caller departed at once (work not started yet does not start), and cancels soon on
// the Canceller's thread (see there): even when that drops it, only a statement already running
// goes on.
inline void CancelSoon(std::shared_ptr<Cancellation> cancellation) {
  cancellation->MarkDeparted();
  Canceller::Instance().Submit(std::move(cancellation));
}

}  // namespace hotpath::rpc
