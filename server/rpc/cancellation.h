// A call's "stop", raised when its caller goes away (a gRPC client cancels or disconnects, an HTTP
// client closes its connection). Work done for the call registers what stopping it means, e.g.
// the database pool cancels the statement running on the call's connection, so an abandoned
// call stops using PostgreSQL at once instead of at its deadline.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>

namespace hotpath::rpc {

class Cancellation final {
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
  bool cancelled() const {
    std::lock_guard lock(mu_);
    return cancelled_;
  }
  // What Cancel does from now on (replacing any previous action). False, and not kept, when the
  // call is cancelled already.
  bool OnCancel(std::function<void()> action) {
    std::lock_guard lock(mu_);
    if (cancelled_) return false;
    action_ = std::move(action);
    return true;
  }
  // Forgets the action; returns once no Cancel is running it.
  void ClearOnCancel() {
    std::lock_guard lock(mu_);
    action_ = nullptr;
  }

  // The cancellation of the call this thread is working for; null when none.
  static Cancellation* Current() { return current_; }
  // Makes cancellation Current() on this thread while in scope (null allowed).
  class Scope final {
   public:
    explicit Scope(Cancellation* cancellation) : previous_(std::exchange(current_, cancellation)) {}
    ~Scope() { current_ = previous_; }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    Cancellation* previous_;  // restored on exit
  };

 private:
  mutable std::mutex mu_;                                       // guards the below
  bool cancelled_ = false;                                      // Cancel was called
  std::function<void()> action_;                                // what Cancel runs, if anything
  static inline thread_local Cancellation* current_ = nullptr;  // see Current
};

// Cancels on a short-lived thread of its own: the action may take a network round trip (the
// pool's sends a cancel request to PostgreSQL), and those who learn of a departure are
// completion-queue and event-loop threads, which must never block. Departures are rare.
inline void CancelSoon(std::shared_ptr<Cancellation> cancellation) {
  std::thread([cancellation = std::move(cancellation)] { cancellation->Cancel(); }).detach();
}

}  // namespace hotpath::rpc
