#include "server/rpc/cancellation.h"

#include <thread>

namespace hotpath::rpc {

Canceller& Canceller::Instance() {
  // Never destroyed: departures may still arrive while static objects are torn down at exit.
  static Canceller* const instance = new Canceller();
  return *instance;
}

Canceller::Canceller() {
  std::thread([this] { Run(); }).detach();
}

bool Canceller::Submit(std::shared_ptr<Cancellation> cancellation) {
  {
    std::lock_guard lock(mu_);
    if (queue_.size() >= kMaxQueued) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    queue_.push_back(std::move(cancellation));
  }
  wake_.notify_one();
  return true;
}

void Canceller::Run() {
  std::unique_lock lock(mu_);
  for (;;) {
    wake_.wait(lock, [this] { return !queue_.empty(); });
    std::shared_ptr<Cancellation> next = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    next->Cancel();
    next.reset();
    cancelled_.fetch_add(1, std::memory_order_relaxed);
    lock.lock();
  }
}

}  // namespace hotpath::rpc
