// Work in flight that uses its owner, counted so the owner's destructor can wait for all of it
// (userver's WaitTokenStorage): a cache whose load is still queued on the executor, or running,
// is not destroyed under it, whatever the shutdown order.
#pragma once

#include <condition_variable>
#include <mutex>

namespace hotpath::cache {

class PendingWork final {
 public:
  // Held by each piece of work (copies count as more); the work is over when every copy is gone.
  class Token final {
   public:
    explicit Token(PendingWork* owner) : owner_(owner) { owner_->Add(); }
    Token(const Token& other) : owner_(other.owner_) { owner_->Add(); }
    Token& operator=(const Token&) = delete;
    ~Token() { owner_->Done(); }

   private:
    PendingWork* owner_;  // what counts it
  };

  PendingWork() = default;
  PendingWork(const PendingWork&) = delete;
  PendingWork& operator=(const PendingWork&) = delete;
  ~PendingWork() { WaitForAll(); }

  Token Take() { return Token(this); }
  // Returns once no token is left. The owner calls it first thing in its destructor.
  void WaitForAll() {
    std::unique_lock lock(mu_);
    idle_.wait(lock, [this] { return count_ == 0; });
  }

 private:
  void Add() {
    std::lock_guard lock(mu_);
    ++count_;
  }
  void Done() {
    // Notified under the lock: once the waiter sees zero it may destroy this, and this thread
    // touches nothing after unlocking.
    std::lock_guard lock(mu_);
    if (--count_ == 0) idle_.notify_all();
  }

  std::mutex mu_;                 // guards count_
  std::condition_variable idle_;  // signalled when count_ reaches zero
  int count_ = 0;                 // tokens alive
};

}  // namespace hotpath::cache
